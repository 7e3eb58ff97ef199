"""WorkerService: task workers in any language, each one gRPC stream to the gateway.

The gateway runs the worker runtime (syllabus.worker) for every stream, with a handler that hands each attempt
to the remote worker and waits for its outcome. So a remote worker gets exactly what a Python pool process gets
(leases, heartbeats, time limits, retries with backoff, dead letters, cancellation, presence) and its SDK is only
the stream: Temporal's and Hatchet's workers are built the same way, polling their server rather than the broker.

The lease rule holds because every outcome passes through the runtime: an attempt the runtime stopped (time
limit, CancelJob, a lost lease, the stream's end) is no longer in the stream's hand, and its late outcome is
dropped; one that arrives in time is still written only under the attempt's lease.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import grpc
from google.protobuf import timestamp_pb2
from google.rpc import code_pb2

from gateway.auth import caller
from gateway.auth.caller import ADMIN
from gateway.auth.gate import Gate
from gateway.handlers import Registrar
from gateway.status import abort, bad_request, build_status, violations_of
from syllabus.anyjson import to_dict
from syllabus.config import WorkerConfig
from syllabus.hooks import WorkerHook
from syllabus.runtime import Runtime
from syllabus.taskregistry import TaskDeclaration, TaskRegistry, TaskTaken
from syllabus.tasks import DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT, UNKNOWN_TASK_DEFER
from syllabus.topology import TASK_KIND
from syllabus.tracing import context as tracing
from syllabus.v1 import job_pb2, worker_service_pb2, worker_service_pb2_grpc
from syllabus.worker import Defer, JobContext, PermanentError, RetryableError, Worker

log = logging.getLogger(__name__)
W = worker_service_pb2
# Seconds beyond the drain grace a stopping gateway waits for its worker streams to end (handing back, closing).
CLOSE_MARGIN = 5.0


class _Lost(Exception):
    """The stream ended with the attempt in its hand."""


@dataclass
class _InHand:
    ctx: JobContext
    outcome: asyncio.Future[W.AttemptOutcome]


class _Session:
    """One Work stream: its runtime worker, the attempts in its hand, and what is to be written to it."""

    def __init__(self, worker_id: str, declarations: dict[str, TaskDeclaration]) -> None:
        self.worker_id = worker_id
        self._declarations = declarations
        self._numbers = itertools.count(1)
        self.in_hand: dict[str, _InHand] = {}
        self.outbox: asyncio.Queue[W.WorkResponse | None] = asyncio.Queue()
        self.closing = False
        self.ended = asyncio.Event()
        # Set once the stream is lost or closing: what an attempt that starts after that fails with.
        self.lost: BaseException | None = None

    async def handle(self, ctx: JobContext) -> job_pb2.JobResult:
        """The runtime's handler: the attempt goes out on the stream and its outcome comes back."""
        task = ctx.job.spec.task
        declaration = self._declarations.get(task.name)
        if declaration is None:
            # Another worker of the pool declared it (a rolling deploy): handed back for one that serves it.
            raise Defer(UNKNOWN_TASK_DEFER, f"worker {self.worker_id} does not serve task {task.name!r}")
        # Numbered per stream, so a late outcome of an earlier attempt of the same job never names a later one.
        attempt_id = f"{ctx.job.id}:{ctx.attempt}:{next(self._numbers)}"
        own_limit = not ctx.job.options.HasField("timeout")
        limit = declaration.timeout if own_limit else ctx.job.options.timeout.ToNanoseconds() / 1e9
        outcome: asyncio.Future[W.AttemptOutcome] = asyncio.get_running_loop().create_future()
        self.in_hand[attempt_id] = _InHand(ctx, outcome)
        if self.lost is not None:
            # Taken just before the stream went away: it never goes out, and ends as the attempts in hand did
            # (rather than waiting out its time limit for an outcome no one will send).
            outcome.set_exception(self.lost)
        else:
            self.outbox.put_nowait(W.WorkResponse(assignment=_assignment(attempt_id, ctx, limit)))
        # Why the attempt was taken away from the worker, if it was: the worker is told, to stop its handler.
        reason = ""
        try:
            if own_limit:
                # The task's own limit, raised as the runtime's TimeoutError so that it counts as "Timeout".
                async with asyncio.timeout(declaration.timeout):
                    return _result(await outcome)
            return _result(await outcome)
        except TimeoutError:
            reason = "timeout"
            raise
        except asyncio.CancelledError:
            reason = "canceled"
            raise
        except _Lost:
            raise RetryableError(
                f"worker {self.worker_id} went away with the attempt", error_type="WorkerLost"
            ) from None
        finally:
            if self.in_hand.pop(attempt_id, None) is not None and reason and not self.closing:
                self.outbox.put_nowait(W.WorkResponse(cancel=W.AttemptCancel(attempt_id=attempt_id, reason=reason)))

    def receive(self, request: W.WorkRequest) -> asyncio.Task[None] | None:
        """A message from the worker. Anything naming an attempt no longer in hand is stale and dropped."""
        which = request.WhichOneof("message")
        if which == "outcome":
            held = self.in_hand.get(request.outcome.attempt_id)
            if held is None:
                log.info(
                    "worker %s: outcome of %s dropped: the attempt is no longer its",
                    self.worker_id,
                    request.outcome.attempt_id,
                )
            elif not held.outcome.done():
                held.outcome.set_result(request.outcome)
        elif which == "progress":
            held = self.in_hand.get(request.progress.attempt_id)
            if held is not None:
                return asyncio.create_task(_report(held.ctx, request.progress))
        return None

    def lose_all(self, error: BaseException) -> None:
        self.lost = error
        for held in self.in_hand.values():
            if not held.outcome.done():
                held.outcome.set_exception(error)


async def _report(ctx: JobContext, progress: W.AttemptProgress) -> None:
    try:
        await ctx.progress(progress.percent, progress.message)
    except Exception as exc:
        # A step of detail for watchers; the attempt goes on (its outcome waits out an outage).
        log.warning("job %s: progress not recorded: %s", ctx.job.id, exc)


def _assignment(attempt_id: str, ctx: JobContext, limit: float) -> W.Assignment:
    job = ctx.job
    deadline = timestamp_pb2.Timestamp()
    deadline.FromNanoseconds(time.time_ns() + int(limit * 1e9))
    task = job.spec.task
    # JSON as it was given, a typed message in its "@type" form (or its bytes, when the type is not loaded here).
    printed = to_dict(task)
    value = printed.get("json", printed.get("message", {}))
    return W.Assignment(
        attempt_id=attempt_id,
        job_id=job.id,
        task=task.name,
        input_json=json.dumps(value, separators=(",", ":")),
        input=task,
        attempt=ctx.attempt,
        max_attempts=job.max_attempts,
        labels=dict(job.options.labels),
        deadline=deadline,
        # The attempt's span when this gateway records one (it is current in the handler), else the job's parent.
        traceparent=tracing.current() or ctx.job.trace_parent,
    )


def _result(outcome: W.AttemptOutcome) -> job_pb2.JobResult:
    which = outcome.WhichOneof("outcome")
    if which == "result":
        return outcome.result
    if which == "result_json":
        try:
            value = json.loads(outcome.result_json)
        except ValueError as exc:
            raise PermanentError(f"the worker's result is not JSON: {exc}", error_type="InvalidResult") from None
        if not isinstance(value, dict):
            raise PermanentError("the worker's result is not a JSON object", error_type="InvalidResult")
        result = job_pb2.JobResult()
        result.json.update(value)
        return result
    if which == "failure":
        failure = outcome.failure
        retry_after = failure.retry_after.ToNanoseconds() / 1e9 if failure.HasField("retry_after") else None
        error = PermanentError if failure.permanent else RetryableError
        raise error(failure.message or failure.type, error_type=failure.type, retry_after=retry_after)
    deferral = outcome.deferral
    raise Defer(deferral.delay.ToNanoseconds() / 1e9, deferral.reason or "the worker handed it back")


def _declarations(hello: W.WorkerHello, tenants: tuple[str, ...]) -> dict[str, TaskDeclaration]:
    return {
        task.name: TaskDeclaration(
            name=task.name,
            pool=hello.pool,
            max_attempts=task.max_attempts or DEFAULT_MAX_ATTEMPTS,
            timeout=task.timeout.ToNanoseconds() / 1e9 if task.HasField("timeout") else DEFAULT_TIMEOUT,
            tenants=tenants,
        )
        for task in hello.tasks
    }


def _tenants_served() -> tuple[str, ...]:
    """A pool opened with a tenant's credential serves that tenant's jobs only; one opened by an admin (or with
    authentication off, or by a server without a gate) serves every tenant's."""
    try:
        who = caller.current()
    except LookupError:
        return ()
    return () if ADMIN in who.scopes else (who.tenant,)


def _peer_host(context: Any) -> str:
    """Where the remote worker connects from ("ipv4:10.0.0.5:51234" gives 10.0.0.5), as its attempts show."""
    try:
        peer = str(context.peer())
    except Exception:  # a context without a peer (a REST stream): the attempts show no host
        return ""
    kind, _, address = peer.partition(":")
    if kind == "unix":
        return "localhost"
    host = address.rpartition(":")[0] if kind in ("ipv4", "ipv6") else address
    return host.strip("[]")


class WorkerService(worker_service_pb2_grpc.WorkerServiceServicer):
    def __init__(
        self, *, runtime: Runtime, tasks: TaskRegistry, config: WorkerConfig, hooks: Sequence[WorkerHook] = ()
    ) -> None:
        self._runtime = runtime
        self._tasks = tasks
        self._config = config
        self._hooks = hooks
        self._sessions: dict[_Session, Worker] = {}

    async def Work(self, requests: AsyncIterator[W.WorkRequest], context: Any) -> None:
        hello = await self._hello(requests, context)
        declarations = _declarations(hello, _tenants_served())
        names = sorted(declarations)
        if len(names) != len(hello.tasks):
            await abort(context, _invalid("tasks", "a task name is given twice"))
        try:
            await self._tasks.declare(hello.pool, declarations.values())
        except TaskTaken as exc:
            await abort(context, build_status(code_pb2.FAILED_PRECONDITION, str(exc)))
        session = _Session(f"{hello.pool}-{uuid.uuid4().hex[:8]}", declarations)
        worker = Worker(
            service=f"pool {hello.pool}",
            handlers={TASK_KIND: session.handle},
            runtime=self._runtime,
            config=replace(
                self._config,
                concurrency=hello.concurrency,
                # The task's own limit applies first; the runtime's must not end it sooner.
                default_timeout=max([self._config.default_timeout, *(d.timeout for d in declarations.values())]),
            ),
            queue=self._runtime.topology.pool_queue(hello.pool, names),
            worker_id=session.worker_id,
            host=hello.host or _peer_host(context),
            # Unsaid, no pid: the gateway's own would mislead.
            pid=hello.pid,
            hooks=self._hooks,
        )
        self._sessions[session] = worker
        log.info(
            "worker %s (%s) serves %s, %d at once",
            session.worker_id,
            hello.description or "no description",
            names,
            hello.concurrency,
        )
        await context.write(W.WorkResponse(welcome=W.WorkerWelcome(worker_id=session.worker_id)))
        running = asyncio.create_task(worker.run())
        writing = asyncio.create_task(_write(session, context))
        reading = asyncio.create_task(self._read(session, worker, requests))
        try:
            await asyncio.wait({running, reading, writing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # The stream ended (or the worker drained): attempts still out fail as lost, and the runtime stops.
            if not session.closing:
                session.lose_all(_Lost())
            worker.stop()
            reading.cancel()
            await asyncio.wait({running})
            session.outbox.put_nowait(None)
            await asyncio.wait({writing})
            del self._sessions[session]
            session.ended.set()
            log.info("worker %s disconnected", session.worker_id)

    async def _hello(self, requests: AsyncIterator[W.WorkRequest], context: Any) -> W.WorkerHello:
        first = await anext(aiter(requests), None)
        if first is None or first.WhichOneof("message") != "hello":
            await abort(context, _invalid("hello", "the first message of a Work stream must be a hello"))
        violations = violations_of(first)
        if violations:
            await abort(context, bad_request(violations))
        return first.hello

    async def _read(self, session: _Session, worker: Worker, requests: AsyncIterator[W.WorkRequest]) -> None:
        reports: set[asyncio.Task[None]] = set()
        with contextlib.suppress(grpc.aio.AioRpcError, asyncio.CancelledError):
            async for request in requests:
                if request.WhichOneof("message") == "drain":
                    log.info("worker %s drains", session.worker_id)
                    worker.stop()
                    continue
                if violations_of(request):
                    log.info("worker %s sent an invalid message; it is dropped", session.worker_id)
                    continue
                report = session.receive(request)
                if report is not None:
                    reports.add(report)
                    report.add_done_callback(reports.discard)

    async def close(self) -> None:
        """The gateway is stopping: every attempt out is handed back uncounted, and each stream is ended."""
        for session, worker in list(self._sessions.items()):
            session.closing = True
            session.lose_all(Defer(0.0, "the gateway the worker was connected to stopped"))
            for attempt_id in list(session.in_hand):
                session.outbox.put_nowait(
                    W.WorkResponse(cancel=W.AttemptCancel(attempt_id=attempt_id, reason="shutdown"))
                )
            worker.stop()
        ending = [asyncio.ensure_future(session.ended.wait()) for session in list(self._sessions)]
        if not ending:
            return
        # Each session's runtime drains within its grace; past that (and the hand-back), the gateway stops anyway
        # rather than wait on a stream that never ends: what such a session held comes back when its lease lapses.
        _, open_still = await asyncio.wait(ending, timeout=self._config.drain_grace + CLOSE_MARGIN)
        for waiting in open_still:
            waiting.cancel()
        if open_still:
            log.warning("%d worker stream(s) had not ended when the gateway stopped", len(open_still))


async def _write(session: _Session, context: Any) -> None:
    with contextlib.suppress(Exception):
        while (response := await session.outbox.get()) is not None:
            await context.write(response)


def _invalid(field: str, message: str) -> Any:
    return bad_request([(field, message)])


def add_worker_service(
    server: grpc.aio.Server,
    *,
    runtime: Runtime,
    tasks: TaskRegistry,
    config: WorkerConfig,
    gate: Gate | None = None,
    hooks: Sequence[WorkerHook] = (),
) -> WorkerService:
    """Registers WorkerService (open to callers `gate` grants the work scope, or to all without one); its owner
    calls close() before stopping the server."""
    service = WorkerService(runtime=runtime, tasks=tasks, config=config, hooks=hooks)
    worker_service_pb2_grpc.add_WorkerServiceServicer_to_server(service, Registrar(server, gate))
    return service
