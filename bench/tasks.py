"""The bench's task pool: a task that does nothing, so task jobs are measured beside the built-in kinds, and one
that takes a moment, so that the jobs the watchers scenario watches finish at a pace rather than all at once."""

from __future__ import annotations

import asyncio
from typing import Any

from syllabus.tasks import TaskApp, TaskContext

app = TaskApp("bench")
# Seconds a paced job takes: a process running 5 at once finishes 500 a second.
PACE = 0.01


@app.task("bench.echo")
async def echo(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    return data


@app.task("bench.pace")
async def pace(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    await asyncio.sleep(PACE)  # the work a job stands for
    return data
