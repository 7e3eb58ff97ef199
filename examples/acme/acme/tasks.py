"""The acme worker pool. Run it with `syllabus worker acme.tasks:app` from the directory that holds `acme/`.

acme/v1/stats_pb2.py is generated from proto/acme/v1/stats.proto (its validation rules import buf/validate, which
Syllabus vendors in third_party/proto and ships as the `buf.validate` Python package):
    python -m grpc_tools.protoc -Iproto -I../../third_party/proto --python_out=. proto/acme/v1/stats.proto
"""

from __future__ import annotations

import asyncio
from typing import Any

from acme.v1.stats_pb2 import StatsRequest, StatsResult
from syllabus.tasks import PermanentError, RetryableError, TaskApp, TaskContext

app = TaskApp("acme")


@app.task("math.stats", max_attempts=3, timeout=30)
async def stats(ctx: TaskContext, request: StatsRequest) -> StatsResult:
    if not request.numbers:
        raise PermanentError("numbers must not be empty", error_type="NoNumbers")
    await ctx.progress(50, f"{len(request.numbers)} numbers read")
    numbers = list(request.numbers)
    return StatsResult(count=len(numbers), mean=sum(numbers) / len(numbers), minimum=min(numbers), maximum=max(numbers))


@app.task("text.reverse", max_attempts=2)
async def reverse(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    text = data.get("text")
    if not isinstance(text, str):
        raise PermanentError('give the text as {"text": "..."}', error_type="NoText")
    if data.get("flaky") and ctx.attempt == 1:
        raise RetryableError("a flaky first attempt")
    return {"reversed": text[::-1], "attempt": ctx.attempt}


@app.task("clock.wait", max_attempts=1, timeout=1)
async def wait(ctx: TaskContext, data: dict[str, Any]) -> None:
    """Runs until it is canceled, or past its 1 s limit unless the job sets another."""
    await ctx.progress(1, "waiting")
    await asyncio.Event().wait()
