"""The course pipeline in-process on the session's real NATS and Valkey: the gateway's gRPC services (jobs, admin,
courses), a generator worker and a renderer worker with the real handlers, an embedded store; and fake model
APIs for the real Gemini and OpenAI-compatible clients."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import grpc
import pytest_asyncio
from nats.aio.client import Client as NatsClient

from gateway.services import add_services
from generator.handlers import build_handlers
from generator.models import Models
from generator.providers.breaker import Breaker, LocalBreaker
from generator.providers.cache import ReplyCache
from generator.providers.offline import OfflineProvider
from generator.providers.registry import Registry
from renderer.documents import build_handlers as build_renderer_handlers
from syllabus.config import RendererConfig, RetryPolicy, WorkerConfig
from syllabus.hooks import WorkerHook
from syllabus.jetstream import ensure_topology
from syllabus.runtime import Runtime
from syllabus.store.embedded import EmbeddedStore
from syllabus.topology import Topology
from syllabus.v1 import (
    admin_service_pb2_grpc,
    course_service_pb2,
    course_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
)
from syllabus.worker import Worker
from tests.course.fake_http import FakeHTTP, Reply, Request
from tests.pipeline.conftest import wiring

TENANT = "default"
WORKER_CONFIG = WorkerConfig(
    concurrency=8,
    ack_wait=30.0,
    heartbeat=10.0,
    default_timeout=30.0,
    drain_grace=5.0,
    retry=RetryPolicy(max_attempts=3, backoff=(0.05,), jitter=0.0),
)


def offline_registry() -> Registry:
    return Registry("offline", {"offline": lambda model: OfflineProvider()})


@dataclasses.dataclass
class CourseStack:
    nc: NatsClient
    store: EmbeddedStore
    topology: Topology
    addr: str
    jobs: job_service_pb2_grpc.JobServiceStub
    admin: admin_service_pb2_grpc.AdminServiceStub
    courses: course_service_pb2_grpc.CourseServiceStub
    workers: list[tuple[Worker, asyncio.Task[None]]] = dataclasses.field(default_factory=list)

    def models(
        self, registry: Registry | None = None, *, breaker: Breaker | None = None, cache: ReplyCache | None = None
    ) -> Models:
        return Models(
            registry or offline_registry(),
            cache=cache,
            breaker=breaker or LocalBreaker(threshold=5, cooldown=30.0, probe_timeout=30.0),
        )

    def runtime(self) -> Runtime:
        """A process's runtime on the stack's connections, as syllabus.process builds one."""
        return Runtime.build(self.nc, self.store, self.topology)

    async def start_workers(
        self, models: Models | None = None, config: WorkerConfig = WORKER_CONFIG, hooks: Sequence[WorkerHook] = ()
    ) -> None:
        """A generator and a renderer worker with the services' real handlers."""
        runtime = self.runtime()
        generator = Worker(
            service="generator",
            handlers=build_handlers(runtime, models or self.models(), config.retry.max_attempts),
            runtime=runtime,
            config=config,
            hooks=hooks,
        )
        renderer = Worker(
            service="renderer",
            handlers=build_renderer_handlers(runtime, RendererConfig()),
            runtime=runtime,
            config=dataclasses.replace(config, concurrency=2),
            hooks=hooks,
        )
        for worker in (generator, renderer):
            self.workers.append((worker, asyncio.create_task(worker.run())))

    async def stop_workers(self) -> None:
        for worker, _ in self.workers:
            worker.stop()
        await asyncio.gather(*(task for _, task in self.workers))
        self.workers.clear()

    async def create(
        self, prompt: str = "Intro to Rust for Python developers", modules: int = 6, **options: object
    ) -> course_service_pb2.CreateCourseResponse:
        request = course_service_pb2.CreateCourseRequest(
            course=job_pb2.GenerateCourse(prompt=prompt, modules=modules, audience="Python developers"),
            options=job_pb2.JobOptions(**options),  # type: ignore[arg-type]
        )
        response: course_service_pb2.CreateCourseResponse = await self.courses.CreateCourse(request, timeout=10)
        return response

    async def events(self, job_id: str, after: int = 0, timeout: float = 30) -> list[job_pb2.JobEvent]:
        """Every event of the job until its stream ends (the terminal event)."""
        call = self.jobs.WatchJob(job_service_pb2.WatchJobRequest(job_id=job_id, after_sequence=after), timeout=timeout)
        return [response.event async for response in call]


@pytest_asyncio.fixture
async def stack(nc: NatsClient, topology: Topology, tmp_path: Path) -> AsyncIterator[CourseStack]:
    await ensure_topology(nc, topology)
    store = EmbeddedStore(tmp_path / "store.db")
    await store.open()
    server = grpc.aio.server()
    streams = add_services(server, wiring(nc, store, topology))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    addr = f"127.0.0.1:{port}"
    channel = grpc.aio.insecure_channel(addr)
    running = CourseStack(
        nc=nc,
        store=store,
        topology=topology,
        addr=addr,
        jobs=job_service_pb2_grpc.JobServiceStub(channel),
        admin=admin_service_pb2_grpc.AdminServiceStub(channel),
        courses=course_service_pb2_grpc.CourseServiceStub(channel),
    )
    try:
        yield running
    finally:
        await running.stop_workers()
        await channel.close()
        await server.stop(grace=None)
        await streams.close()
        await store.close()


def _unscripted(request: Request) -> Reply:
    return Reply(status=500, body={"error": {"code": 500, "message": "no scripted reply", "status": "INTERNAL"}})


@pytest_asyncio.fixture
async def fake_api() -> AsyncIterator[FakeHTTP]:
    """A fake model API; each test scripts its replies (unscripted requests get a 500)."""
    server = await FakeHTTP(_unscripted).start()
    try:
        yield server
    finally:
        await server.stop()
