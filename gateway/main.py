"""The gateway process: gRPC services, health and reflection on SYLLABUS_GRPC_ADDR."""

from __future__ import annotations

import logging

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from gateway.admin import AdminService
from gateway.courses import CourseService
from gateway.jobs import JobService
from gateway.rest.server import RestGateway, loopback_target, services_named
from syllabus.config import CommonConfig, GatewayConfig, WorkerConfig
from syllabus.process import open_connections, run_service, stop_signal
from syllabus.topology import Topology
from syllabus.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    course_service_pb2,
    course_service_pb2_grpc,
    job_service_pb2,
    job_service_pb2_grpc,
)

log = logging.getLogger(__name__)
SERVICE_NAMES = (
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    course_service_pb2.DESCRIPTOR.services_by_name["CourseService"].full_name,
)


async def serve(common: CommonConfig) -> None:
    config = GatewayConfig.from_env()
    retry = WorkerConfig.from_env("generator").retry
    stop = stop_signal()
    nc, store = await open_connections(common, "syllabus-gateway")
    topology = Topology(common.namespace)
    server = grpc.aio.server()
    job_service_pb2_grpc.add_JobServiceServicer_to_server(
        JobService(
            nc=nc,
            store=store,
            topology=topology,
            config=config,
            tenant=common.tenant,
            default_max_attempts=retry.max_attempts,
        ),
        server,
    )
    admin_service_pb2_grpc.add_AdminServiceServicer_to_server(
        AdminService(
            nc=nc,
            store=store,
            topology=topology,
            tenant=common.tenant,
            default_max_attempts=retry.max_attempts,
            timeout=config.publish_timeout,
        ),
        server,
    )
    course_service_pb2_grpc.add_CourseServiceServicer_to_server(
        CourseService(
            nc=nc,
            store=store,
            topology=topology,
            config=config,
            tenant=common.tenant,
            default_max_attempts=retry.max_attempts,
        ),
        server,
    )
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    grpc_port = server.add_insecure_port(config.grpc_addr)
    if grpc_port == 0:
        raise OSError(f"cannot listen on SYLLABUS_GRPC_ADDR={config.grpc_addr}")
    await server.start()
    for name in ("", *SERVICE_NAMES):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("gateway listening on %s (gRPC)", config.grpc_addr)
    # The REST shim calls this server over loopback, so it starts after it and stops before it.
    rest = RestGateway(services_named(SERVICE_NAMES), loopback_target(config.grpc_addr, grpc_port))
    try:
        log.info("gateway listening on http://%s (REST; API page at /docs)", await rest.start(config.http_addr))
        await stop.wait()
    finally:
        await rest.stop()
        await health_servicer.enter_graceful_shutdown()
        await server.stop(grace=5)
        await nc.drain()
        await store.close()
        log.info("gateway stopped")


def main() -> int:
    return run_service("gateway", serve)
