"""What every registered method gets from gateway.handlers, whatever its servicer does: a request that breaks its
rules never reaches the method, a known failure leaves as its Status, and a bug as INTERNAL without details (the
traceback in the gateway log only). A servicer of plain, undecorated methods shows that nothing of it is needed."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
import pytest_asyncio

from gateway.handlers import Registrar
from syllabus.errors import JobNotFound
from syllabus.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc

SECRET = "the database password is hunter2"


class Broken(job_service_pb2_grpc.JobServiceServicer):
    """Answers each call in a way the wrapping must handle: a bug, a known failure, a stream failing midway."""

    def __init__(self) -> None:
        self.called: list[str] = []

    async def SubmitJob(self, request: Any, context: Any) -> job_service_pb2.SubmitJobResponse:
        self.called.append("SubmitJob")
        return job_service_pb2.SubmitJobResponse()

    async def GetJob(self, request: Any, context: Any) -> job_service_pb2.GetJobResponse:
        raise RuntimeError(SECRET)

    async def CancelJob(self, request: Any, context: Any) -> job_service_pb2.CancelJobResponse:
        raise JobNotFound(request.job_id)

    async def WatchJob(self, request: Any, context: Any) -> AsyncIterator[job_service_pb2.WatchJobResponse]:
        yield job_service_pb2.WatchJobResponse(event=job_pb2.JobEvent(job_id=request.job_id, sequence=1))
        raise JobNotFound(request.job_id)

    async def WatchJobs(self, request: Any, context: Any) -> AsyncIterator[job_service_pb2.WatchJobsResponse]:
        yield job_service_pb2.WatchJobsResponse()
        raise RuntimeError(SECRET)


@pytest_asyncio.fixture
async def served() -> AsyncIterator[tuple[Broken, job_service_pb2_grpc.JobServiceStub]]:
    servicer = Broken()
    server = grpc.aio.server()
    job_service_pb2_grpc.add_JobServiceServicer_to_server(servicer, Registrar(server))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield servicer, job_service_pb2_grpc.JobServiceStub(channel)
    finally:
        await channel.close()
        await server.stop(grace=None)


async def test_a_request_breaking_its_rules_never_reaches_the_method(
    served: tuple[Broken, job_service_pb2_grpc.JobServiceStub],
) -> None:
    servicer, stub = served
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.SubmitJob(job_service_pb2.SubmitJobRequest())
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec" in (caught.value.details() or "")
    assert servicer.called == []
    await stub.SubmitJob(
        job_service_pb2.SubmitJobRequest(spec=job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text="hi")))
    )
    assert servicer.called == ["SubmitJob"]


async def test_a_bug_is_internal_with_no_details_and_its_traceback_logged_with_the_method(
    served: tuple[Broken, job_service_pb2_grpc.JobServiceStub], caplog: pytest.LogCaptureFixture
) -> None:
    _, stub = served
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetJob(job_service_pb2.GetJobRequest(job_id="j1"))
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert caught.value.details() == "internal error; the gateway log has the details"
    [record] = [r for r in caplog.records if r.name == "gateway.handlers"]
    assert record.getMessage() == "/syllabus.v1.JobService/GetJob failed"
    assert record.exc_info is not None and str(record.exc_info[1]) == SECRET


async def test_a_known_failure_leaves_as_its_status(served: tuple[Broken, job_service_pb2_grpc.JobServiceStub]) -> None:
    _, stub = served
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CancelJob(job_service_pb2.CancelJobRequest(job_id="j1"))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert caught.value.details() == "job 'j1' not found"


async def test_a_stream_failing_midway_ends_with_the_status_after_what_it_sent(
    served: tuple[Broken, job_service_pb2_grpc.JobServiceStub], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    _, stub = served
    sequences: list[int] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for response in stub.WatchJob(job_service_pb2.WatchJobRequest(job_id="j1")):
            sequences.append(response.event.sequence)
    assert sequences == [1]
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    received = 0
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in stub.WatchJobs(job_service_pb2.WatchJobsRequest()):
            received += 1
    assert received == 1
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert SECRET not in (caught.value.details() or "")
    assert [r.getMessage() for r in caplog.records if r.name == "gateway.handlers"] == [
        "/syllabus.v1.JobService/WatchJobs failed"
    ]
