"""An in-process pipeline on the session's real NATS: the gateway's gRPC services, workers, an embedded store."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import grpc
import pytest_asyncio
from nats.aio.client import Client as NatsClient

from gateway.services import Wiring, add_services
from scheduler.relay import DueRelay
from syllabus.config import GatewayConfig, RetryPolicy, WorkerConfig
from syllabus.hooks import WorkerHook
from syllabus.jetstream import ensure_topology
from syllabus.runtime import Runtime
from syllabus.store.embedded import EmbeddedStore
from syllabus.topology import Topology
from syllabus.v1 import (
    admin_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    schedule_service_pb2_grpc,
)
from syllabus.worker import Handler, Worker
from tests.pipeline import handlers

TENANT = "default"
WORKER_CONFIG = WorkerConfig(
    concurrency=4,
    ack_wait=30.0,
    heartbeat=10.0,
    default_timeout=30.0,
    drain_grace=5.0,
    retry=RetryPolicy(max_attempts=3, backoff=(0.05,), jitter=0.0),
)


def wiring(nc: NatsClient, store: EmbeddedStore, topology: Topology) -> Wiring:
    return Wiring(
        Runtime.build(nc, store, topology), GatewayConfig(publish_timeout=5.0), TENANT, WORKER_CONFIG.retry.max_attempts
    )


@dataclasses.dataclass
class Pipeline:
    nc: NatsClient
    store: EmbeddedStore
    topology: Topology
    jobs: job_service_pb2_grpc.JobServiceStub
    admin: admin_service_pb2_grpc.AdminServiceStub
    home: Path
    schedules: schedule_service_pb2_grpc.ScheduleServiceStub

    async def submit(self, text: str, **options: object) -> job_pb2.Job:
        request = job_service_pb2.SubmitJobRequest(
            spec=job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text=text)),
            options=job_pb2.JobOptions(**options),  # type: ignore[arg-type]
        )
        response: job_service_pb2.SubmitJobResponse = await self.jobs.SubmitJob(request, timeout=10)
        return response.job

    async def events(self, job_id: str, after: int = 0, timeout: float = 30) -> list[job_pb2.JobEvent]:
        """Every event of the job until its stream ends (the terminal event)."""
        call = self.jobs.WatchJob(job_service_pb2.WatchJobRequest(job_id=job_id, after_sequence=after), timeout=timeout)
        return [response.event async for response in call]

    async def messages(self, stream: str) -> int:
        """How many messages the stream holds now."""
        return int((await self.nc.jetstream().stream_info(stream)).state.messages)

    async def wait_end(self, job_id: str, timeout: float = 30) -> job_pb2.Job:
        await self.events(job_id, timeout=timeout)
        job = await self.store.get_job(job_id)
        assert job is not None
        return job


@pytest_asyncio.fixture
async def pipeline(nc: NatsClient, topology: Topology, tmp_path: Path) -> AsyncIterator[Pipeline]:
    await ensure_topology(nc, topology)
    store = EmbeddedStore(tmp_path / "store.db")
    await store.open()
    server = grpc.aio.server()
    streams = add_services(server, wiring(nc, store, topology))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    handlers.reset()
    try:
        yield Pipeline(
            nc=nc,
            store=store,
            topology=topology,
            jobs=job_service_pb2_grpc.JobServiceStub(channel),
            admin=admin_service_pb2_grpc.AdminServiceStub(channel),
            home=tmp_path,
            schedules=schedule_service_pb2_grpc.ScheduleServiceStub(channel),
        )
    finally:
        handlers.release.set()
        await channel.close()
        await server.stop(grace=None)
        await streams.close()
        await store.close()


@pytest_asyncio.fixture
async def relay(pipeline: Pipeline) -> AsyncIterator[None]:
    """The scheduler's relay on the pipeline: delayed jobs move to their queue when they fall due."""
    stop = asyncio.Event()
    task = asyncio.create_task(DueRelay(Runtime.build(pipeline.nc, pipeline.store, pipeline.topology)).run(stop))
    yield
    stop.set()
    await task


@dataclasses.dataclass
class RunningWorker:
    worker: Worker
    task: asyncio.Task[None]

    async def stop(self) -> None:
        """Drain and wait: once this returns, every message the worker fetched has been dealt with."""
        self.worker.stop()
        await self.task


StartWorker = Callable[..., Awaitable[RunningWorker]]


@pytest_asyncio.fixture
async def start_worker(pipeline: Pipeline) -> AsyncIterator[StartWorker]:
    """Starts in-process workers on the pipeline; each is stopped (drained) at teardown."""
    running: list[RunningWorker] = []

    async def start(
        config: WorkerConfig = WORKER_CONFIG,
        handler_map: dict[str, Handler] | None = None,
        hooks: Sequence[WorkerHook] = (),
    ) -> RunningWorker:
        worker = Worker(
            service="generator",
            handlers=handler_map or handlers.HANDLERS,
            runtime=Runtime.build(pipeline.nc, pipeline.store, pipeline.topology),
            config=config,
            hooks=hooks,
        )
        running.append(RunningWorker(worker, asyncio.create_task(worker.run())))
        return running[-1]

    yield start
    handlers.release.set()
    await asyncio.gather(*(handle.stop() for handle in running))
