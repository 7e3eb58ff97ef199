"""The gRPC services of the gateway, wired to one set of connections; the gateway process and tests share it."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from nats.aio.client import Client

from gateway.admin import AdminService
from gateway.courses import CourseService
from gateway.jobs import JobService
from syllabus.config import GatewayConfig
from syllabus.store.base import Store
from syllabus.topology import Topology
from syllabus.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    course_service_pb2,
    course_service_pb2_grpc,
    job_service_pb2,
    job_service_pb2_grpc,
)

SERVICE_NAMES = (
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    course_service_pb2.DESCRIPTOR.services_by_name["CourseService"].full_name,
)


@dataclass(frozen=True)
class Wiring:
    """What every service needs: the connections and the gateway's settings."""

    nc: Client
    store: Store
    topology: Topology
    config: GatewayConfig
    tenant: str
    default_max_attempts: int


def add_services(server: grpc.aio.Server, wiring: Wiring, job_service: type[JobService] = JobService) -> None:
    """Registers JobService, AdminService and CourseService (tests may pass a JobService subclass)."""
    w = wiring
    job_service_pb2_grpc.add_JobServiceServicer_to_server(
        job_service(
            nc=w.nc,
            store=w.store,
            topology=w.topology,
            config=w.config,
            tenant=w.tenant,
            default_max_attempts=w.default_max_attempts,
        ),
        server,
    )
    admin_service_pb2_grpc.add_AdminServiceServicer_to_server(
        AdminService(
            nc=w.nc,
            store=w.store,
            topology=w.topology,
            tenant=w.tenant,
            default_max_attempts=w.default_max_attempts,
            timeout=w.config.publish_timeout,
        ),
        server,
    )
    course_service_pb2_grpc.add_CourseServiceServicer_to_server(
        CourseService(
            nc=w.nc,
            store=w.store,
            topology=w.topology,
            config=w.config,
            tenant=w.tenant,
            default_max_attempts=w.default_max_attempts,
        ),
        server,
    )


def add_health_and_reflection(server: grpc.aio.Server) -> health.aio.HealthServicer:
    """Standard health (call `serving` once started) and server reflection, so grpcurl and buf curl need no protos."""
    servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    reflection.enable_server_reflection((*SERVICE_NAMES, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    return servicer


async def serving(servicer: health.aio.HealthServicer) -> None:
    for name in ("", *SERVICE_NAMES):
        await servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
