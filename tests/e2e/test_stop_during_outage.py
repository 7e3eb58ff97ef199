"""Every service, as a real process, rides out a NATS outage and stops cleanly in the middle of one: it says
once that it lost NATS, `syllabus probe` finds it alive but not ready while NATS is away and ready again once
it is back, and SIGTERM ends it with exit code 0, no error and no traceback."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from onemachine.servers import NatsServer
from tests.conditions import eventually
from tests.e2e.conftest import ROOT, STEP_DEADLINE, stack_env
from tests.ports import HOST, unassigned_port

pytestmark = pytest.mark.e2e

# What each service logs once it works.
READY = {
    "gateway": "gateway listening on http://",
    "generator": "generator worker running",
    "renderer": "renderer worker running",
    "scheduler": "scheduler relaying delayed jobs",
}


class Output:
    """A process's output lines as they come, and a way to wait for one."""

    def __init__(self, stream: asyncio.StreamReader) -> None:
        self.lines: list[str] = []
        self._stream = stream

    async def until(self, text: str, times: int = 1) -> None:
        async with asyncio.timeout(STEP_DEADLINE):
            while sum(text in line for line in self.lines) < times:
                raw = await self._stream.readline()
                if not raw:
                    raise AssertionError(f"ended without {text!r}:\n" + "\n".join(self.lines))
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))

    async def rest(self) -> str:
        self.lines += (await self._stream.read()).decode(errors="replace").splitlines()
        return "\n".join(self.lines)


@pytest.mark.parametrize("service", sorted(READY))
async def test_a_service_stops_cleanly_while_nats_is_away(tmp_path: Path, service: str) -> None:
    nats = NatsServer(tmp_path / "nats")
    # Started once for its address, then away: the service starts before NATS is there.
    await nats.start()
    await nats.stop()
    status = f"{HOST}:{unassigned_port()}"
    env = stack_env(tmp_path / "home") | {"SYLLABUS_NATS_URL": nats.url, "SYLLABUS_METRICS_ADDR": status}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syllabus",
        service,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    assert process.stdout is not None
    output = Output(process.stdout)
    try:
        await eventually(lambda: _answers(status, "/healthz", 200))
        assert await probe(env) == (1, f"http://{status}/readyz: 503 starting: connecting to NATS and the store")
        await nats.restart()
        await output.until(READY[service])
        await eventually(lambda: _answers(status, "/readyz", 200))
        assert await probe(env) == (0, f"http://{status}/readyz: ready")
        await nats.stop()
        await output.until("lost the connection to NATS")
        assert await probe(env) == (1, f"http://{status}/readyz: 503 NATS connection lost: reconnecting")
        assert await probe(env, "--live") == (0, f"http://{status}/healthz: ok")
        await nats.restart()
        await eventually(lambda: _answers(status, "/readyz", 200))
        await nats.stop()
        await output.until("lost the connection to NATS", times=2)
        process.send_signal(signal.SIGTERM)
        async with asyncio.timeout(STEP_DEADLINE):
            text = await output.rest()
            code = await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await nats.stop()
    assert code == 0, text
    assert [line for line in text.splitlines() if re.search(r" (ERROR|CRITICAL) |Traceback", line)] == [], text
    assert text.count("lost the connection to NATS") == 2, text


async def probe(env: dict[str, str], *args: str) -> tuple[int, str]:
    """`syllabus probe`'s exit code and its one line."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syllabus",
        "probe",
        *args,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await process.communicate()
    lines = out.decode().splitlines()
    assert len(lines) == 1, lines
    return await process.wait(), lines[0]


async def _answers(status: str, path: str, code: int) -> bool:
    """Whether the status server answers `path` with `code` (asked directly: quicker than a probe process)."""
    async with httpx.AsyncClient(timeout=5) as client:
        try:
            return (await client.get(f"http://{status}{path}")).status_code == code
        except httpx.TransportError:
            return False
