"""The Node.js task worker (clients/node/worker.js, run as clients/node/example_worker.js) against the gateway's
WorkerService: jobs of its tasks are taken, report progress, succeed, are retried, dead-lettered and retried with
an edited input, canceled; SIGTERM drains it."""

from __future__ import annotations

import asyncio
import signal
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest_asyncio

from syllabus.v1 import admin_service_pb2, job_pb2, job_service_pb2
from tests.pipeline.conftest import Pipeline
from tests.pipeline.served import serve_gateway
from tests.pipeline.test_jobs import first_event, types, watch
from tests.rest.conftest import Rest

E = job_pb2


@pytest_asyncio.fixture
async def node_worker(rest: Rest, node_client: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await asyncio.create_subprocess_exec(
        "node",
        "example_worker.js",
        rest.grpc_target,
        "--pool",
        "node-test",
        cwd=node_client,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    line = (await process.stderr.readline()).decode()
    assert "syllabus worker node-test: connected to" in line, line
    try:
        yield process
    finally:
        if process.returncode is None:
            process.kill()
        # Read what is left of stderr too: on Python 3.11 wait() returns only once every pipe is closed, and a
        # pipe nobody reads can stay full.
        await process.communicate()


async def submit(pipeline: Pipeline, name: str, value: dict[str, Any]) -> job_pb2.Job:
    spec = job_pb2.JobSpec(task=job_pb2.Task(name=name))
    spec.task.json.update(value)
    response: job_service_pb2.SubmitJobResponse = await pipeline.jobs.SubmitJob(
        job_service_pb2.SubmitJobRequest(spec=spec), timeout=10
    )
    return response.job


async def test_a_node_worker_runs_retries_and_dead_letters_its_tasks(
    rest: Rest, node_worker: asyncio.subprocess.Process
) -> None:
    # Submitted over REST, as a user's curl would.
    posted = await rest.http.post(
        "/v1/jobs", json={"spec": {"task": {"name": "strings.reverse", "json": {"text": "stressed"}}}}
    )
    assert posted.status_code == 200, posted.text
    plain = posted.json()["job"]["id"]
    flaky = (await submit(rest.pipeline, "strings.reverse", {"text": "abc", "flaky": True})).id
    broken = (await submit(rest.pipeline, "strings.reverse", {"words": "no text"})).id

    events = await rest.pipeline.events(plain)
    assert types(events) == ["QUEUED", "STARTED", "PROGRESS", "SUCCEEDED"]
    # The worker as the node process describes itself, not as the gateway running its runtime is.
    listed = await rest.pipeline.admin.ListWorkers(admin_service_pb2.ListWorkersRequest(queue="pool-node-test"))
    (worker,) = listed.workers
    assert (worker.host, worker.pid) == (socket.gethostname(), node_worker.pid)
    assert {"strings.reverse", "timer.wait"} <= set(worker.kinds)
    ran = await rest.pipeline.store.get_job(plain)
    assert ran is not None and [(a.worker_id, a.host) for a in ran.attempts] == [(worker.worker_id, worker.host)]
    got = await rest.http.get(f"/v1/jobs/{plain}")
    assert got.json()["job"]["result"]["json"] == {"text": "desserts", "length": 8.0, "attempt": 1.0}

    retried = await rest.pipeline.wait_end(flaky)
    assert retried.state == E.JOB_STATE_SUCCEEDED and [e.type for e in retried.errors] == ["Flaky"]
    assert dict(retried.result.json)["attempt"] == 2

    failed = await rest.pipeline.wait_end(broken)
    assert failed.state == E.JOB_STATE_FAILED
    assert (failed.errors[-1].type, failed.errors[-1].permanent) == ("InvalidInput", True)
    edited = job_pb2.JobSpec(task=job_pb2.Task(name="strings.reverse"))
    edited.task.json.update({"text": "fixed"})
    await rest.pipeline.admin.RetryDeadLetter(
        admin_service_pb2.RetryDeadLetterRequest(job_id=broken, spec=edited), timeout=10
    )
    done = await rest.pipeline.wait_end(broken)
    assert done.state == E.JOB_STATE_SUCCEEDED and dict(done.result.json)["text"] == "dexif"


async def test_a_canceled_node_attempt_stops_and_sigterm_drains_the_worker(
    rest: Rest, node_worker: asyncio.subprocess.Process
) -> None:
    job = await submit(rest.pipeline, "timer.wait", {"seconds": 3600})
    watch = rest.pipeline.jobs.WatchJob(job_service_pb2.WatchJobRequest(job_id=job.id), timeout=30)
    async for response in watch:
        if response.event.type == E.JOB_EVENT_TYPE_PROGRESS:
            break
    watch.cancel()
    await rest.pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=job.id), timeout=10)
    assert (await rest.pipeline.wait_end(job.id)).state == E.JOB_STATE_CANCELED

    node_worker.send_signal(signal.SIGTERM)
    _, err = await node_worker.communicate()
    assert node_worker.returncode == 0
    assert err.decode().strip().endswith("syllabus worker node-test: stopped")


async def test_a_node_worker_reconnects_when_its_gateway_restarts_and_gets_its_job_back(
    pipeline: Pipeline, node_client: Path
) -> None:
    async with serve_gateway(pipeline) as target:
        process = await asyncio.create_subprocess_exec(
            "node", "example_worker.js", target, "--pool", "node-test", cwd=node_client, stderr=asyncio.subprocess.PIPE
        )
        assert process.stderr is not None
        try:
            assert "connected to" in (await process.stderr.readline()).decode()
            job = await submit(pipeline, "timer.wait", {"seconds": 3600})
            await first_event(watch(pipeline, job.id), E.JOB_EVENT_TYPE_PROGRESS)
        except BaseException:
            process.kill()
            raise
    try:
        # The gateway stopped: the attempt went back uncounted, and the worker is trying to come back.
        stored = await pipeline.store.get_job(job.id)
        assert stored is not None and stored.state == E.JOB_STATE_QUEUED and not stored.errors
        assert "gateway" in (await process.stderr.readline()).decode()
        async with serve_gateway(pipeline, port=int(target.rsplit(":", 1)[1])):
            while "connected to" not in (line := (await process.stderr.readline()).decode()):
                assert line, "the worker exited instead of reconnecting"
            quick = await submit(pipeline, "strings.reverse", {"text": "ab"})
            assert (await pipeline.wait_end(quick.id)).state == E.JOB_STATE_SUCCEEDED
            # The job handed back is taken again by the reconnected worker.
            stream = watch(pipeline, job.id)
            await first_event(stream, E.JOB_EVENT_TYPE_STARTED)
            await pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=job.id), timeout=10)
            assert (await pipeline.wait_end(job.id)).state == E.JOB_STATE_CANCELED
            process.terminate()
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
