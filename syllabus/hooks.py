"""Worker hooks: where metrics, tracing and accounting plug into every attempt without touching the worker core.

A hook is an object with any of the methods of WorkerHook (subclass it and override what you need), given to
`Worker(hooks=...)`, `serve_worker(hooks=...)` or `TaskApp(..., hooks=...)`; arq's job hooks and dramatiq's
middleware play the same part. Hooks run on the worker's event loop, in the order given:

- `before_attempt` runs inside the attempt, just before its handler: what it raises is the attempt's outcome, as
  if the handler had raised it (`Defer` hands the job back uncounted, `PermanentError` dead-letters it), so a
  hook may refuse work (a tenant over its budget) as well as observe it. It runs in the handler's own task, so a
  context variable it sets (the current span, say) holds for the handler and what it starts, and nowhere else.
- The others run once the attempt's outcome is stored and acknowledged, so they report what is true. A hook
  that raises there is logged and changes nothing. A worker killed between storing an outcome and its hooks
  skips them for that outcome: count from events, not hooks, where every one matters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from syllabus.v1 import job_pb2

if TYPE_CHECKING:
    from syllabus.worker import JobContext


class WorkerHook:
    async def before_attempt(self, ctx: JobContext) -> None:
        """The attempt has its lease and is about to run its handler."""

    async def after_attempt(self, job: job_pb2.Job, outcome: str) -> None:
        """Any attempt's end, once stored: `outcome` is "succeeded", "retrying", "dead_lettered", "canceled",
        "requeued" (a draining worker handed it back), "deferred" or "waiting" (for its children)."""

    async def on_success(self, job: job_pb2.Job) -> None:
        """The job succeeded; `job.result` is its stored result."""

    async def on_retry(self, job: job_pb2.Job, error: job_pb2.JobError, delay: float) -> None:
        """The attempt failed and the job runs again in `delay` seconds."""

    async def on_dead_letter(self, job: job_pb2.Job, error: job_pb2.JobError, reason: str) -> None:
        """The job failed for good and its dead letter is stored."""
