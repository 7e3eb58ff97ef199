"""The pipeline fixture's services on a gRPC server of our own, whose address a client or the CLI can dial.

The `pipeline` fixture keeps its server's address to itself; this serves the same NATS, store and topology,
on a port we know, and can be stopped and started again on that port to drop a client's streams.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from gateway.auth.gate import Gate
from gateway.jobs import JobService
from gateway.limits import Limits
from gateway.readiness import Readiness
from gateway.services import add_health_and_reflection, add_services
from gateway.services import server as gateway_server
from gateway.workers import add_worker_service
from syllabus.runtime import Runtime
from syllabus.taskregistry import TaskRegistry
from syllabus.v1 import job_service_pb2
from tests.pipeline.conftest import WORKER_CONFIG, Pipeline, wiring

Requests = list[job_service_pb2.SubmitJobRequest | job_service_pb2.RunJobRequest | job_service_pb2.WatchJobRequest]


class RecordingJobService(JobService):
    """JobService noting every SubmitJob, RunJob and WatchJob request, so a test can see which calls a client
    made, and how it resumed."""

    def __init__(self, requests: Requests, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._requests = requests

    async def SubmitJob(
        self, request: job_service_pb2.SubmitJobRequest, context: Any
    ) -> job_service_pb2.SubmitJobResponse:
        self._requests.append(request)
        return await super().SubmitJob(request, context)

    async def RunJob(self, request: job_service_pb2.RunJobRequest, context: Any) -> None:
        self._requests.append(request)
        await super().RunJob(request, context)

    async def WatchJob(self, request: job_service_pb2.WatchJobRequest, context: Any) -> None:
        self._requests.append(request)
        await super().WatchJob(request, context)


@asynccontextmanager
async def serve(
    pipeline: Pipeline, port: int = 0, requests: Requests | None = None
) -> AsyncIterator[tuple[grpc.aio.Server, str]]:
    """A started server for the pipeline's services, and its "127.0.0.1:port"; stopped at the end. The job
    calls' requests are added to `requests`."""
    server = grpc.aio.server()
    recorded = [] if requests is None else requests
    streams = add_services(
        server,
        wiring(pipeline.nc, pipeline.store, pipeline.topology),
        functools.partial(RecordingJobService, recorded),  # type: ignore[arg-type]
    )
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    assert bound, f"cannot listen on 127.0.0.1:{port}"
    await server.start()
    try:
        yield server, f"127.0.0.1:{bound}"
    finally:
        await server.stop(grace=None)
        await streams.close()


@asynccontextmanager
async def serve_gateway(
    pipeline: Pipeline,
    *interceptors: grpc.aio.ServerInterceptor,
    port: int = 0,
    gate: Gate | None = None,
    limits: Limits | None = None,
) -> AsyncIterator[str]:
    """The pipeline's services as gateway.main serves them (its server's limits, health, reflection, and
    WorkerService, closed first as gateway.main does; behind `gate` and within `limits` if given, else open
    and unlimited), started; yields "127.0.0.1:port" and stops it at the end."""
    server = gateway_server(*interceptors)
    streams = add_services(
        server, dataclasses.replace(wiring(pipeline.nc, pipeline.store, pipeline.topology), gate=gate, limits=limits)
    )
    workers = add_worker_service(
        server,
        runtime=Runtime.build(pipeline.nc, pipeline.store, pipeline.topology),
        tasks=TaskRegistry(pipeline.nc, pipeline.topology),
        config=WORKER_CONFIG,
        gate=gate,
    )
    await Readiness().attach(add_health_and_reflection(server))
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    assert bound, f"cannot listen on 127.0.0.1:{port}"
    await server.start()
    try:
        yield f"127.0.0.1:{bound}"
    finally:
        await workers.close()
        await server.stop(grace=None)
        await streams.close()
