"""A task pool for the fault scenarios: ordinary jobs, and two poison jobs, one whose handler always raises and
one whose handler kills its own process. Run as `syllabus worker tests.e2e.poison_tasks:app`."""

from __future__ import annotations

import os
import signal
from typing import Any

from syllabus.tasks import TaskApp, TaskContext

app = TaskApp("faults")


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
