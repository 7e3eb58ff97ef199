"""JobService: submit typed jobs, read them, cancel them, watch their events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Literal

from google.api import httpbody_pb2

from gateway.artifacts import download, job_artifacts, not_found
from gateway.auth import caller
from gateway.limits import Limits
from gateway.status import Context
from gateway.taskinputs import TaskInputs
from gateway.waiting import Waiting
from gateway.watch import EventStreams
from syllabus import lifecycle
from syllabus.config import GatewayConfig
from syllabus.errors import InvalidRequest, JobNotFound
from syllabus.events import event_for, event_msg_id
from syllabus.intake import Intake
from syllabus.metrics.requests import count_submitted
from syllabus.presence import LiveWorkers
from syllabus.runtime import Runtime
from syllabus.store.base import JobQuery
from syllabus.submit import build_job
from syllabus.taskregistry import TaskRegistry
from syllabus.topology import TASK_KIND
from syllabus.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc

# How the store orders each JobOrder (the enum's values are checked by the request's proto rules).
ORDERS: dict[int, Literal["created", "ended"]] = {
    job_service_pb2.JOB_ORDER_UNSPECIFIED: "created",
    job_service_pb2.JOB_ORDER_CREATE_TIME_DESC: "created",
    job_service_pb2.JOB_ORDER_END_TIME_DESC: "ended",
}


def call_timeout(context: Context, ceiling: float) -> float:
    """How long we may wait on NATS: the caller's remaining deadline (less a margin to answer in), at most ceiling."""
    remaining: float | None = context.time_remaining()
    if remaining is None:
        return ceiling
    return max(0.001, min(ceiling, remaining * 0.9 - 0.01))


def _time_ns(request: job_service_pb2.ListJobsRequest, field: str) -> int:
    """The bound in ns, 0 when unset; one at or before the Unix epoch is refused (0 means no bound)."""
    if not request.HasField(field):
        return 0
    ns: int = getattr(request, field).ToNanoseconds()
    if ns <= 0:
        raise InvalidRequest(field, "must be after 1970-01-01T00:00:00Z")
    return ns


class JobService(job_service_pb2_grpc.JobServiceServicer):
    def __init__(
        self,
        *,
        limits: Limits,
        runtime: Runtime,
        config: GatewayConfig,
        default_max_attempts: int,
        streams: EventStreams,
        tasks: TaskRegistry,
        workers: LiveWorkers,
    ) -> None:
        self._nc = runtime.nc
        self._store = runtime.store
        self._limits = limits
        self._topology = runtime.topology
        self._config = config
        self._default_max_attempts = default_max_attempts
        self._submitter = runtime.submitter
        # Single submissions made together go together.
        self._intake = Intake(runtime.submitter)
        self._events = runtime.events
        self._streams = streams
        self._tasks = TaskInputs(tasks)
        self._waiting = Waiting(tasks, workers)

    async def _build(
        self, request: job_service_pb2.SubmitJobRequest | job_service_pb2.RunJobRequest, field: str = ""
    ) -> job_pb2.Job:
        max_attempts = self._default_max_attempts
        if request.spec.WhichOneof("kind") == TASK_KIND:
            # A name no pool declared is refused: its job would wait for no one.
            declared = await self._tasks.check(request.spec.task, f"{field}spec.task", caller.tenant())
            max_attempts = declared.max_attempts
        return build_job(request.spec, request.options, tenant=caller.tenant(), default_max_attempts=max_attempts)

    async def _job(self, job_id: str) -> job_pb2.Job:
        job = await self._store.get_job(job_id)
        if job is None or job.tenant != caller.tenant():
            raise JobNotFound(job_id)
        return job

    async def SubmitJob(
        self, request: job_service_pb2.SubmitJobRequest, context: Context
    ) -> job_service_pb2.SubmitJobResponse:
        job = await self._build(request)
        await self._limits.take_waiting(job.tenant, 1)
        inserted = await self._intake.submit(job, call_timeout(context, self._config.publish_timeout))
        count_submitted([inserted])
        return job_service_pb2.SubmitJobResponse(job=inserted.job, created=inserted.created)

    async def SubmitJobs(
        self, request: job_service_pb2.SubmitJobsRequest, context: Context
    ) -> job_service_pb2.SubmitJobsResponse:
        jobs = [await self._build(item, f"requests[{i}].") for i, item in enumerate(request.requests)]
        await self._limits.take_waiting(caller.tenant(), len(jobs))
        inserted = await self._submitter.submit(jobs, call_timeout(context, self._config.publish_timeout))
        count_submitted(inserted)
        return job_service_pb2.SubmitJobsResponse(
            results=[job_service_pb2.SubmitJobResponse(job=item.job, created=item.created) for item in inserted]
        )

    async def GetJob(self, request: job_service_pb2.GetJobRequest, context: Context) -> job_service_pb2.GetJobResponse:
        job = await self._job(request.job_id)
        await self._waiting.explain([job])
        return job_service_pb2.GetJobResponse(job=job)

    async def ListJobs(
        self, request: job_service_pb2.ListJobsRequest, context: Context
    ) -> job_service_pb2.ListJobsResponse:
        labels = dict(label.split("=", 1) for label in request.labels)
        after, before = _time_ns(request, "created_after"), _time_ns(request, "created_before")
        if after and before and before <= after:
            raise InvalidRequest("created_before", "must be later than created_after")
        page = await self._store.list_jobs(
            JobQuery(
                tenant=caller.tenant(),
                states=frozenset(request.states),
                kind=request.kind,
                labels=labels,
                parent_id=request.parent_id,
                page_size=request.page_size,
                page_token=request.page_token,
                schedule_id=request.schedule_id,
                order=ORDERS[request.order_by],
                with_total=True,
                created_after_ns=after,
                created_before_ns=before,
            )
        )
        jobs = list(page.jobs)
        await self._waiting.explain(jobs)
        return job_service_pb2.ListJobsResponse(
            jobs=jobs, next_page_token=page.next_page_token, total_size=page.total_size or 0
        )

    async def CancelJob(
        self, request: job_service_pb2.CancelJobRequest, context: Context
    ) -> job_service_pb2.CancelJobResponse:
        await self._job(request.job_id)
        cancel = lifecycle.Cancel()
        updated = await self._store.update_job(request.job_id, cancel.change())
        job = updated.job
        if job is None:
            raise JobNotFound(request.job_id)
        if cancel.outcome == "canceled":
            if job.options.HasField("run_at"):
                # Its schedule would still fire; the relay would skip it, but there is no reason to keep it.
                await self._nc.jetstream().purge_stream(
                    self._topology.scheduled_stream, subject=self._topology.schedule_subject(job.id)
                )
            event = event_for(job, job_pb2.JOB_EVENT_TYPE_CANCELED)
            await self._events.publish(event, event_msg_id(event))
        elif cancel.outcome == "requested":
            event = event_for(job, job_pb2.JOB_EVENT_TYPE_CANCEL_REQUESTED)
            await self._events.publish(event, event_msg_id(event))
            # Reaches the worker running it at once; its heartbeat would notice the flag otherwise.
            await self._nc.publish(self._topology.cancel_subject(job.id), request.reason.encode())
        return job_service_pb2.CancelJobResponse(job=job)

    async def RunJob(self, request: job_service_pb2.RunJobRequest, context: Context) -> None:
        job = await self._build(request)
        await self._limits.take_waiting(job.tenant, 1)
        async with self._streams.listening(job.id) as live:
            inserted = await self._intake.submit(job, call_timeout(context, self._config.publish_timeout))
            count_submitted([inserted])
            submitted = job_service_pb2.SubmitJobResponse(job=inserted.job, created=inserted.created)
            await context.write(job_service_pb2.RunJobResponse(submitted=submitted))
            if inserted.created:
                last = 0
                while True:
                    event = await live.get(after=last)
                    await context.write(job_service_pb2.RunJobResponse(event=event))
                    last = event.sequence
                    if event.terminal:
                        return
        # The idempotency key named an earlier job: its events so far are in the stream's history.
        async for event in self._streams.job_events(inserted.job.id, _known(inserted.job), 0):
            await context.write(job_service_pb2.RunJobResponse(event=event))

    async def WatchJob(self, request: job_service_pb2.WatchJobRequest, context: Context) -> None:
        # Written rather than yielded: a gateway may hold ten thousand of these, and a generator (with grpc's
        # iteration of it) is one more object each.
        async for event in self._streams.job_events(request.job_id, self._job(request.job_id), request.after_sequence):
            await context.write(job_service_pb2.WatchJobResponse(event=event))

    async def GetJobArtifact(
        self, request: job_service_pb2.GetJobArtifactRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        job = await self._job(request.job_id)
        stored = (await job_artifacts(self._store, job)).get(request.name)
        if stored is None:
            name = f"jobs/{job.id}/artifacts/{request.name}"
            await not_found(context, "syllabus.v1.Artifact", name, f"job {job.id!r} has no artifact {request.name!r}")
        js = self._nc.jetstream(timeout=call_timeout(context, self._config.publish_timeout))
        return await download(context, js, self._topology.artifacts_bucket, stored)

    async def WatchJobs(
        self, request: job_service_pb2.WatchJobsRequest, context: Context
    ) -> AsyncIterator[job_service_pb2.WatchJobsResponse]:
        # Initial metadata goes out once the subscription exists, so a caller can tell the watch is live.
        subscribed = lambda: context.send_initial_metadata(())  # noqa: E731
        async for event in self._streams.tenant_events(caller.tenant(), request.kind, subscribed):
            yield job_service_pb2.WatchJobsResponse(event=event)


async def _known(job: job_pb2.Job) -> job_pb2.Job:
    return job
