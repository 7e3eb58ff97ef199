"""The whole system as a new user runs it: `syllabus up` as a real process, on free ports, in a temp home."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from onemachine.health import wait_healthy
from tests.ports import HOST, unassigned_port

ROOT = Path(__file__).resolve().parents[2]
# Generous bounds so a slow machine never fails a test; a healthy run takes a fraction of them.
UP_DEADLINE = 90.0
STOP_DEADLINE = 60.0
STEP_DEADLINE = 60.0


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class Stack:
    process: asyncio.subprocess.Process
    env: dict[str, str]
    grpc_addr: str
    log: Path

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    async def run(self, *argv: str, stdin: bytes | None = None) -> Run:
        """A command as a user types it, with this stack's environment (so its SYLLABUS_GRPC_ADDR)."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            env=self.env,
            cwd=ROOT,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        try:
            out, err = await asyncio.wait_for(process.communicate(stdin), STEP_DEADLINE)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise AssertionError(f"{argv} did not finish within {STEP_DEADLINE:.0f}s") from None
        assert process.returncode is not None
        return Run(process.returncode, out.decode(), err.decode())

    async def syllabus(self, *argv: str) -> Run:
        return await self.run(sys.executable, "-m", "syllabus", *argv)


def stack_env(home: Path) -> dict[str, str]:
    # The developer's own SYLLABUS_* settings must not leak into the stack under test.
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYLLABUS_")}
    env.update(
        SYLLABUS_HOME=str(home),
        SYLLABUS_GRPC_ADDR=f"{HOST}:{unassigned_port()}",
        SYLLABUS_HTTP_ADDR=f"{HOST}:{unassigned_port()}",
        SYLLABUS_STOP_TIMEOUT="20",
    )
    return env


async def _healthy_or_dead(
    process: asyncio.subprocess.Process, addr: str, tls: grpc.ChannelCredentials | None = None
) -> str | None:
    """None once the gateway answers SERVING; otherwise why not (`up` exited, or the deadline passed)."""
    healthy = asyncio.create_task(wait_healthy(addr, UP_DEADLINE, tls=None if tls is None else (tls, ())))
    exited = asyncio.create_task(process.wait())
    try:
        await asyncio.wait({healthy, exited}, return_when=asyncio.FIRST_COMPLETED)
        if healthy.done():
            error = healthy.exception()
            return None if error is None else str(error)
        return f"`syllabus up` exited with code {process.returncode} before the gateway answered"
    finally:
        healthy.cancel()
        exited.cancel()


@contextlib.asynccontextmanager
async def running_stack(
    base: Path,
    extra_env: Mapping[str, str] | None = None,
    tls: grpc.ChannelCredentials | None = None,
    args: Sequence[str] = (),
) -> AsyncIterator[Stack]:
    """`syllabus up` in `base/home`, its output in `base/up.log`, with `extra_env` on top of the clean environment;
    stopped with SIGTERM afterwards (and required to exit 0). `tls`: how to reach a gateway that takes TLS only;
    `args`: the command's own (`--cluster 3`)."""
    env = stack_env(base / "home") | dict(extra_env or {})
    log = base / "up.log"
    # Output to a file, not a pipe: nobody reads it while tests run, and a full pipe would stall `up`.
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syllabus",
            "up",
            *args,
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    stack = Stack(process, env, env["SYLLABUS_GRPC_ADDR"], log)
    try:
        failure = await _healthy_or_dead(process, stack.grpc_addr, tls)
        if failure is not None:
            pytest.fail(f"{failure}; its output:\n{stack.log_tail()}")
        yield stack
    finally:
        await _stop(process, stack)


@pytest_asyncio.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path_factory.mktemp("e2e")) as running:
        yield running


async def _stop(process: asyncio.subprocess.Process, stack: Stack) -> None:
    """SIGTERM, as Ctrl-C would; `up` stops its services and servers in order and exits 0."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        code = await asyncio.wait_for(process.wait(), STOP_DEADLINE)
    except TimeoutError:
        # Its children follow it (they die with their parent).
        process.kill()
        await process.wait()
        raise AssertionError(
            f"`syllabus up` still running {STOP_DEADLINE:.0f}s after SIGTERM:\n{stack.log_tail()}"
        ) from None
    assert code == 0, f"`syllabus up` exited with {code}:\n{stack.log_tail()}"
