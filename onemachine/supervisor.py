"""Child processes kept running: each one restarted with exponential back-off whenever it exits on its own.

One restart loop serves both kinds of child `syllabus up` runs: the services (`python -m syllabus <name>`)
and the servers it starts (nats-server, valkey-server, ready once their log says so). Hand-written because
what it needs is small and tied to asyncio's subprocesses and to the servers' log-based readiness, which the
process supervisors on PyPI (supervisord, circus) would run outside this process, configured by files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from onemachine.servers import ChildServer, ServerError, die_with_parent

log = logging.getLogger("syllabus.up")

T = TypeVar("T")

# The exit code of a command stopped by a configuration error (cli/main.py).
CONFIG_ERROR_EXIT = 2
# First restart delay; it doubles with each crash in a row, up to RestartPolicy.max_delay.
FIRST_RESTART_DELAY = 0.5
# A child that ran at least this long before dying is treated as having recovered: its back-off starts over.
STABLE_AFTER = 30.0


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


@dataclass
class RestartPolicy:
    first_delay: float = FIRST_RESTART_DELAY
    max_delay: float = 30.0
    stable_after: float = STABLE_AFTER

    def next_delay(self, previous: float, uptime: float) -> float:
        if uptime >= self.stable_after or previous <= 0:
            return min(self.first_delay, self.max_delay)
        return min(previous * 2, self.max_delay)


class LaunchError(Exception):
    """The child could not be started; the message says why in one line."""


class Supervised:
    """One child process, restarted with back-off whenever it exits on its own, until stop().

    Subclasses say how to launch the child and how to end it; the loop, its back-off and its log lines are
    the same for every kind of child.
    """

    def __init__(
        self,
        name: str,
        policy: RestartPolicy,
        stop_timeout: float,
        on_exit: Callable[[int | None], None] | None = None,
        on_give_up: Callable[[], None] | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.stop_timeout = stop_timeout
        # Told each unexpected exit (the code, None if the child could not even start), before the back-off.
        self.on_exit = on_exit
        # Told when the child exits in a way that restarting would only repeat (see _cannot_run).
        self.on_give_up = on_give_up
        self.restarts = 0
        self.process: asyncio.subprocess.Process | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None and self.process.returncode is None else None

    def start(self, running: asyncio.subprocess.Process | None = None) -> None:
        """Supervise in the background: launch the child, or take over `running`, one launched already."""
        self.process = running
        if running is not None:
            self._log_started(running)
        self._task = asyncio.create_task(self._run(running), name=f"supervise-{self.name}")

    async def stop(self) -> None:
        """End the child (see _end) and stop restarting it, whatever step the loop is at."""
        self._stopping.set()
        if self._task is not None:
            await self._task

    # -- for subclasses ------------------------------------------------------------------------------------

    async def _launch(self) -> asyncio.subprocess.Process:
        """Start the child; raise LaunchError if it cannot be started."""
        raise NotImplementedError

    async def _end(self, process: asyncio.subprocess.Process) -> None:
        """Stop the child on request."""
        await terminate(process, self.name, self.stop_timeout)

    def _cannot_run(self, code: int) -> bool:
        """Whether this exit code says that starting the child again cannot help."""
        return False

    def _started_detail(self) -> str:
        """Words added to the "started" line."""
        return ""

    def _exit_detail(self) -> str:
        """Words added to the lines that report an exit or a failed start."""
        return ""

    # -- the loop ------------------------------------------------------------------------------------------

    def _log_started(self, process: asyncio.subprocess.Process) -> None:
        log.info("%s started (pid %s)%s", self.name, process.pid, self._started_detail())

    async def _run(self, running: asyncio.subprocess.Process | None) -> None:
        loop = asyncio.get_running_loop()
        delay = 0.0
        process = running
        while True:
            started = loop.time()
            failure = ""
            code: int | None = None
            if process is None:
                try:
                    process = await self._unless_stopping(self._launch())
                except LaunchError as exc:
                    failure = str(exc)
                else:
                    if process is None:
                        # Stopped while launching; the launch has undone itself.
                        return
                    self._log_started(process)
            if process is not None:
                self.process = process
                code = await self._wait_or_stop(process)
                if code is None:
                    return
                if self._cannot_run(code):
                    log.error("%s cannot run with this configuration; not restarting it", self.name)
                    if self.on_give_up is not None:
                        self.on_give_up()
                    return
            process = None
            if self.on_exit is not None:
                self.on_exit(code)
            uptime = loop.time() - started
            delay = self.policy.next_delay(delay, uptime)
            self.restarts += 1
            if failure:
                log.error(
                    "%s could not start: %s; trying again in %.1fs (restart %d)%s",
                    self.name,
                    failure,
                    delay,
                    self.restarts,
                    self._exit_detail(),
                )
            else:
                assert code is not None
                log.warning(
                    "%s exited with %s after %.1fs; restarting in %.1fs (restart %d)%s",
                    self.name,
                    describe_exit(code),
                    uptime,
                    delay,
                    self.restarts,
                    self._exit_detail(),
                )
            # The back-off itself, cut short by a stop request.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return

    async def _unless_stopping(self, work: Awaitable[T]) -> T | None:
        """`work`'s result, or None once a stop request has cancelled it (a launch cleans up when cancelled)."""
        task = asyncio.ensure_future(work)
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({task, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, LaunchError):
            await task
        return None

    async def _wait_or_stop(self, process: asyncio.subprocess.Process) -> int | None:
        """The exit code if the child ended by itself, or None once a stop request has ended it."""
        exited = asyncio.create_task(process.wait())
        stopping = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if exited.done() and not self._stopping.is_set():
            return exited.result()
        await self._end(process)
        return None


class SupervisedService(Supervised):
    """A service (`python -m syllabus <service>`, or any command) as a supervised child."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        policy: RestartPolicy,
        stop_timeout: float,
        on_exit: Callable[[int | None], None] | None = None,
        on_give_up: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(name, policy, stop_timeout, on_exit, on_give_up)
        self.argv = list(argv)
        self.env = dict(env)

    async def _launch(self) -> asyncio.subprocess.Process:
        try:
            return await asyncio.create_subprocess_exec(
                *die_with_parent(self.argv),
                env=self.env,
                stdin=subprocess.DEVNULL,
                # Own session: a terminal Ctrl-C reaches only `up`, which then stops children in order.
                start_new_session=True,
            )
        except OSError as exc:
            # Not a traceback: the message (e.g. "No such file or directory") says it all.
            raise LaunchError(str(exc)) from None

    def _cannot_run(self, code: int) -> bool:
        # It said what is wrong with its configuration; starting it again would only say it again.
        return code == CONFIG_ERROR_EXIT


class SupervisedServer(Supervised):
    """A server already started (its first start is the caller's, whose failure means there is no stack),
    restarted on its own port and data, ready again once its log says so."""

    def __init__(
        self, server: ChildServer, policy: RestartPolicy, on_exit: Callable[[int | None], None] | None = None
    ) -> None:
        super().__init__(server.name, policy, server.stop_timeout, on_exit)
        self.server = server

    def start(self, running: asyncio.subprocess.Process | None = None) -> None:
        super().start(running or self.server.process)

    async def stop(self) -> None:
        await super().stop()
        # Also when the server had died and was waiting out its back-off: its log is read to the end and closed.
        await self.server.stop()

    async def _launch(self) -> asyncio.subprocess.Process:
        try:
            await self.server.restart()
        except ServerError as exc:
            raise LaunchError(exc.summary) from None
        assert self.server.process is not None
        return self.server.process

    async def _end(self, process: asyncio.subprocess.Process) -> None:
        await self.server.stop()
        log.info("%s stopped (%s)", self.name, describe_exit(process.returncode or 0))

    def _started_detail(self) -> str:
        return f" at {self.server.url}"

    def _exit_detail(self) -> str:
        return f"; its log: {self.server.log_path}"


async def terminate(process: asyncio.subprocess.Process, name: str, grace: float) -> None:
    """SIGTERM, then SIGKILL if it is still running after `grace` seconds."""
    if process.returncode is None:
        with contextlib.suppress(ProcessLookupError):
            process.terminate()
        try:
            await asyncio.wait_for(process.wait(), grace)
        except TimeoutError:
            log.warning("%s (pid %s) still running %.0fs after SIGTERM; killing it", name, process.pid, grace)
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
    log.info("%s stopped (%s)", name, describe_exit(process.returncode or 0))
