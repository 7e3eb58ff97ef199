"""The worker hook that gives every attempt its span: `<kind> attempt`, a child of the span that submitted the
job (as its record keeps it), current while the handler runs so that child jobs submitted from the handler are
children of the attempt, ended once the attempt's outcome is stored, with that outcome.
"""

from __future__ import annotations

import asyncio

from opentelemetry import context, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from syllabus.config import TracingConfig
from syllabus.hooks import WorkerHook
from syllabus.tracing.context import parent_of
from syllabus.v1 import job_pb2
from syllabus.worker import JobContext

_tracer = trace.get_tracer("syllabus.worker")
# Outcomes that are the attempt's failure.
_FAILED = frozenset({"retrying", "dead_lettered"})
# Spans of attempts whose outcome this worker never stored (it lost the job's lease to another attempt) are
# ended as "lost" once this many attempts are open, oldest first, so they cannot pile up.
MAX_OPEN = 10_000
# An attempt: its job's id and lease (the fencing token its claim took, kept by the outcome it stores).
_Key = tuple[str, int]


class TracingHook(WorkerHook):
    def __init__(self) -> None:
        # Per attempt in hand: its span, and the task running its handler (whose exception is recorded).
        self._open: dict[_Key, tuple[Span, asyncio.Task[object] | None]] = {}

    async def before_attempt(self, ctx: JobContext) -> None:
        job = ctx.job
        attributes: dict[str, str | int] = {
            "syllabus.job.id": job.id,
            "syllabus.job.kind": job.kind,
            "syllabus.job.attempt": ctx.attempt,
            "syllabus.tenant": job.tenant,
            "syllabus.worker.id": job.attempts[-1].worker_id if job.attempts else "",
        }
        if job.spec.HasField("task"):
            attributes["syllabus.task"] = job.spec.task.name
        span = _tracer.start_span(
            f"{job.kind} attempt", context=parent_of(job), kind=SpanKind.CONSUMER, attributes=attributes
        )
        # before_attempt runs in the handler's own task: the span is current there and in what it starts, and
        # nowhere else (the task's context is its own, so nothing needs detaching).
        context.attach(trace.set_span_in_context(span))
        if len(self._open) >= MAX_OPEN:
            _end(self._open.pop(next(iter(self._open)))[0], "lost")
        self._open[(job.id, job.lease)] = (span, asyncio.current_task())

    async def after_attempt(self, job: job_pb2.Job, outcome: str) -> None:
        opened = self._open.pop((job.id, job.lease), None)
        if opened is None:
            return
        span, task = opened
        if outcome in _FAILED:
            exc = task.exception() if task is not None and task.done() and not task.cancelled() else None
            if exc is not None:
                span.record_exception(exc)
            error = job.errors[-1] if job.errors else None
            span.set_status(Status(StatusCode.ERROR, f"{error.type}: {error.message}" if error else outcome))
        _end(span, outcome)


def _end(span: Span, outcome: str) -> None:
    span.set_attribute("syllabus.outcome", outcome)
    span.end()


class TraceContextHook(WorkerHook):
    """Without an exporter: no span, only the job's trace made current while its handler runs, so that its log
    lines and the jobs it submits carry the job's trace id."""

    async def before_attempt(self, ctx: JobContext) -> None:
        parent = parent_of(ctx.job)
        if parent is not None:
            context.attach(parent)


def worker_hooks(config: TracingConfig) -> list[WorkerHook]:
    """What a worker service adds to its hooks: the attempts' spans when they are exported, else the jobs' trace
    context alone; nothing when tracing is off."""
    if not config.enabled:
        return []
    return [TracingHook()] if config.endpoint else [TraceContextHook()]
