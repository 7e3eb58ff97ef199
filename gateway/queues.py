"""The AdminService's view of the work queues: the workers alive, each queue's counts, and pausing a queue.

A queue is a built-in service ("generator", "renderer") or a task pool ("pool-acme"). Its jobs are counted from
the store (the caller's tenant's only); its JetStream consumers, workers and pause are shared by every tenant.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass

from google.protobuf import duration_pb2, timestamp_pb2
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from gateway.auth import caller
from syllabus.errors import InvalidRequest
from syllabus.presence import LiveWorkers, WorkerPresence
from syllabus.queuecontrol import PausedQueues
from syllabus.store.base import JobCount, Store
from syllabus.taskregistry import TaskRegistry
from syllabus.topology import (
    KIND_SERVICE,
    PRIORITIES,
    TASK_KIND,
    WORKER_SERVICES,
    Topology,
    WorkQueue,
    pool_queue_name,
    priority_name,
)
from syllabus.v1 import admin_service_pb2 as pb
from syllabus.v1 import job_pb2

E = job_pb2
# How far back finished jobs are counted when the request does not say.
DEFAULT_WINDOW = 3600.0
# Which JobCounts field counts the jobs in each state.
STATE_FIELDS: dict[int, str] = {
    E.JOB_STATE_SCHEDULED: "scheduled",
    E.JOB_STATE_QUEUED: "waiting",
    E.JOB_STATE_RUNNING: "running",
    E.JOB_STATE_RETRYING: "retrying",
    E.JOB_STATE_WAITING: "waiting_for_children",
    E.JOB_STATE_SUCCEEDED: "succeeded",
    E.JOB_STATE_FAILED: "failed",
    E.JOB_STATE_CANCELED: "canceled",
}
PRIORITY_ENUMS = {"interactive": E.PRIORITY_INTERACTIVE, "batch": E.PRIORITY_BATCH}


def _timestamp(seconds: float) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(int(seconds * 1e9))
    return stamp


def worker_message(entry: WorkerPresence) -> pb.Worker:
    return pb.Worker(
        worker_id=entry.worker_id,
        queue=entry.queue,
        host=entry.host,
        pid=entry.pid,
        kinds=entry.kinds,
        concurrency=entry.concurrency,
        job_ids=entry.job_ids,
        version=entry.version,
        start_time=_timestamp(entry.started),
        heartbeat_time=_timestamp(entry.written) if entry.written else None,
        metrics_url=entry.metrics_url,
    )


@dataclass
class _Tally:
    """One queue's counts as they are added up."""

    counts: dict[tuple[str, int], pb.JobCounts]
    oldest_waiting_ns: int | None = None

    def add(self, count: JobCount, kind: str) -> None:
        priority = PRIORITY_ENUMS[priority_name(count.priority)]
        counts = self.counts.setdefault((kind, priority), pb.JobCounts(kind=kind, priority=priority))
        name = STATE_FIELDS.get(count.state)
        if name is None:
            return
        setattr(counts, name, getattr(counts, name) + count.jobs)
        if count.state == E.JOB_STATE_QUEUED and (
            self.oldest_waiting_ns is None or count.oldest_create_ns < self.oldest_waiting_ns
        ):
            self.oldest_waiting_ns = count.oldest_create_ns


class Queues:
    def __init__(
        self, *, nc: Client, store: Store, topology: Topology, tasks: TaskRegistry, workers: LiveWorkers
    ) -> None:
        self._nc = nc
        self._store = store
        self._topology = topology
        self._tasks = tasks
        self._workers = workers
        self._paused = PausedQueues(nc, topology)

    async def list_workers(self, queue: str) -> list[pb.Worker]:
        return [worker_message(entry) for entry in await self._workers.workers(queue)]

    async def _pools(self) -> dict[str, str]:
        """Task name -> the queue of the pool that declared it."""
        return {task.name: pool_queue_name(task.pool) for task in await self._tasks.declarations()}

    @staticmethod
    def _known(pools: Iterable[str], live: Iterable[WorkerPresence], paused: Iterable[str]) -> list[str]:
        # A queue being paused or served counts as known even when no declaration names it any more, so that it
        # can be seen and resumed.
        return sorted({*WORKER_SERVICES, *pools, *(entry.queue for entry in live), *paused})

    def _checked(self, queue: str, known: list[str]) -> None:
        if queue and queue not in known:
            raise InvalidRequest("queue", f"there is no queue {queue!r}; the queues are {', '.join(known)}")

    async def stats(
        self,
        queue: str,
        window: float,
        *,
        check: bool = True,
        every_tenant: bool = False,
        workers: LiveWorkers | None = None,
    ) -> list[pb.QueueStats]:
        """Every queue's stats, or only `queue`'s (refused, naming the field, if there is no such queue); the jobs
        counted are the caller's tenant's, or `every_tenant`'s (the metrics); the workers counted as `workers` (a
        watch's own) sees them, else as the gateway's view does."""
        now = time.time_ns()
        pools, live, paused, counts = await asyncio.gather(
            self._pools(),
            (workers or self._workers).workers(),
            self._paused.paused(),
            self._count_jobs(now - int(window * 1e9), every_tenant),
        )
        known = self._known(pools.values(), live, paused)
        if check:
            self._checked(queue, known)
        elif queue not in known:
            known.append(queue)
        tallies: dict[str, _Tally] = {name: _Tally({}) for name in known}
        for count in counts:
            if count.kind == TASK_KIND:
                owner, kind = pools.get(count.task), count.task
            else:
                owner, kind = KIND_SERVICE.get(count.kind), count.kind
            if owner is not None and owner in tallies:
                tallies[owner].add(count, kind)
        names = [queue] if queue else known
        consumers = await asyncio.gather(*(self._consumers(name) for name in names))
        return [
            self._queue_stats(name, tallies[name], found, name in paused, live, now)
            for name, found in zip(names, consumers, strict=True)
        ]

    async def _count_jobs(self, ended_since_ns: int, every_tenant: bool) -> list[JobCount]:
        if not every_tenant:
            return await self._store.count_jobs(caller.tenant(), ended_since_ns)
        counts = await asyncio.gather(
            *(self._store.count_jobs(tenant, ended_since_ns) for tenant in await self._store.tenants())
        )
        return [count for tenant_counts in counts for count in tenant_counts]

    def _queue_stats(
        self,
        name: str,
        tally: _Tally,
        consumers: list[pb.ConsumerStats],
        paused: bool,
        live: list[WorkerPresence],
        now: int,
    ) -> pb.QueueStats:
        stats = pb.QueueStats(
            queue=name,
            counts=[tally.counts[key] for key in sorted(tally.counts)],
            consumers=consumers,
            paused=paused,
            workers=sum(1 for entry in live if entry.queue == name),
        )
        if tally.oldest_waiting_ns is not None:
            stats.oldest_waiting_age.FromNanoseconds(max(0, now - tally.oldest_waiting_ns))
        return stats

    async def _consumers(self, queue: str) -> list[pb.ConsumerStats]:
        js = self._nc.jetstream()
        found = []
        for priority in PRIORITIES:
            name = WorkQueue(queue, {}).consumer(priority)
            try:
                info = await js.consumer_info(self._topology.jobs_stream, name)
            except NotFoundError:
                continue  # no worker of the queue has started yet
            found.append(
                pb.ConsumerStats(
                    name=name,
                    priority=PRIORITY_ENUMS[priority],
                    pending=info.num_pending or 0,
                    ack_pending=info.num_ack_pending or 0,
                    redelivered=info.num_redelivered or 0,
                )
            )
        return found

    async def set_paused(self, queue: str, paused: bool) -> pb.QueueStats:
        pools, live, already = await asyncio.gather(self._pools(), self._workers.workers(), self._paused.paused())
        self._checked(queue, self._known(pools.values(), live, already))
        if paused:
            await self._paused.pause(queue)
            (stats,) = await self.stats(queue, DEFAULT_WINDOW, check=False)
            return stats
        # Counted before the resume: what was waiting then is what the workers take again, and they may take it
        # before a count made afterwards. (A pool that no longer has tasks or workers is shown all the same.)
        (stats,) = await self.stats(queue, DEFAULT_WINDOW, check=False)
        await self._paused.resume(queue)
        stats.paused = False
        return stats


def window_of(request: pb.GetQueueStatsRequest | pb.WatchQueueStatsRequest) -> float:
    return request.window.ToNanoseconds() / 1e9 if request.HasField("window") else DEFAULT_WINDOW


def window_message(seconds: float) -> duration_pb2.Duration:
    duration = duration_pb2.Duration()
    duration.FromNanoseconds(int(seconds * 1e9))
    return duration
