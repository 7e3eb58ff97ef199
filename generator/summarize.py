"""summarize_text: one model call that returns a short summary (the offline provider keeps it deterministic)."""

from __future__ import annotations

from generator.deps import Deps
from generator.tasks import DEFAULT_SUMMARY_WORDS, SummaryTask
from syllabus.v1 import job_pb2
from syllabus.worker import Handler, JobContext


def summarize_handler(deps: Deps) -> Handler:
    async def summarize_text(ctx: JobContext) -> job_pb2.JobResult:
        request = ctx.job.spec.summarize_text
        answer = await deps.models.run(
            SummaryTask(request.text, request.max_words or DEFAULT_SUMMARY_WORDS), request.model
        )
        return job_pb2.JobResult(text=answer.value, usage=answer.usage())

    return summarize_text
