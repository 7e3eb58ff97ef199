"""`syllabus up`: the supervisor on its own with trivial children, then the whole stack as a real process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from syllabus.health import wait_healthy
from syllabus.servers import free_port
from syllabus.stack import RestartPolicy, Supervised, home_lock

# Generous bounds so a slow machine never fails a test; a healthy run takes a fraction of them.
UP_DEADLINE = 90.0
STEP_DEADLINE = 60.0


# -- the supervisor with trivial children -------------------------------------------------------------------


def test_restart_delay_doubles_up_to_the_cap_and_starts_over_after_a_stable_run() -> None:
    policy = RestartPolicy(first_delay=0.5, max_delay=3.0, stable_after=30.0)
    delays = []
    delay = 0.0
    for _ in range(6):
        delay = policy.next_delay(delay, uptime=1.0)
        delays.append(delay)
    assert delays == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert policy.next_delay(3.0, uptime=31.0) == 0.5


def test_home_lock_is_exclusive_and_names_its_holder(tmp_path: Path) -> None:
    with home_lock(tmp_path) as holder:
        assert holder is None
        # flock belongs to the open file, so a second open in this same process is refused like another process.
        with home_lock(tmp_path) as other:
            assert other == str(os.getpid())
    with home_lock(tmp_path) as holder:
        assert holder is None


def _python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


async def test_crashing_child_is_restarted_and_each_restart_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="syllabus.up")
    exits: asyncio.Queue[int | None] = asyncio.Queue()
    child = Supervised(
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
    child = Supervised(
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
    child = Supervised(
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
    child = Supervised(
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


# -- `syllabus up` as a real process ------------------------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except (FileNotFoundError, ProcessLookupError):
        return ""


def descendants(pid: int) -> dict[int, str]:
    """Every process below `pid` (children, their children, ...) with its command line."""
    found: dict[int, str] = {}
    pending = [pid]
    while pending:
        parent = pending.pop()
        for children in Path(f"/proc/{parent}/task").glob("*/children"):
            try:
                text = children.read_text()
            except (FileNotFoundError, ProcessLookupError):
                continue
            for child in map(int, text.split()):
                found[child] = _cmdline(child)
                pending.append(child)
    return found


def _still_running(processes: Mapping[int, str]) -> dict[int, str]:
    # Same pid with the same command line: the very process, not a newcomer that reused the pid.
    return {pid: cmd for pid, cmd in processes.items() if cmd and _cmdline(pid) == cmd}


def up_env(home: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYLLABUS_")}
    env.update(
        SYLLABUS_HOME=str(home),
        SYLLABUS_GRPC_ADDR=f"127.0.0.1:{free_port()}",
        SYLLABUS_HTTP_ADDR=f"127.0.0.1:{free_port()}",
        SYLLABUS_RESTART_BACKOFF_MAX="1",
        SYLLABUS_STOP_TIMEOUT="20",
    )
    return env


class Up:
    """A running `syllabus up` whose output (stdout and stderr, in order) is read as it comes."""

    def __init__(self, process: asyncio.subprocess.Process, env: Mapping[str, str]) -> None:
        self.process = process
        self.env = dict(env)
        self.home = Path(env["SYLLABUS_HOME"])
        self.grpc_addr = env["SYLLABUS_GRPC_ADDR"]
        self.lines: list[str] = []
        self._eof = False
        self._changed = asyncio.Condition()
        assert process.stdout is not None
        self._reader = asyncio.create_task(self._read(process.stdout))

    @classmethod
    async def start(cls, env: Mapping[str, str]) -> Up:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syllabus",
            "up",
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return cls(process, env)

    async def _read(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            async with self._changed:
                self.lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        async with self._changed:
            self._eof = True
            self._changed.notify_all()

    async def wait_for(
        self, pattern: str, after: int = 0, deadline: float = STEP_DEADLINE
    ) -> tuple[int, re.Match[str]]:
        """The index and match of the first output line from `after` on that matches `pattern`."""
        regex = re.compile(pattern)

        async def find() -> tuple[int, re.Match[str]]:
            async with self._changed:
                while True:
                    for index in range(after, len(self.lines)):
                        if match := regex.search(self.lines[index]):
                            return index, match
                    if self._eof:
                        raise AssertionError(f"`syllabus up` ended without printing {pattern!r}:\n{self.output()}")
                    await self._changed.wait()

        try:
            return await asyncio.wait_for(find(), deadline)
        except TimeoutError:
            raise AssertionError(
                f"no {pattern!r} from `syllabus up` within {deadline:.0f}s:\n{self.output()}"
            ) from None

    def output(self) -> str:
        return "\n".join(self.lines[-80:])

    async def stop(self) -> int:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(self.process.wait(), STEP_DEADLINE)
        await self._reader
        return code

    async def kill_everything(self) -> None:
        """Test-failure cleanup: no process of this stack survives the test, whatever happened."""
        leftovers = descendants(self.process.pid)
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        for pid in _still_running(leftovers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self._reader.cancel()


@pytest_asyncio.fixture(scope="module")
async def stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Up]:
    up = await Up.start(up_env(tmp_path_factory.mktemp("home")))
    try:
        await up.wait_for(r"^Syllabus is up\.", deadline=UP_DEADLINE)
        yield up
    finally:
        try:
            await up.stop()
        finally:
            await up.kill_everything()


@pytest.mark.e2e
async def test_up_serves_grpc_health_and_says_where_to_connect(stack: Up) -> None:
    async with grpc.aio.insecure_channel(stack.grpc_addr) as channel:
        response = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert response.status == health_pb2.HealthCheckResponse.SERVING
    banner = "\n".join(stack.lines)
    assert f"gRPC   {stack.grpc_addr}" in banner
    assert f"HTTP   http://{stack.env['SYLLABUS_HTTP_ADDR']}" in banner
    assert re.search(r"NATS   nats://127\.0\.0\.1:\d+", banner)
    assert re.search(r"Redis  redis://127\.0\.0\.1:\d+", banner)
    assert f"state  {stack.home}" in banner
    assert "buf curl" in banner
    assert (stack.home / "nats" / "jetstream").is_dir()
    assert (stack.home / "valkey" / "appendonlydir").is_dir()


@pytest.mark.e2e
async def test_second_up_on_the_same_home_is_refused(stack: Up) -> None:
    second = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syllabus",
        "up",
        env=stack.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(second.communicate(), STEP_DEADLINE)
    assert second.returncode == 1
    assert stderr.decode().strip() == (
        f"syllabus: already running in {stack.home} (pid {stack.process.pid}); "
        f"stop it with Ctrl-C or kill {stack.process.pid}"
    )


@pytest.mark.e2e
async def test_killed_service_is_restarted_and_the_restart_logged(stack: Up) -> None:
    gateways = [pid for pid, cmd in descendants(stack.process.pid).items() if cmd.endswith("-m syllabus gateway")]
    assert len(gateways) == 1, descendants(stack.process.pid)
    mark = len(stack.lines)
    os.kill(gateways[0], signal.SIGKILL)
    index, _ = await stack.wait_for(r"gateway exited with signal SIGKILL .*restarting in", after=mark)
    _, started = await stack.wait_for(r"gateway started \(pid (\d+)\)", after=index)
    assert int(started.group(1)) != gateways[0]
    await wait_healthy(stack.grpc_addr, STEP_DEADLINE)


@pytest.mark.e2e
async def test_sigterm_stops_everything_in_order_and_leaves_no_process(tmp_path: Path) -> None:
    up = await Up.start(up_env(tmp_path / "home"))
    try:
        await up.wait_for(r"^Syllabus is up\.", deadline=UP_DEADLINE)
        tree = descendants(up.process.pid)
        commands = " | ".join(tree.values())
        assert "nats-server" in commands and "valkey-server" in commands
        for service in ("gateway", "generator", "renderer", "scheduler"):
            assert f"-m syllabus {service}" in commands
        mark = len(up.lines)
        assert await up.stop() == 0
        assert _still_running(tree) == {}
        order = [
            (await up.wait_for(rf"stopping {re.escape(step)}$", after=mark))[0]
            for step in ("gateway", "generator, renderer", "scheduler", "Valkey", "NATS")
        ]
        assert order == sorted(order)
        assert up.lines[-1] == "stopped"
    finally:
        await up.kill_everything()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SYLLABUS_GRPC_ADDR", "nonsense"),
        ("SYLLABUS_SERVICES", "gateway,mailer"),
        ("SYLLABUS_RENDERER_CONCURRENCY", "0"),
    ],
)
async def test_bad_configuration_is_one_line_naming_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    env = up_env(tmp_path / "home")
    env[variable] = value
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syllabus",
        "up",
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), STEP_DEADLINE)
    assert process.returncode == 2
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    assert variable in lines[0]
    assert stdout == b""
    # Nothing was started, not even the lock taken.
    assert not (tmp_path / "home").exists()


async def test_child_with_a_configuration_error_is_not_restarted(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="syllabus.up")
    gave_up = asyncio.Event()
    child = Supervised(
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


async def test_up_fails_clearly_when_the_grpc_address_is_taken(tmp_path: Path) -> None:
    env = up_env(tmp_path / "home")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    env["SYLLABUS_GRPC_ADDR"] = f"127.0.0.1:{taken.getsockname()[1]}"
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syllabus",
            "up",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output, _ = await asyncio.wait_for(process.communicate(), 120)
    finally:
        taken.close()
    text = output.decode()
    assert process.returncode == 1, text
    assert "SYLLABUS_GRPC_ADDR" in text and "cannot listen there" in text
    assert "gateway could not start with this configuration" in text
    assert "Traceback" not in text
