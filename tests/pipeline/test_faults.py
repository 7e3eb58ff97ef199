"""Faults: workers killed or stopped mid-job, NATS gone, delayed jobs across the scheduler relay."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from gateway.services import Wiring, add_services
from onemachine.servers import NatsServer
from syllabus.config import GatewayConfig
from syllabus.jetstream import connect, ensure_topology
from syllabus.runtime import Runtime
from syllabus.store.base import JobQuery
from syllabus.store.embedded import EmbeddedStore
from syllabus.topology import Topology
from syllabus.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from tests.pipeline import handlers
from tests.pipeline.conftest import WORKER_CONFIG, Pipeline, StartWorker
from tests.pipeline.test_jobs import first_event, types, watch

E = job_pb2
ROOT = Path(__file__).resolve().parents[2]
ACK_WAIT = 1.5


async def start_worker_process(
    pipeline: Pipeline, nats_url: str, module: str = "tests.pipeline.worker_proc"
) -> asyncio.subprocess.Process:
    env = os.environ | {
        "SYLLABUS_NATS_URL": nats_url,
        "SYLLABUS_NAMESPACE": pipeline.topology.namespace,
        "SYLLABUS_HOME": str(pipeline.home),
        "SYLLABUS_GENERATOR_ACK_WAIT": str(ACK_WAIT),
        "SYLLABUS_GENERATOR_DRAIN_GRACE": "0.2",
        "SYLLABUS_MAX_ATTEMPTS": "3",
        "SYLLABUS_BACKOFF": "0.05",
    }
    return await asyncio.create_subprocess_exec(sys.executable, "-m", module, cwd=ROOT, env=env)


async def test_worker_killed_mid_job_is_redelivered_and_completes_once(
    pipeline: Pipeline, start_worker: StartWorker, nats_url: str
) -> None:
    process = await start_worker_process(pipeline, nats_url)
    job = await pipeline.submit("block-in-subprocess")
    stream = watch(pipeline, job.id)
    assert (await first_event(stream, E.JOB_EVENT_TYPE_STARTED)).attempt == 1
    process.kill()
    await process.wait()
    # Same AckWait as the dead process, so the consumer keeps redelivering after 1.5 s.
    await start_worker(dataclasses.replace(WORKER_CONFIG, ack_wait=ACK_WAIT, heartbeat=0.5))
    done = await first_event(stream, E.JOB_EVENT_TYPE_SUCCEEDED)
    assert done.attempt == 2
    assert done.result.text == "done by attempt 2: block-in-subprocess"
    history = types(await pipeline.events(job.id))
    assert history == ["QUEUED", "STARTED", "STALLED", "STARTED", "SUCCEEDED"]


async def test_sigterm_drains_and_hands_unfinished_jobs_back(
    pipeline: Pipeline, start_worker: StartWorker, nats_url: str
) -> None:
    process = await start_worker_process(pipeline, nats_url)
    jobs = [await pipeline.submit("block-in-subprocess") for _ in range(3)]
    streams = [watch(pipeline, job.id) for job in jobs]
    for stream in streams:
        await first_event(stream, E.JOB_EVENT_TYPE_STARTED)
    process.send_signal(signal.SIGTERM)
    assert await process.wait() == 0
    for stream in streams:
        await first_event(stream, E.JOB_EVENT_TYPE_QUEUED)  # handed back, not failed
    await start_worker(dataclasses.replace(WORKER_CONFIG, ack_wait=ACK_WAIT, heartbeat=0.5))
    for job, stream in zip(jobs, streams, strict=True):
        done = await first_event(stream, E.JOB_EVENT_TYPE_SUCCEEDED)
        # The interrupted attempt does not count against the job.
        assert done.attempt == 1
        assert types(await pipeline.events(job.id)) == ["QUEUED", "STARTED", "QUEUED", "STARTED", "SUCCEEDED"]
        stored = await pipeline.store.get_job(job.id)
        assert stored is not None and not stored.errors


async def test_stop_lets_running_handlers_finish_within_the_grace_period(
    pipeline: Pipeline, start_worker: StartWorker
) -> None:
    worker = await start_worker()
    job = await pipeline.submit("block")
    stream = watch(pipeline, job.id)
    await first_event(stream, E.JOB_EVENT_TYPE_STARTED)
    stopping = asyncio.create_task(worker.stop())
    handlers.release.set()
    done = await first_event(stream, E.JOB_EVENT_TYPE_SUCCEEDED)
    await stopping
    assert done.attempt == 1 and job.id not in handlers.cancelled


def in_seconds(seconds: int) -> Timestamp:
    at = Timestamp()
    at.GetCurrentTime()
    at.seconds += seconds
    return at


async def test_delayed_job_waits_for_its_time_then_runs(
    pipeline: Pipeline, start_worker: StartWorker, relay: None
) -> None:
    await start_worker()
    run_at = in_seconds(2)
    job = await pipeline.submit("ok", run_at=run_at)
    assert job.state == E.JOB_STATE_SCHEDULED
    events = await pipeline.events(job.id)
    assert types(events) == ["SCHEDULED", "QUEUED", "STARTED", "SUCCEEDED"]
    # Not before run_at, to the fraction of a second.
    assert events[1].time.ToNanoseconds() >= run_at.ToNanoseconds()


async def test_canceled_delayed_job_never_runs(pipeline: Pipeline, start_worker: StartWorker, relay: None) -> None:
    await start_worker()
    # Due in an hour: the cancel cannot race the schedule's firing.
    job = await pipeline.submit("ok", run_at=in_seconds(3600))
    await pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=job.id))
    assert types(await pipeline.events(job.id)) == ["SCHEDULED", "CANCELED"]
    assert await pipeline.messages(pipeline.topology.scheduled_stream) == 0


async def test_nats_unreachable_is_unavailable_within_the_deadline(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")
    await server.start()
    topology = Topology("down")
    nc = await connect(server.url, "pytest-down")
    await ensure_topology(nc, topology)
    store = EmbeddedStore(tmp_path / "store.db")
    await store.open()
    grpc_server = grpc.aio.server()
    streams = add_services(
        grpc_server, Wiring(Runtime.build(nc, store, topology), GatewayConfig(publish_timeout=30.0), "default", 3)
    )
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    try:
        await server.stop()
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = job_service_pb2_grpc.JobServiceStub(channel)
            request = job_service_pb2.SubmitJobRequest(spec=E.JobSpec(summarize_text=E.SummarizeText(text="x")))
            with pytest.raises(grpc.aio.AioRpcError) as err:
                await stub.SubmitJob(request, timeout=2)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
            listed = await store.list_jobs(JobQuery(tenant="default"))
            assert not listed.jobs
    finally:
        await grpc_server.stop(grace=None)
        await streams.close()
        with contextlib.suppress(ConnectionError):  # the server it would flush to is gone
            await nc.close()
        await store.close()
