"""Micro-benchmark of what the metrics add per job: the worker hook (before and after an attempt), the gRPC wrapper
of one unary call, and the REST shim's request instruments. Prints microseconds per job (best of several rounds).

    .venv/bin/python -m bench.metrics
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from syllabus import lifecycle
from syllabus.hooks import WorkerHook
from syllabus.metrics.requests import HttpInstruments, measured
from syllabus.metrics.workers import WorkerMetrics
from syllabus.v1 import job_pb2
from syllabus.worker import JobContext

ROUNDS = 5
CALLS = 20_000


def _job() -> job_pb2.Job:
    job = job_pb2.Job(id="01JOB", kind="summarize_text", attempt=1, max_attempts=5)
    job.spec.summarize_text.text = "text"
    job.create_time.CopyFrom(lifecycle.now())
    attempt = job.attempts.add(attempt=1, worker_id="w", host="h")
    attempt.start_time.CopyFrom(lifecycle.now())
    attempt.end_time.CopyFrom(lifecycle.now())
    return job


async def _best(step: Callable[[], Awaitable[None]]) -> float:
    """Microseconds per call of `step`, the best round."""
    best = float("inf")
    for _ in range(ROUNDS):
        started = time.perf_counter()
        for _ in range(CALLS):
            await step()
        best = min(best, (time.perf_counter() - started) / CALLS * 1e6)
    return best


async def _hooks(hook: WorkerHook, ctx: JobContext, job: job_pb2.Job) -> None:
    await hook.before_attempt(ctx)
    await hook.after_attempt(job, "succeeded")


class _Context:
    def code(self) -> None:
        return None

    def time_remaining(self) -> float:
        return 1.0


async def main() -> None:
    job = _job()

    async def report(percent: float, message: str) -> None:
        return None

    ctx = JobContext(job=job, attempt=1, _report=report)
    bare, metrics = WorkerHook(), WorkerMetrics()
    hook_bare = await _best(lambda: _hooks(bare, ctx, job))
    hook_metrics = await _best(lambda: _hooks(metrics, ctx, job))

    async def behavior(request: Any, context: Any) -> Any:
        return request

    wrapped = measured(behavior, "/syllabus.v1.JobService/SubmitJob", timed=True)
    context = _Context()

    async def plain_call() -> None:
        await behavior(None, context)

    async def measured_call() -> None:
        await wrapped(None, context)

    call_bare = await _best(plain_call)
    call_measured = await _best(measured_call)
    http = HttpInstruments()

    async def http_request() -> None:
        http.answered("/v1/jobs/{job_id}", "GET", 200, 0.001)

    http_cost = await _best(http_request)
    print(f"worker hook, before + after one attempt: {hook_metrics - hook_bare:.2f} µs per attempt")
    print(f"gRPC wrapper of a unary call:           {call_measured - call_bare:.2f} µs per call")
    print(f"REST request instruments:               {http_cost:.2f} µs per request")


if __name__ == "__main__":
    asyncio.run(main())
