"""Every service, as a real process, rides out a NATS outage and stops cleanly in the middle of one: it says
once that it lost NATS, and SIGTERM ends it with exit code 0, no error and no traceback."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from onemachine.servers import NatsServer
from tests.e2e.conftest import ROOT, STEP_DEADLINE, stack_env

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

    async def until(self, text: str) -> None:
        async with asyncio.timeout(STEP_DEADLINE):
            while not any(text in line for line in self.lines):
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
    await nats.start()
    env = stack_env(tmp_path / "home") | {"SYLLABUS_NATS_URL": nats.url}
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
        await output.until(READY[service])
        await nats.stop()
        await output.until("lost the connection to NATS")
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
    assert text.count("lost the connection to NATS") == 1, text
