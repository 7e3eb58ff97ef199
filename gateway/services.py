"""The gRPC services of the gateway, wired to one set of connections; the gateway process and tests share it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc

from gateway.admin import AdminService
from gateway.auth.gate import Gate
from gateway.courses import CourseService
from gateway.handlers import Registrar
from gateway.jobs import JobService
from gateway.limits import Limits
from gateway.schedules import ScheduleService
from gateway.watch import EventStreams
from syllabus.config import AuthConfig, GatewayConfig, LimitsConfig
from syllabus.presence import LiveWorkers
from syllabus.runtime import Runtime
from syllabus.taskregistry import TaskRegistry
from syllabus.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    course_service_pb2,
    course_service_pb2_grpc,
    job_service_pb2,
    job_service_pb2_grpc,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
    worker_service_pb2,
)

# Not among SERVICE_NAMES: a bidirectional stream has no REST form.
WORKER_SERVICE_NAME = worker_service_pb2.DESCRIPTOR.services_by_name["WorkerService"].full_name
SERVICE_NAMES = (
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name,
    course_service_pb2.DESCRIPTOR.services_by_name["CourseService"].full_name,
    schedule_service_pb2.DESCRIPTOR.services_by_name["ScheduleService"].full_name,
)

# grpc's own default, named so the REST shim can refuse a larger message before sending it.
MAX_MESSAGE = 4 << 20
# Metadata the server takes (grpc's defaults are 8 KiB, and between 8 and 16 KiB it refuses calls at random);
# the REST shim forwards at most half of this from HTTP headers.
MAX_METADATA = 64 << 10


def server(*interceptors: grpc.aio.ServerInterceptor) -> grpc.aio.Server:
    """The gateway's gRPC server, with the limits above."""
    return grpc.aio.server(
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_metadata_size", MAX_METADATA),
            ("grpc.absolute_max_metadata_size", MAX_METADATA),
        ],
    )


@dataclass(frozen=True)
class Wiring:
    """What every service needs: the process's runtime (its connections and publishers) and the gateway's settings."""

    runtime: Runtime
    config: GatewayConfig
    # The tenant of every caller while authentication is off.
    tenant: str
    default_max_attempts: int
    # Which pool serves which task; one that is not started reads every declaration from NATS when asked.
    tasks: TaskRegistry | None = None
    # Which workers are alive; likewise read from NATS when asked unless started.
    workers: LiveWorkers | None = None
    # Who may call what; None: authentication off.
    gate: Gate | None = None
    # What each tenant may use; None: no limits.
    limits: Limits | None = None

    def guard(self) -> Gate:
        return self.gate or Gate(AuthConfig(mode="off"), self.tenant)

    def bounds(self) -> Limits:
        return self.limits or Limits(LimitsConfig(), redis=None, namespace="", store=self.runtime.store)


def add_services(server: grpc.aio.Server, wiring: Wiring, job_service: type[JobService] = JobService) -> EventStreams:
    """Registers JobService, AdminService, CourseService and ScheduleService (tests may pass a JobService
    subclass), each method handler wrapped by gateway.handlers (undecodable or invalid requests refused, failures
    mapped to a Status). Returns the gateway's one event consumer, which its owner closes after the server stops
    and before the NATS connection does."""
    w = wiring
    nc, topology = w.runtime.nc, w.runtime.topology
    streams = EventStreams(nc, topology)
    registrar = Registrar(server, w.guard())
    limits = w.bounds()
    tasks = w.tasks or TaskRegistry(nc, topology)
    workers = w.workers or LiveWorkers(nc, topology)
    job_service_pb2_grpc.add_JobServiceServicer_to_server(
        job_service(
            limits=limits,
            runtime=w.runtime,
            config=w.config,
            default_max_attempts=w.default_max_attempts,
            streams=streams,
            tasks=tasks,
            workers=workers,
        ),
        registrar,
    )
    admin_service_pb2_grpc.add_AdminServiceServicer_to_server(
        AdminService(
            runtime=w.runtime,
            default_max_attempts=w.default_max_attempts,
            tasks=tasks,
            workers=workers,
            streams=streams,
        ),
        registrar,
    )
    course_service_pb2_grpc.add_CourseServiceServicer_to_server(
        CourseService(
            limits=limits,
            runtime=w.runtime,
            config=w.config,
            default_max_attempts=w.default_max_attempts,
        ),
        registrar,
    )
    schedule_service_pb2_grpc.add_ScheduleServiceServicer_to_server(
        ScheduleService(runtime=w.runtime, default_max_attempts=w.default_max_attempts, tasks=tasks),
        registrar,
    )
    return streams


class HealthServicer(health.aio.HealthServicer):
    """grpcio-health-checking's asyncio servicer, with the List method it leaves out (its base class answers
    UNKNOWN and logs a traceback for every call)."""

    async def List(self, request: health_pb2.HealthListRequest, context: Any) -> health_pb2.HealthListResponse:
        statuses = {name: health_pb2.HealthCheckResponse(status=status) for name, status in self._server_status.items()}
        return health_pb2.HealthListResponse(statuses=statuses)


def add_health_and_reflection(server: grpc.aio.Server) -> health.aio.HealthServicer:
    """Standard health (gateway.readiness sets its status) and server reflection, so grpcurl and buf curl need no
    protos."""
    servicer = HealthServicer()
    registrar = Registrar(server)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, registrar)
    # The asyncio servicer named outright: enable_server_reflection picks it only for a grpc.aio.Server itself.
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer(
            (*SERVICE_NAMES, WORKER_SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME)
        ),
        registrar,
    )
    return servicer
