"""The pipeline fixture's services on a gRPC server of our own, whose address a client or the CLI can dial.

The `pipeline` fixture keeps its server's address to itself; this serves the same NATS, store and topology,
on a port we know, and can be stopped and started again on that port to drop a client's streams.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc

from gateway.admin import AdminService
from gateway.jobs import JobService
from syllabus.config import GatewayConfig
from syllabus.v1 import admin_service_pb2_grpc, job_service_pb2, job_service_pb2_grpc
from tests.pipeline.conftest import TENANT, WORKER_CONFIG, Pipeline

WatchRequests = list[job_service_pb2.WatchJobRequest]


class RecordingJobService(JobService):
    """JobService noting every WatchJob request, so a test can see how a client resumed."""

    def __init__(self, watch_requests: WatchRequests, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._watch_requests = watch_requests

    async def WatchJob(
        self, request: job_service_pb2.WatchJobRequest, context: Any
    ) -> AsyncIterator[job_service_pb2.WatchJobResponse]:
        self._watch_requests.append(request)
        async for response in super().WatchJob(request, context):
            yield response


@asynccontextmanager
async def serve(
    pipeline: Pipeline, port: int = 0, watch_requests: WatchRequests | None = None
) -> AsyncIterator[tuple[grpc.aio.Server, str]]:
    """A started server for the pipeline's services, and its "127.0.0.1:port"; stopped at the end."""
    server = grpc.aio.server()
    job_service_pb2_grpc.add_JobServiceServicer_to_server(
        RecordingJobService(
            [] if watch_requests is None else watch_requests,
            nc=pipeline.nc,
            store=pipeline.store,
            topology=pipeline.topology,
            config=GatewayConfig(publish_timeout=5.0),
            tenant=TENANT,
            default_max_attempts=WORKER_CONFIG.retry.max_attempts,
        ),
        server,
    )
    admin_service_pb2_grpc.add_AdminServiceServicer_to_server(
        AdminService(
            nc=pipeline.nc,
            store=pipeline.store,
            topology=pipeline.topology,
            tenant=TENANT,
            default_max_attempts=WORKER_CONFIG.retry.max_attempts,
            timeout=5.0,
        ),
        server,
    )
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    assert bound, f"cannot listen on 127.0.0.1:{port}"
    await server.start()
    try:
        yield server, f"127.0.0.1:{bound}"
    finally:
        await server.stop(grace=None)
