"""No silent waits: a queued job that no running worker could take says so when it is read (status_message)."""

from __future__ import annotations

import logging

from syllabus.presence import LiveWorkers
from syllabus.taskregistry import TaskRegistry
from syllabus.topology import KIND_SERVICE, TASK_KIND, pool_queue_name
from syllabus.v1 import job_pb2

log = logging.getLogger(__name__)


class Waiting:
    def __init__(self, tasks: TaskRegistry, workers: LiveWorkers) -> None:
        self._tasks = tasks
        self._workers = workers

    async def explain(self, jobs: list[job_pb2.Job]) -> None:
        """Set the status message of each queued job whose queue has no live worker (one look per queue)."""
        alive: dict[str, bool] = {}
        for job in jobs:
            if job.state != job_pb2.JOB_STATE_QUEUED:
                continue
            try:
                job.status_message = await self._why(job, alive)
            except Exception as exc:
                # Only a hint: the job is read as stored when NATS cannot say who serves it.
                log.debug("why job %s waits is unknown: %s", job.id, exc)

    async def _why(self, job: job_pb2.Job, alive: dict[str, bool]) -> str:
        if job.kind == TASK_KIND:
            name = job.spec.task.name
            declared = await self._tasks.lookup(name)
            if declared is None:
                return f"waiting for a worker: no worker pool serves task {name!r} any more"
            queue, who = pool_queue_name(declared.pool), f"worker pool {declared.pool!r} (task {name!r})"
        else:
            queue = KIND_SERVICE[job.kind]
            who = f"{queue} service"
        if queue not in alive:
            alive[queue] = await self._workers.any_alive(queue)
        return "" if alive[queue] else f"waiting for a worker: no process of the {who} is running"
