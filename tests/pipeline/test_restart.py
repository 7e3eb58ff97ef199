"""NATS restarted under a running pipeline: nothing accepted is lost, and the pipeline carries on by itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest_asyncio

from gateway.services import add_services
from onemachine.servers import NatsServer
from syllabus.jetstream import connect, ensure_topology
from syllabus.runtime import Runtime
from syllabus.store.embedded import EmbeddedStore
from syllabus.topology import Topology
from syllabus.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from syllabus.worker import Worker
from tests.pipeline import handlers
from tests.pipeline.conftest import WORKER_CONFIG, wiring
from tests.pipeline.test_jobs import first_event, types
from tests.ports import unassigned_port

E = job_pb2


class Restartable:
    """A pipeline on a NATS server of its own, which the test can restart on the same port and data."""

    def __init__(self, home: Path) -> None:
        self.home = home
        # A port no other program is handed while the server is down (one it picked could be).
        self.server = NatsServer(home / "nats", port=unassigned_port())
        self.topology = Topology("restart")
        # Whether the pipeline's NATS connection is up: submissions are refused (UNAVAILABLE) while it is not.
        self.connected = asyncio.Event()
        self.lost = asyncio.Event()

    async def on_nats(self, connected: bool) -> None:
        if connected:
            self.lost.clear()
            self.connected.set()
        else:
            self.connected.clear()
            self.lost.set()

    async def restart_nats(self) -> None:
        port = int(self.server.url.rsplit(":", 1)[1])
        await self.server.stop()
        await self.lost.wait()
        self.server = NatsServer(self.home / "nats", port=port)
        await self.server.start()


@pytest_asyncio.fixture
async def restartable(tmp_path: Path) -> AsyncIterator[tuple[Restartable, job_service_pb2_grpc.JobServiceStub]]:
    env = Restartable(tmp_path)
    await env.server.start()
    nc = await connect(env.server.url, "pytest-restart", env.on_nats)
    env.connected.set()
    await ensure_topology(nc, env.topology)
    store = EmbeddedStore(tmp_path / "store.db")
    await store.open()
    server = grpc.aio.server()
    streams = add_services(server, wiring(nc, store, env.topology))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    worker = Worker(
        service="generator",
        handlers=handlers.HANDLERS,
        runtime=Runtime.build(nc, store, env.topology),
        config=WORKER_CONFIG,
    )
    running = asyncio.create_task(worker.run())
    handlers.reset()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield env, job_service_pb2_grpc.JobServiceStub(channel)
    finally:
        handlers.release.set()
        worker.stop()
        await running
        await channel.close()
        await server.stop(grace=None)
        await streams.close()
        with contextlib.suppress(Exception):
            await nc.close()
        await store.close()
        await env.server.stop()


def summarize(text: str) -> job_service_pb2.SubmitJobRequest:
    return job_service_pb2.SubmitJobRequest(spec=E.JobSpec(summarize_text=E.SummarizeText(text=text)))


async def events(stub: job_service_pb2_grpc.JobServiceStub, job_id: str) -> list[job_pb2.JobEvent]:
    call = stub.WatchJob(job_service_pb2.WatchJobRequest(job_id=job_id), timeout=60)
    return [response.event async for response in call]


async def test_jobs_survive_a_nats_restart_mid_job(
    restartable: tuple[Restartable, job_service_pb2_grpc.JobServiceStub],
) -> None:
    env, stub = restartable
    before = (await stub.SubmitJob(summarize("ok:before"), timeout=30)).job
    assert types(await events(stub, before.id)) == ["QUEUED", "STARTED", "SUCCEEDED"]
    blocked = (await stub.SubmitJob(summarize("block"), timeout=30)).job
    queued = (await stub.SubmitJob(summarize("ok:queued behind"), timeout=30)).job
    watch = stub.WatchJob(job_service_pb2.WatchJobRequest(job_id=blocked.id), timeout=60)
    await first_event(watch, E.JOB_EVENT_TYPE_STARTED)
    watch.cancel()

    await env.restart_nats()
    handlers.release.set()  # the running job finishes while the clients reconnect

    await env.connected.wait()
    after = (await stub.SubmitJob(summarize("ok:after"), timeout=30)).job
    for job in (blocked, queued, after):
        history = await events(stub, job.id)
        assert history[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED, (job.spec.summarize_text.text, types(history))
        assert types(history).count("SUCCEEDED") == 1
    got = await stub.GetJob(job_service_pb2.GetJobRequest(job_id=before.id), timeout=30)
    assert got.job.state == E.JOB_STATE_SUCCEEDED
