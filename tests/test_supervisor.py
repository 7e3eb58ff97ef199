"""The supervisor: trivial children restarted and stopped, then the real servers restarted on their port and data."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import nats
import pytest
import pytest_asyncio
from redis.asyncio import Redis

from onemachine.servers import ChildServer, NatsServer, ValkeyServer
from onemachine.supervisor import RestartPolicy, SupervisedServer, SupervisedService
from tests.ports import unassigned_port

# A bound on waits so a broken supervisor fails the test instead of hanging it; never reached when things work.
STEP_DEADLINE = 60.0


# -- the restart loop with trivial children ------------------------------------------------------------------


def test_restart_delay_doubles_up_to_the_cap_and_starts_over_after_a_stable_run() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=3.0, stable_after=30.0)
    delays = []
    delay = 0.0
    for _ in range(6):
        delay = policy.next_delay(delay, uptime=1.0)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert policy.next_delay(3.0, uptime=31.0) == 0.5


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


async def test_crashing_child_is_restarted_and_each_restart_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="syllabus.up")
    exits: asyncio.Queue[int | None] = asyncio.Queue()
    child = SupervisedService(
        "crasher",
        _python("raise SystemExit(3)"),
        os.environ,
        RestartPolicy(first_delay=0.01, max_delay=0.05),
        stop_timeout=10,
        on_exit=exits.put_nowait,
    )
    child.start()
    try:
        codes = [await asyncio.wait_for(exits.get(), STEP_DEADLINE) for _ in range(3)]
    finally:
        await asyncio.wait_for(child.stop(), STEP_DEADLINE)
    assert codes == [3, 3, 3]
    assert child.restarts >= 3
    restarts = [r.getMessage() for r in caplog.records if "restarting" in r.getMessage()]
    assert restarts[0].startswith("crasher exited with code 3")
    assert "(restart 1)" in restarts[0] and "(restart 3)" in restarts[2]


async def test_stop_during_backoff_does_not_wait_for_it() -> None:
    exits: asyncio.Queue[int | None] = asyncio.Queue()
    child = SupervisedService(
        "crasher",
        _python("raise SystemExit(1)"),
        os.environ,
        RestartPolicy(first_delay=3600, max_delay=3600),
        stop_timeout=10,
        on_exit=exits.put_nowait,
    )
    child.start()
    assert await asyncio.wait_for(exits.get(), STEP_DEADLINE) == 1
    await asyncio.wait_for(child.stop(), STEP_DEADLINE)
    assert child.restarts == 1


async def test_unstartable_child_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    exits: asyncio.Queue[int | None] = asyncio.Queue()
    child = SupervisedService(
        "ghost",
        ["/nonexistent/ghost-service"],
        os.environ,
        RestartPolicy(first_delay=0.01, max_delay=0.01),
        stop_timeout=10,
        on_exit=exits.put_nowait,
    )
    child.start()
    try:
        # 127, as a shell reports a command it cannot run.
        assert await asyncio.wait_for(exits.get(), STEP_DEADLINE) == 127
        assert await asyncio.wait_for(exits.get(), STEP_DEADLINE) == 127
    finally:
        await asyncio.wait_for(child.stop(), STEP_DEADLINE)
    assert any(r.getMessage().startswith("ghost exited with code 127") for r in caplog.records)


async def test_stop_sends_sigterm_then_sigkill_to_a_child_that_ignores_it() -> None:
    loop = asyncio.get_running_loop()
    ready = asyncio.Event()
    # The child tells us (SIGUSR1) once it ignores SIGTERM, so the stop below really tests the escalation.
    loop.add_signal_handler(signal.SIGUSR1, ready.set)
    exits: asyncio.Queue[int | None] = asyncio.Queue()
    child = SupervisedService(
        "stubborn",
        _python(
            "import os, signal\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "os.kill(os.getppid(), signal.SIGUSR1)\n"
            "while True: signal.pause()\n"
        ),
        os.environ,
        RestartPolicy(),
        stop_timeout=0.2,
        on_exit=exits.put_nowait,
    )
    try:
        child.start()
        await asyncio.wait_for(ready.wait(), STEP_DEADLINE)
        process = child.process
        assert process is not None
        await asyncio.wait_for(child.stop(), STEP_DEADLINE)
    finally:
        loop.remove_signal_handler(signal.SIGUSR1)
    assert process.returncode == -signal.SIGKILL
    # Stopping on request is not a crash: no restart, no exit report.
    assert exits.empty()
    assert child.restarts == 0


async def test_child_with_a_configuration_error_is_not_restarted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="syllabus.up")
    gave_up = asyncio.Event()
    child = SupervisedService(
        "misconfigured",
        _python("raise SystemExit(2)"),
        os.environ,
        RestartPolicy(first_delay=0.01, max_delay=0.05),
        stop_timeout=10,
        on_give_up=gave_up.set,
    )
    child.start()
    try:
        await asyncio.wait_for(gave_up.wait(), STEP_DEADLINE)
    finally:
        await asyncio.wait_for(child.stop(), STEP_DEADLINE)
    assert child.restarts == 0
    assert any("not restarting" in r.getMessage() for r in caplog.records)


# -- the servers ----------------------------------------------------------------------------------------------


class UpLog(logging.Handler):
    """The supervisor's log lines as they come, to wait for one (no sleeping)."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.messages: list[str] = []
        self._changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())
        self._changed.set()

    async def wait_for(self, pattern: str, after: int = 0) -> tuple[int, re.Match[str]]:
        """The index and match of the first line from `after` on that matches `pattern`."""
        regex = re.compile(pattern)

        async def find() -> tuple[int, re.Match[str]]:
            while True:
                self._changed.clear()
                for index in range(after, len(self.messages)):
                    if match := regex.search(self.messages[index]):
                        return index, match
                await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), STEP_DEADLINE)
        except TimeoutError:
            raise AssertionError(f"no {pattern!r} in {self.messages}") from None


@pytest_asyncio.fixture
async def up_log() -> AsyncIterator[UpLog]:
    logger = logging.getLogger("syllabus.up")
    handler = UpLog()
    level = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


QUICK = RestartPolicy(first_delay=0.01, max_delay=0.05)


async def test_killed_nats_is_restarted_on_its_port_with_its_streams_and_its_log(tmp_path: Path, up_log: UpLog) -> None:
    # A port no other program is handed while the server is down (one it picked could be).
    server = NatsServer(tmp_path / "nats", port=unassigned_port())
    await server.start()
    url = server.url
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(name="KEEP", subjects=["keep.>"])
    finally:
        await nc.close()
    supervised = SupervisedServer(server, QUICK)
    supervised.start()
    try:
        first = server.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        index, _ = await up_log.wait_for(
            rf"^nats-server exited with signal SIGKILL .*restarting in .*\(restart 1\); "
            rf"its log: {re.escape(str(server.log_path))}$"
        )
        _, started = await up_log.wait_for(r"^nats-server started \(pid (\d+)\) at (\S+)$", after=index)
        assert int(started.group(1)) != first
        assert started.group(2) == url == server.url
        nc = await nats.connect(url)
        try:
            assert (await nc.jetstream().stream_info("KEEP")).config.name == "KEEP"
        finally:
            await nc.close()
    finally:
        await supervised.stop()
    assert not server.running
    # Both runs in one log, so the first run's last words survive the restart.
    assert server.log_path.read_text().count("--- syllabus:") == 2
    assert not server.log_path.with_suffix(".log.1").exists()


async def test_restart_on_a_taken_port_is_logged_and_retried_on_the_same_port(tmp_path: Path, up_log: UpLog) -> None:
    server = NatsServer(tmp_path / "nats", port=unassigned_port())
    await server.start()
    url = server.url
    assert server.port is not None
    port = server.port
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    codes: list[int | None] = []

    def on_exit(code: int | None) -> None:
        # Told before the back-off, so the port is taken before the restart and freed after it failed once.
        codes.append(code)
        if code is not None:
            blocker.bind(("127.0.0.1", port))
            blocker.listen()
        else:
            blocker.close()

    supervised = SupervisedServer(server, QUICK, on_exit=on_exit)
    supervised.start()
    try:
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        index, _ = await up_log.wait_for(r"^nats-server could not start: .*address already in use.*; trying again in")
        await up_log.wait_for(r"^nats-server started \(pid \d+\)", after=index)
        assert server.url == url
        nc = await nats.connect(url)
        await nc.close()
    finally:
        blocker.close()
        await supervised.stop()
    assert codes == [-signal.SIGKILL, None]


async def test_killed_valkey_is_restarted_on_its_port_with_its_data(tmp_path: Path, up_log: UpLog) -> None:
    server = ValkeyServer(tmp_path / "valkey", port=unassigned_port())
    await server.start()
    url = server.url
    supervised = SupervisedServer(server, QUICK)
    supervised.start()
    try:
        before = Redis.from_url(url)
        try:
            await before.set("course", "rust")
        finally:
            await before.aclose()
        assert server.pid is not None
        os.kill(server.pid, signal.SIGKILL)
        index, _ = await up_log.wait_for(r"^valkey-server exited with signal SIGKILL .*its log: ")
        _, started = await up_log.wait_for(r"^valkey-server started \(pid \d+\) at (\S+)$", after=index)
        assert started.group(1) == url
        after = Redis.from_url(url)
        try:
            assert await after.get("course") == b"rust"
        finally:
            await after.aclose()
    finally:
        await supervised.stop()
    assert not server.running


async def test_stop_during_the_back_off_of_a_server_does_not_restart_it(tmp_path: Path, up_log: UpLog) -> None:
    server = NatsServer(tmp_path / "nats")
    await server.start()
    exits: asyncio.Queue[int | None] = asyncio.Queue()
    supervised = SupervisedServer(server, RestartPolicy(first_delay=3600, max_delay=3600), on_exit=exits.put_nowait)
    supervised.start()
    pid, url = server.pid, server.url
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    assert await asyncio.wait_for(exits.get(), STEP_DEADLINE) == -signal.SIGKILL
    await asyncio.wait_for(supervised.stop(), STEP_DEADLINE)
    assert not server.running
    assert supervised.restarts == 1
    # Only the first start, taken over from the caller.
    assert [m for m in up_log.messages if " started " in m] == [f"nats-server started (pid {pid}) at {url}"]


# First start: ready at once. Any later start: says so, then never becomes ready.
_READY_ONCE = """
import pathlib, signal, sys
marker = pathlib.Path(sys.argv[1])
again = marker.exists()
marker.touch()
print("starting again" if again else "ready", flush=True)
signal.pause()
"""


class ReadyOnce(ChildServer):
    """A server whose restart hangs before it is ready, to stop `up` in the middle of a restart."""

    name = "ready-once"

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir, stop_timeout=10)
        self.restarting = asyncio.Event()

    def _command(self) -> list[str]:
        return [sys.executable, "-c", _READY_ONCE, str(self.data_dir / "started")]

    def _on_line(self, line: str) -> None:
        if line == "ready":
            self._ready.set()
        elif line == "starting again":
            self.restarting.set()

    @property
    def url(self) -> str:
        return "ready-once://"


async def test_stop_during_a_restart_ends_the_half_started_server_and_does_not_restart_it(
    tmp_path: Path, up_log: UpLog
) -> None:
    server = ReadyOnce(tmp_path / "server")
    await server.start()
    supervised = SupervisedServer(server, QUICK)
    supervised.start()
    pid = server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    await asyncio.wait_for(server.restarting.wait(), STEP_DEADLINE)
    half_started = server.process
    assert half_started is not None and half_started.returncode is None
    await asyncio.wait_for(supervised.stop(), STEP_DEADLINE)
    assert half_started.returncode == -signal.SIGTERM
    assert not server.running
    assert supervised.restarts == 1
    assert [m for m in up_log.messages if " started " in m or "could not start" in m] == [
        f"ready-once started (pid {pid}) at ready-once://"
    ]
