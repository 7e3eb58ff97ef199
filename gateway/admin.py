"""AdminService: dead letters can be seen, retried (as they were or edited) and purged; the workers and queues
can be seen (once, or followed live: gateway.adminwatch), and queues paused (gateway.queues); the jobs' activity
over time (gateway.activity)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from gateway.activity import activity
from gateway.adminwatch import watch_queue_stats, watch_workers
from gateway.auth import caller
from gateway.queues import Queues, window_message, window_of
from gateway.retention import purge_jobs
from gateway.status import Context
from gateway.watch import EventStreams
from syllabus import lifecycle
from syllabus.errors import Conflict, InvalidRequest, JobNotFound
from syllabus.presence import LiveWorkers
from syllabus.runtime import Runtime
from syllabus.taskregistry import TaskRegistry
from syllabus.v1 import admin_service_pb2 as pb
from syllabus.v1 import admin_service_pb2_grpc, job_pb2


class AdminService(admin_service_pb2_grpc.AdminServiceServicer):
    def __init__(
        self,
        *,
        runtime: Runtime,
        default_max_attempts: int,
        tasks: TaskRegistry | None = None,
        workers: LiveWorkers | None = None,
        streams: EventStreams | None = None,
    ) -> None:
        self._queues = Queues(
            nc=runtime.nc,
            store=runtime.store,
            topology=runtime.topology,
            tasks=tasks or TaskRegistry(runtime.nc, runtime.topology),
            workers=workers or LiveWorkers(runtime.nc, runtime.topology),
        )
        self._runtime = runtime
        self._streams = streams or EventStreams(runtime.nc, runtime.topology)
        self._store = runtime.store
        self._default_max_attempts = default_max_attempts
        self._dead_letters = runtime.dead_letters
        self._submitter = runtime.submitter
        self._parents = runtime.parents

    async def _dead_letter(self, job_id: str) -> pb.DeadLetter:
        dead = await self._dead_letters.get(job_id)
        if dead is None or dead.job.tenant != caller.tenant():
            raise JobNotFound(job_id)
        return dead

    async def ListDeadLetters(self, request: pb.ListDeadLettersRequest, context: Context) -> pb.ListDeadLettersResponse:
        letters, token = await self._dead_letters.list(request.kind, request.page_size, request.page_token)
        mine = [dead for dead in letters if dead.job.tenant == caller.tenant()]
        return pb.ListDeadLettersResponse(dead_letters=mine, next_page_token=token)

    async def GetDeadLetter(self, request: pb.GetDeadLetterRequest, context: Context) -> pb.GetDeadLetterResponse:
        return pb.GetDeadLetterResponse(dead_letter=await self._dead_letter(request.job_id))

    async def RetryDeadLetter(self, request: pb.RetryDeadLetterRequest, context: Context) -> pb.RetryDeadLetterResponse:
        dead = await self._dead_letter(request.job_id)
        spec = request.spec if request.HasField("spec") else None
        if spec is not None and spec.WhichOneof("kind") != dead.job.kind:
            raise InvalidRequest("spec", f"must be a {dead.job.kind} job like the one that failed")
        if spec is not None and spec.task.name != dead.job.spec.task.name:
            # Its queue is the pool of its name: another name could be a pool that is not there.
            raise InvalidRequest(
                "spec.task.name", f"must stay {dead.job.spec.task.name!r}: edit the input, not the task"
            )
        options = request.options if request.HasField("options") else None
        revived = await self._store.update_job(
            request.job_id, lifecycle.revive(spec, options, self._default_max_attempts)
        )
        if revived.job is None:
            raise JobNotFound(request.job_id)
        if not revived.applied:
            raise Conflict(
                f"job {request.job_id} is {job_pb2.JobState.Name(revived.job.state)}, not FAILED: nothing to retry"
            )
        job = revived.job
        if job.parent_id:
            # Before the child can run: a child that finished first would find its parent still failed.
            await self._parents.child_retried(job)
        try:
            await self._submitter.enqueue(job, f"{job.id}:retry:{job.update_time.ToNanoseconds()}")
        except BaseException:
            # Not queued: the job stays failed and its dead letter stays, so the retry can be asked again.
            await self._store.update_job(job.id, lifecycle.unrevive(dead.job, job))
            if job.parent_id:
                await self._parents.child_failed(dead.job, "its retry could not be queued")
            raise
        await self._dead_letters.remove(job.id)
        return pb.RetryDeadLetterResponse(job=job)

    async def PurgeDeadLetters(
        self, request: pb.PurgeDeadLettersRequest, context: Context
    ) -> pb.PurgeDeadLettersResponse:
        return pb.PurgeDeadLettersResponse(purged=await self._dead_letters.purge(caller.tenant(), request.kind))

    async def PurgeJobs(self, request: pb.PurgeJobsRequest, context: Context) -> pb.PurgeJobsResponse:
        return await purge_jobs(self._runtime, caller.tenant(), request)

    async def ListWorkers(self, request: pb.ListWorkersRequest, context: Context) -> pb.ListWorkersResponse:
        return pb.ListWorkersResponse(workers=await self._queues.list_workers(request.queue))

    async def WatchWorkers(
        self, request: pb.WatchWorkersRequest, context: Context
    ) -> AsyncIterator[pb.WatchWorkersResponse]:
        async for workers in watch_workers(self._runtime.nc, self._runtime.topology, request.queue):
            yield pb.WatchWorkersResponse(workers=workers)

    async def WatchQueueStats(
        self, request: pb.WatchQueueStatsRequest, context: Context
    ) -> AsyncIterator[pb.WatchQueueStatsResponse]:
        stream = watch_queue_stats(
            self._queues,
            self._streams,
            self._runtime.nc,
            self._runtime.topology,
            caller.tenant(),
            request.queue,
            window_of(request),
        )
        async for response in stream:
            yield response

    async def GetActivity(self, request: pb.GetActivityRequest, context: Context) -> pb.GetActivityResponse:
        return await activity(self._store, caller.tenant(), request)

    async def GetQueueStats(self, request: pb.GetQueueStatsRequest, context: Context) -> pb.GetQueueStatsResponse:
        window = window_of(request)
        queues = await self._queues.stats(request.queue, window)
        return pb.GetQueueStatsResponse(queues=queues, window=window_message(window))

    async def PauseQueue(self, request: pb.PauseQueueRequest, context: Context) -> pb.PauseQueueResponse:
        return pb.PauseQueueResponse(queue=await self._queues.set_paused(request.queue, True))

    async def ResumeQueue(self, request: pb.ResumeQueueRequest, context: Context) -> pb.ResumeQueueResponse:
        return pb.ResumeQueueResponse(queue=await self._queues.set_paused(request.queue, False))
