"""summarize_text: one model call that returns a short summary (the offline provider until issue 5's providers)."""

from __future__ import annotations

import re

from syllabus.v1 import job_pb2
from syllabus.worker import JobContext

DEFAULT_MAX_WORDS = 120
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def offline_summary(text: str, max_words: int) -> str:
    """Deterministic extract: whole leading sentences while they fit, else the first max_words words."""
    words_left = max_words
    chosen: list[str] = []
    for sentence in _SENTENCE.split(" ".join(text.split())):
        count = len(sentence.split())
        if count > words_left:
            break
        chosen.append(sentence)
        words_left -= count
    if chosen:
        return " ".join(chosen)
    return " ".join(text.split()[:max_words])


async def summarize_text(ctx: JobContext) -> job_pb2.JobResult:
    request = ctx.job.spec.summarize_text
    summary = offline_summary(request.text, request.max_words or DEFAULT_MAX_WORDS)
    return job_pb2.JobResult(text=summary)
