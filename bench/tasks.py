"""The bench's task pool: one task that does nothing, so task jobs are measured beside the built-in kinds."""

from __future__ import annotations

from typing import Any

from syllabus.tasks import TaskApp, TaskContext

app = TaskApp("bench")


@app.task("bench.echo")
async def echo(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
    return data
