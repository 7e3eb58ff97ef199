"""The task SDK: job kinds of the user's own, written as async Python functions and run by `syllabus worker`.

    app = TaskApp("acme")                                  # the worker pool

    @app.task("math.stats", max_attempts=3, timeout=30)
    async def stats(ctx: TaskContext, request: StatsRequest) -> StatsResult: ...

    @app.task("text.reverse")
    async def reverse(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]: ...

A handler's input is typed by its second parameter: a protobuf message class takes the task's packed message
(or its JSON, parsed into that class); anything else takes the JSON as a dict. What it returns becomes the
job's result: a message is packed, a dict is JSON, a str is the result's text, None is an empty result.
Everything else is the worker runtime's, unchanged: leases, heartbeats, retries with backoff, dead letters,
cancellation (CancelledError at the handler's next await), progress and events.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from google.protobuf import json_format
from google.protobuf.message import Message

from syllabus.hooks import WorkerHook
from syllabus.taskregistry import TaskDeclaration
from syllabus.v1 import job_pb2
from syllabus.worker import Defer, JobContext, JobError, PermanentError, RetryableError

__all__ = ["Defer", "JobError", "PermanentError", "RetryableError", "TaskApp", "TaskContext", "WorkerHook"]

# The rules the gateway's proto validation applies, checked here too so a bad name fails at import.
_TASK_NAME = re.compile(r"^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$")
_POOL_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_TIMEOUT = 600.0
# Seconds before a job of a task this process does not know is offered again.
UNKNOWN_TASK_DEFER = 1.0

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


@dataclass(frozen=True)
class TaskContext:
    """What a task handler gets beside its input: the job, and a way to report progress."""

    _job: JobContext

    @property
    def job_id(self) -> str:
        return self._job.job.id

    @property
    def task(self) -> str:
        return self._job.job.spec.task.name

    @property
    def attempt(self) -> int:
        return self._job.attempt

    @property
    def max_attempts(self) -> int:
        return self._job.job.max_attempts

    @property
    def labels(self) -> Mapping[str, str]:
        return self._job.job.options.labels

    async def progress(self, percent: float, message: str = "") -> None:
        """Stored on the job and streamed to its watchers; refused (the attempt is stopped) once it lost its lease."""
        await self._job.progress(percent, message)


@dataclass(frozen=True)
class _Task:
    declaration: TaskDeclaration
    handler: Callable[[TaskContext, Any], Awaitable[Any]]
    # The protobuf class of the input, or None for JSON (a dict).
    input_type: type[Message] | None


class TaskApp:
    """A worker pool: the tasks its processes serve. `syllabus worker MODULE:ATTRIBUTE` runs one process of it."""

    def __init__(self, pool: str, *, hooks: Sequence[WorkerHook] = ()) -> None:
        if not _POOL_NAME.match(pool):
            raise ValueError(
                f"pool name {pool!r} must be lowercase letters, digits, '-' or '_', starting with a letter"
            )
        self.pool = pool
        # Given to the worker runtime of each process of the pool (syllabus.hooks).
        self.hooks = tuple(hooks)
        self._tasks: dict[str, _Task] = {}

    def task(
        self, name: str, *, max_attempts: int = DEFAULT_MAX_ATTEMPTS, timeout: float = DEFAULT_TIMEOUT
    ) -> Callable[[F], F]:
        """Declare `name` as served by the decorated async function."""
        if not _TASK_NAME.match(name) or len(name) > 128:
            raise ValueError(f"task name {name!r} must be dot-separated lowercase words, e.g. 'math.stats'")
        if name in self._tasks:
            raise ValueError(f"task {name!r} is declared twice in pool {self.pool!r}")
        if not 1 <= max_attempts <= 100:
            raise ValueError(f"task {name!r}: max_attempts must be from 1 to 100, not {max_attempts}")
        if not 0 < timeout <= 86400:
            raise ValueError(f"task {name!r}: timeout must be more than 0 and at most 86400 seconds, not {timeout}")

        def register(handler: F) -> F:
            is_async = inspect.iscoroutinefunction(handler)  # a bool, so that `handler` keeps its type F
            if not is_async:
                raise TypeError(f"task {name!r}: {handler.__qualname__} must be an async function")
            input_type = _input_type(handler)
            declaration = TaskDeclaration(
                name=name,
                pool=self.pool,
                max_attempts=max_attempts,
                timeout=float(timeout),
                input_type=input_type.DESCRIPTOR.full_name if input_type is not None else "",
            )
            self._tasks[name] = _Task(declaration, handler, input_type)
            return handler

        return register

    @property
    def declarations(self) -> list[TaskDeclaration]:
        return [task.declaration for task in self._tasks.values()]

    @property
    def longest_timeout(self) -> float:
        return max((task.declaration.timeout for task in self._tasks.values()), default=DEFAULT_TIMEOUT)

    async def handle(self, ctx: JobContext) -> job_pb2.JobResult:
        """The worker runtime's handler for the pool's task jobs."""
        spec = ctx.job.spec.task
        task = self._tasks.get(spec.name)
        if task is None:
            # Another process of the pool, a newer version, declared it (a rolling deploy): it is handed back for
            # one of those, not failed.
            raise Defer(UNKNOWN_TASK_DEFER, f"this process of pool {self.pool!r} does not serve task {spec.name!r}")
        value = _decode(spec, task.input_type)
        if ctx.job.options.HasField("timeout"):
            output = await task.handler(TaskContext(ctx), value)
        else:
            # The job set no limit: the task's own applies (the runtime's TimeoutError, so it counts as "Timeout").
            async with asyncio.timeout(task.declaration.timeout):
                output = await task.handler(TaskContext(ctx), value)
        return _encode(output, spec.name)


def _input_type(handler: Callable[..., Any]) -> type[Message] | None:
    parameters = list(inspect.signature(handler).parameters.values())
    if len(parameters) != 2:
        raise TypeError(f"{handler.__qualname__} must take (ctx, input): it takes {len(parameters)} parameters")
    hint = typing.get_type_hints(handler).get(parameters[1].name)
    if isinstance(hint, type) and issubclass(hint, Message):
        return hint
    return None


def _decode(spec: job_pb2.Task, input_type: type[Message] | None) -> Any:
    given = spec.WhichOneof("input")
    if input_type is None:
        if given == "message":
            raise PermanentError(
                f"task {spec.name!r} takes JSON, not a {spec.message.TypeName()} message", error_type="InvalidInput"
            )
        return json_format.MessageToDict(spec.json) if given == "json" else {}
    message = input_type()
    if given == "message":
        if not spec.message.Unpack(message):
            raise PermanentError(
                f"task {spec.name!r} takes {input_type.DESCRIPTOR.full_name}, not {spec.message.TypeName()}",
                error_type="InvalidInput",
            )
    elif given == "json":
        try:
            json_format.ParseDict(json_format.MessageToDict(spec.json), message)
        except json_format.ParseError as exc:
            raise PermanentError(
                f"task {spec.name!r}: the JSON input does not fit {input_type.DESCRIPTOR.full_name}: {exc}",
                error_type="InvalidInput",
            ) from None
    return message


def _encode(output: Any, name: str) -> job_pb2.JobResult:
    result = job_pb2.JobResult()
    if output is None:
        return result
    if isinstance(output, job_pb2.JobResult):
        return output
    if isinstance(output, Message):
        result.message.Pack(output)
    elif isinstance(output, Mapping):
        try:
            result.json.update(output)
        except (TypeError, ValueError) as exc:
            raise PermanentError(
                f"task {name!r} returned a dict that is not JSON: {exc}", error_type="BadResult"
            ) from None
    elif isinstance(output, str):
        result.text = output
    else:
        raise PermanentError(
            f"task {name!r} returned a {type(output).__name__}: return a message, a dict, a str or None",
            error_type="BadResult",
        )
    return result
