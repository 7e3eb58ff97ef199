"""WorkerService: a task worker of any language on one gRPC stream, here driven by hand from Python so that every
step of the protocol (and every wrong one) can be taken on purpose."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf.duration_pb2 import Duration

from gateway.services import server as gateway_server
from gateway.workers import WorkerService, _Lost, _Session, add_worker_service
from syllabus.hooks import WorkerHook
from syllabus.runtime import Runtime
from syllabus.taskregistry import TaskDeclaration, TaskRegistry
from syllabus.v1 import admin_service_pb2, job_pb2, job_service_pb2, worker_service_pb2, worker_service_pb2_grpc
from syllabus.worker import Defer, JobContext, RetryableError
from tests.pipeline.conftest import WORKER_CONFIG, Pipeline
from tests.pipeline.test_jobs import field_violations, types

E = job_pb2
W = worker_service_pb2


@dataclass
class Gateway:
    stub: worker_service_pb2_grpc.WorkerServiceStub
    service: WorkerService


@contextlib.asynccontextmanager
async def worker_service(pipeline: Pipeline, hooks: Sequence[WorkerHook] = ()) -> AsyncIterator[Gateway]:
    """A gateway serving WorkerService alone, its remote pools' attempts seen by `hooks`."""
    server = gateway_server()
    service = add_worker_service(
        server,
        runtime=Runtime.build(pipeline.nc, pipeline.store, pipeline.topology),
        tasks=TaskRegistry(pipeline.nc, pipeline.topology),
        config=replace(WORKER_CONFIG, drain_grace=0.2),
        hooks=hooks,
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield Gateway(worker_service_pb2_grpc.WorkerServiceStub(channel), service)
    finally:
        await service.close()
        await channel.close()
        await server.stop(grace=None)


@pytest_asyncio.fixture
async def gateway(pipeline: Pipeline) -> AsyncIterator[Gateway]:
    async with worker_service(pipeline) as served:
        yield served


def hello(pool: str = "remote", *tasks: W.TaskDefinition, concurrency: int = 2) -> W.WorkRequest:
    given = tasks or (W.TaskDefinition(name="text.upper", max_attempts=3),)
    return W.WorkRequest(hello=W.WorkerHello(pool=pool, tasks=given, concurrency=concurrency, description="test"))


class RemoteWorker:
    """One Work stream, written and read step by step."""

    def __init__(self, call: Any) -> None:
        self.call = call

    async def send(self, **message: Any) -> None:
        await self.call.write(W.WorkRequest(**message))

    async def next(self) -> W.WorkResponse:
        response = await self.call.read()
        assert response is not grpc.aio.EOF, "the gateway ended the stream"
        assert isinstance(response, W.WorkResponse)
        return response

    async def assignment(self) -> W.Assignment:
        response = await self.next()
        assert response.WhichOneof("message") == "assignment", response
        return response.assignment

    async def succeed(self, attempt_id: str, value: dict[str, Any]) -> None:
        await self.send(outcome=W.AttemptOutcome(attempt_id=attempt_id, result_json=json.dumps(value)))

    async def fail(self, attempt_id: str, type_: str, *, permanent: bool = False) -> None:
        failure = W.AttemptFailure(type=type_, message=f"{type_} on purpose", permanent=permanent)
        await self.send(outcome=W.AttemptOutcome(attempt_id=attempt_id, failure=failure))


async def connect(gateway: Gateway, request: W.WorkRequest | None = None) -> RemoteWorker:
    worker = RemoteWorker(gateway.stub.Work(timeout=60))
    await worker.send(hello=(request or hello()).hello)
    welcome = await worker.next()
    assert welcome.welcome.worker_id.startswith("remote-")
    return worker


async def submit(
    pipeline: Pipeline, name: str = "text.upper", value: dict[str, Any] | None = None, **options: Any
) -> job_pb2.Job:
    spec = job_pb2.JobSpec(task=job_pb2.Task(name=name))
    spec.task.json.update(value if value is not None else {"text": "abc"})
    request = job_service_pb2.SubmitJobRequest(spec=spec, options=job_pb2.JobOptions(**options))
    response: job_service_pb2.SubmitJobResponse = await pipeline.jobs.SubmitJob(request, timeout=10)
    return response.job


async def test_a_remote_worker_takes_a_job_reports_progress_and_succeeds(pipeline: Pipeline, gateway: Gateway) -> None:
    worker = await connect(gateway)
    job = await submit(pipeline, value={"text": "abc"}, labels={"team": "ops"})
    given = await worker.assignment()
    assert (given.job_id, given.task, given.attempt, given.max_attempts) == (job.id, "text.upper", 1, 3)
    assert json.loads(given.input_json) == {"text": "abc"} and dict(given.labels) == {"team": "ops"}
    await worker.send(progress=W.AttemptProgress(attempt_id=given.attempt_id, percent=50, message="half way"))
    await worker.succeed(given.attempt_id, {"text": "ABC"})
    events = await pipeline.events(job.id)
    assert types(events) == ["QUEUED", "STARTED", "PROGRESS", "SUCCEEDED"]
    assert events[2].progress.message == "half way"
    done = await pipeline.store.get_job(job.id)
    assert done is not None and dict(done.result.json) == {"text": "ABC"}


async def test_a_retryable_failure_is_retried_and_a_permanent_one_dead_lettered(
    pipeline: Pipeline, gateway: Gateway
) -> None:
    worker = await connect(gateway)
    job = await submit(pipeline)
    await worker.fail((await worker.assignment()).attempt_id, "Flaky")
    second = await worker.assignment()
    assert second.attempt == 2
    await worker.fail(second.attempt_id, "BadInput", permanent=True)
    events = await pipeline.events(job.id)
    assert types(events) == ["QUEUED", "STARTED", "RETRYING", "STARTED", "DEAD_LETTERED", "FAILED"]
    letter = await pipeline.admin.GetDeadLetter(admin_service_pb2.GetDeadLetterRequest(job_id=job.id), timeout=10)
    assert [(e.type, e.permanent) for e in letter.dead_letter.job.errors] == [("Flaky", False), ("BadInput", True)]


async def test_attempts_in_hand_when_the_stream_ends_are_lost_and_retried_elsewhere(
    pipeline: Pipeline, gateway: Gateway
) -> None:
    first = await connect(gateway)
    job = await submit(pipeline)
    await first.assignment()
    first.call.cancel()
    second = await connect(gateway)
    again = await second.assignment()
    assert (again.job_id, again.attempt) == (job.id, 2)
    await second.succeed(again.attempt_id, {"ok": True})
    end = await pipeline.wait_end(job.id)
    assert end.state == E.JOB_STATE_SUCCEEDED
    assert [(e.attempt, e.type) for e in end.errors] == [(1, "WorkerLost")]


async def test_an_attempt_past_its_time_limit_cannot_complete_the_job(pipeline: Pipeline, gateway: Gateway) -> None:
    short = W.TaskDefinition(name="text.upper", max_attempts=2, timeout=Duration(nanos=200_000_000))
    worker = await connect(gateway, hello("remote", short))
    job = await submit(pipeline)
    stale = await worker.assignment()
    stopped = await worker.next()
    assert stopped.cancel == W.AttemptCancel(attempt_id=stale.attempt_id, reason="timeout")
    retried = await worker.assignment()
    assert retried.attempt == 2 and retried.attempt_id != stale.attempt_id
    # The first attempt's late success changes nothing: only the second's counts.
    await worker.succeed(stale.attempt_id, {"from": "the stale attempt"})
    await worker.succeed(retried.attempt_id, {"from": "attempt 2"})
    end = await pipeline.wait_end(job.id)
    assert end.state == E.JOB_STATE_SUCCEEDED and dict(end.result.json) == {"from": "attempt 2"}
    assert [(e.attempt, e.type) for e in end.errors] == [(1, "Timeout")]


async def test_cancel_job_stops_the_remote_attempt(pipeline: Pipeline, gateway: Gateway) -> None:
    worker = await connect(gateway)
    job = await submit(pipeline)
    given = await worker.assignment()
    await pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=job.id), timeout=10)
    stopped = await worker.next()
    assert stopped.cancel == W.AttemptCancel(attempt_id=given.attempt_id, reason="canceled")
    await worker.succeed(given.attempt_id, {"too": "late"})
    end = await pipeline.wait_end(job.id)
    assert end.state == E.JOB_STATE_CANCELED and not end.result.HasField("json")


async def test_a_result_that_is_not_a_json_object_fails_the_attempt_for_good(
    pipeline: Pipeline, gateway: Gateway
) -> None:
    worker = await connect(gateway)
    job = await submit(pipeline)
    given = await worker.assignment()
    await worker.send(outcome=W.AttemptOutcome(attempt_id=given.attempt_id, result_json="[1, 2]"))
    end = await pipeline.wait_end(job.id)
    assert end.state == E.JOB_STATE_FAILED and end.errors[-1].type == "InvalidResult"


async def test_a_deferred_attempt_comes_back_uncounted(pipeline: Pipeline, gateway: Gateway) -> None:
    worker = await connect(gateway)
    job = await submit(pipeline)
    given = await worker.assignment()
    deferral = W.AttemptDeferral(reason="shutting down")
    await worker.send(outcome=W.AttemptOutcome(attempt_id=given.attempt_id, deferral=deferral))
    again = await worker.assignment()
    assert again.job_id == job.id and again.attempt == 1
    await worker.succeed(again.attempt_id, {})
    assert (await pipeline.wait_end(job.id)).errors == []


async def test_a_draining_worker_finishes_what_it_holds_then_the_stream_ends(
    pipeline: Pipeline, gateway: Gateway
) -> None:
    worker = await connect(gateway)
    job = await submit(pipeline)
    given = await worker.assignment()
    await worker.send(drain=W.WorkerDrain())
    await worker.succeed(given.attempt_id, {"done": 1})
    assert await worker.call.read() is grpc.aio.EOF
    assert await worker.call.code() == grpc.StatusCode.OK
    assert (await pipeline.wait_end(job.id)).state == E.JOB_STATE_SUCCEEDED


async def test_the_gateway_stopping_hands_attempts_back_uncounted(pipeline: Pipeline, gateway: Gateway) -> None:
    worker = await connect(gateway)
    job = await submit(pipeline)
    given = await worker.assignment()
    await gateway.service.close()
    stopped = await worker.next()
    assert stopped.cancel == W.AttemptCancel(attempt_id=given.attempt_id, reason="shutdown")
    stored = await pipeline.store.get_job(job.id)
    assert stored is not None and stored.state == E.JOB_STATE_QUEUED and stored.errors == []


@pytest.mark.parametrize(
    ("first", "field"),
    [
        (W.WorkRequest(drain=W.WorkerDrain()), "hello"),
        (hello("Bad Pool"), "hello.pool"),
        (hello("remote", W.TaskDefinition(name="Not A Name")), "hello.tasks[0].name"),
        (hello("remote", concurrency=0), "hello.concurrency"),
        (hello("remote", W.TaskDefinition(name="a.b"), W.TaskDefinition(name="a.b")), "tasks"),
    ],
)
async def test_a_bad_hello_is_invalid_argument_naming_the_field(
    gateway: Gateway, first: W.WorkRequest, field: str
) -> None:
    call = gateway.stub.Work(timeout=10)
    await call.write(first)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in field_violations(caught.value)


async def test_a_task_another_pool_serves_is_refused_at_hello(pipeline: Pipeline, gateway: Gateway) -> None:
    registry = TaskRegistry(pipeline.nc, pipeline.topology)
    await registry.declare("acme", [TaskDeclaration(name="text.upper", pool="acme", max_attempts=3, timeout=30.0)])
    call = gateway.stub.Work(timeout=10)
    await call.write(hello())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "already served by worker pool 'acme'" in (caught.value.details() or "")


async def test_an_attempt_taken_as_its_stream_is_lost_ends_at_once_and_never_goes_out() -> None:
    # The runtime may start a handler for a job it fetched just before the stream ended: that attempt must end as
    # the attempts in hand did, not wait out its time limit for an outcome no one will send (which held a stopping
    # gateway for minutes).
    declaration = TaskDeclaration(name="strings.reverse", pool="p", max_attempts=3, timeout=3600.0)
    job = job_pb2.Job(id="j1", spec=job_pb2.JobSpec(task=job_pb2.Task(name="strings.reverse")))

    async def report(percent: float, message: str) -> None:
        raise AssertionError("no progress is reported")

    lost = _Session("p-1", {"strings.reverse": declaration})
    lost.lose_all(_Lost())
    # A guard, not a measure: without the fix the attempt would wait for its hour-long limit.
    async with asyncio.timeout(30):
        with pytest.raises(RetryableError, match="went away with the attempt"):
            await lost.handle(JobContext(job=job, attempt=1, _report=report))
    assert lost.outbox.empty() and not lost.in_hand

    stopping = _Session("p-2", {"strings.reverse": declaration})
    stopping.closing = True
    stopping.lose_all(Defer(0.0, "the gateway the worker was connected to stopped"))
    async with asyncio.timeout(30):
        with pytest.raises(Defer):
            await stopping.handle(JobContext(job=job, attempt=1, _report=report))
    assert stopping.outbox.empty() and not stopping.in_hand
