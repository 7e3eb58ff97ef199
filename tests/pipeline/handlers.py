"""Job handlers whose behaviour the test chooses through the summarize_text text, e.g. "fail-retryable:2"."""

from __future__ import annotations

import asyncio

from syllabus.v1 import job_pb2
from syllabus.worker import JobContext, PermanentError, RetryableError

# Set by a test to let "block" handlers finish; never set in worker processes (they are killed or drained).
release = asyncio.Event()
# Jobs whose "fail-until-healed" handler now succeeds.
healed: set[str] = set()
# Jobs whose handler saw a cancellation.
cancelled: set[str] = set()
# True in tests.pipeline.worker_proc: "block-in-subprocess" blocks there and succeeds in the test process.
IN_SUBPROCESS = False


def reset() -> None:
    """What one test set or saw is gone before the next: "block" handlers block again, nothing is healed or seen."""
    release.clear()
    healed.clear()
    cancelled.clear()


async def scripted(ctx: JobContext) -> job_pb2.JobResult:
    command, _, arg = ctx.job.spec.summarize_text.text.partition(":")
    if command == "fail-retryable" and ctx.attempt <= int(arg):
        raise RetryableError(f"flaky on attempt {ctx.attempt}", retry_after=None)
    if command == "fail-permanent":
        raise PermanentError("this input can never work", error_type="BadInput")
    if command == "always-fail":
        raise RetryableError(f"still broken on attempt {ctx.attempt}")
    if command == "fail-until-healed" and ctx.job.id not in healed:
        raise RetryableError("not healed yet")
    blocks = {"block": True, "block-in-subprocess": IN_SUBPROCESS, "block-first": ctx.attempt == 1}
    if blocks.get(command, False):
        try:
            await release.wait()
        except asyncio.CancelledError:
            cancelled.add(ctx.job.id)
            raise
    if command == "progress":
        await ctx.progress(50, "half way")
    return job_pb2.JobResult(text=f"done by attempt {ctx.attempt}: {arg or command}")


HANDLERS = {"summarize_text": scripted}
