"""A task pool for the fault scenarios: ordinary jobs, two poison jobs, one whose handler always raises and one
whose handler kills its own process, and held jobs, which run until the test lets them go. Run as
`syllabus worker tests.e2e.poison_tasks:app`."""

from __future__ import annotations

import os
import signal
from typing import Any

import redis.asyncio

from syllabus.tasks import TaskApp, TaskContext

app = TaskApp("faults")
# The Valkey list a held job takes one token from before it ends; a token pushed before the job waits stays there.
HELD_RELEASE = "faults:held:release"


@app.task("faults.ok", max_attempts=3, timeout=30)
async def ok(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    return {"n": data.get("n"), "attempt": ctx.attempt}


@app.task("faults.raise", max_attempts=4, timeout=30)
async def always_raises(ctx: TaskContext, data: dict[str, Any]) -> None:
    raise RuntimeError(f"poison job: attempt {ctx.attempt} fails as every attempt does")


@app.task("faults.exit", max_attempts=5, timeout=30)
async def kills_its_process(ctx: TaskContext, data: dict[str, Any]) -> None:
    # As a segfaulting extension or the kernel's OOM killer would: no drain, no hand-back, no last words.
    os.kill(os.getpid(), signal.SIGKILL)


@app.task("faults.held", max_attempts=1, timeout=120)
async def held(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    valkey = redis.asyncio.from_url(os.environ["SYLLABUS_REDIS_URL"])
    try:
        await valkey.blpop([HELD_RELEASE], timeout=0)
    finally:
        await valkey.aclose()
    return {"released": True}
