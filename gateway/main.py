"""The gateway process: gRPC services, health and reflection on SYLLABUS_GRPC_ADDR."""

from __future__ import annotations

import logging
from contextlib import AsyncExitStack

from google.protobuf import descriptor_pool
from prometheus_client import REGISTRY

from gateway.auth.gate import Gate
from gateway.auth.listening import refuse_open_listening
from gateway.descriptors import load_descriptor_sets
from gateway.limits import Limits
from gateway.queues import Queues
from gateway.readiness import Readiness
from gateway.rest.metrics import MetricsPage
from gateway.rest.server import RestGateway, loopback_target, services_named
from gateway.services import SERVICE_NAMES, Wiring, add_health_and_reflection, add_services
from gateway.services import server as gateway_server
from gateway.workers import add_worker_service
from syllabus.apikeys import KnownKeys
from syllabus.config import (
    AuthConfig,
    CommonConfig,
    ConfigError,
    GatewayConfig,
    GeneratorConfig,
    LimitsConfig,
    MetricsConfig,
    TracingConfig,
    WorkerConfig,
)
from syllabus.jetstream import disconnect
from syllabus.metrics.exposition import Joined
from syllabus.metrics.queues import QueueGauges, QueueStatsSource
from syllabus.metrics.workers import WorkerMetrics
from syllabus.presence import LiveWorkers
from syllabus.process import open_connections, run_service, serving, stop_signal, unless_stopped
from syllabus.runtime import Runtime
from syllabus.status import Health, Scrape, nats_connected, status_server
from syllabus.store.base import Store
from syllabus.taskregistry import TaskRegistry
from syllabus.tls import GatewayCredentials
from syllabus.topology import Topology
from syllabus.tracing.hook import worker_hooks

log = logging.getLogger(__name__)


async def serve(common: CommonConfig) -> None:
    health, scrape = Health(), Scrape()
    async with status_server(MetricsConfig.from_env(), health, scrape):
        await _serve(common, health, scrape)


async def _serve(common: CommonConfig, health: Health, scrape: Scrape) -> None:
    config = GatewayConfig.from_env()
    auth = AuthConfig.from_env()
    refuse_open_listening(auth, (("SYLLABUS_GRPC_ADDR", config.grpc_addr), ("SYLLABUS_HTTP_ADDR", config.http_addr)))
    # Read now: a certificate that cannot be used stops the gateway before it connects to anything.
    tls = GatewayCredentials(config.tls) if config.tls else None
    # The runtime the gateway runs for task workers connected over WorkerService (SYLLABUS_WORKER_*).
    remote_workers = WorkerConfig.from_env("worker")
    own_types = load_descriptor_sets(config.descriptor_sets)
    for name in own_types:
        log.info("message type %s loaded from SYLLABUS_DESCRIPTOR_SETS", name)
    stop = stop_signal()
    readiness = Readiness()
    nc, store = await unless_stopped(open_connections(common, "syllabus-gateway", readiness.on_nats), stop)
    topology = Topology(common.namespace, common.stream_replicas)
    server = gateway_server()
    tasks, workers = TaskRegistry(nc, topology), LiveWorkers(nc, topology)
    await tasks.start()
    await workers.start()
    # The gateway's composition root: every service below shares these connections and publishers.
    runtime = Runtime.build(nc, store, topology, config.publish_timeout)
    keys = KnownKeys(nc, topology)
    await keys.start()
    closing = AsyncExitStack()
    limits = tenant_limits(common, store, closing)
    gate = Gate(auth, common.tenant, keys, limits)
    wiring = Wiring(runtime, config, common.tenant, config.default_max_attempts, tasks, workers, gate, limits)
    streams = add_services(server, wiring)
    # Attempts of remote task workers are traced and counted here, where they run (gateway.workers).
    hooks = [*worker_hooks(TracingConfig.from_env()), WorkerMetrics()]
    worker_service = add_worker_service(
        server, runtime=runtime, tasks=tasks, config=remote_workers, gate=gate, hooks=hooks
    )
    health_servicer = add_health_and_reflection(server)
    try:
        if tls is None:
            grpc_port = server.add_insecure_port(config.grpc_addr)
        else:
            grpc_port = server.add_secure_port(config.grpc_addr, tls.server())
    except RuntimeError:
        grpc_port = 0
    if grpc_port == 0:
        # Restarting cannot help: a configuration error (exit 2), which `syllabus up` does not retry.
        raise ConfigError(f"SYLLABUS_GRPC_ADDR={config.grpc_addr}: cannot listen there (address in use?)")
    await server.start()
    await readiness.attach(health_servicer)
    health.ready_when(nats_connected(nc))
    log.info(
        "gateway listening on %s (gRPC%s); authentication %s",
        config.grpc_addr,
        _tls_said(config),
        "required" if gate.required else "off: every caller is an admin of tenant " + common.tenant,
    )
    show_queue_gauges(scrape, runtime, tasks, workers)
    # The REST shim calls this server over loopback, so it starts after it and stops before it.
    rest = RestGateway(
        services_named(SERVICE_NAMES),
        loopback_target(config.grpc_addr, grpc_port),
        header_timeout=config.http_header_timeout,
        body_timeout=config.http_body_timeout,
        max_connections=config.http_max_connections,
        messages=[descriptor_pool.Default().FindMessageTypeByName(name) for name in own_types],
        cors_origins=config.http_cors_origins,
        allowed_hosts=config.http_allowed_hosts,
        tls=tls,
        metrics=MetricsPage(gate, scrape),
        trace_url=config.trace_url,
    )
    try:
        try:
            http_addr = await rest.start(config.http_addr)
        except OSError as exc:
            raise ConfigError(f"SYLLABUS_HTTP_ADDR={config.http_addr}: cannot listen there ({exc.strerror})") from exc
        scheme = "https" if tls is not None else "http"
        log.info("gateway listening on %s://%s (REST%s; API page at /docs)", scheme, http_addr, _tls_said(config))
        serving()
        await stop.wait()
    finally:
        health.stopping()
        await rest.stop()
        await health_servicer.enter_graceful_shutdown()
        # Before the server stops: the connected workers' attempts are handed back while NATS is still there.
        await worker_service.close()
        await server.stop(grace=5)
        await streams.close()
        await tasks.stop()
        await workers.stop()
        await keys.stop()
        await closing.aclose()
        await disconnect(nc)
        await store.close()
        log.info("gateway stopped")


def show_queue_gauges(scrape: Scrape, runtime: Runtime, tasks: TaskRegistry, workers: LiveWorkers) -> None:
    """The gateway's metrics page (its HTTP port's and its status server's): the process's and the queues'."""
    gauges = QueueGauges(queue_stats(runtime, tasks, workers))
    scrape.registry, scrape.before = Joined((REGISTRY, gauges)), gauges.refresh


def queue_stats(runtime: Runtime, tasks: TaskRegistry, workers: LiveWorkers) -> QueueStatsSource:
    """What the queue gauges show: GetQueueStats over every tenant."""
    queues = Queues(nc=runtime.nc, store=runtime.store, topology=runtime.topology, tasks=tasks, workers=workers)
    # Only jobs not ended are shown: ended ones are the workers' counters.
    return lambda: queues.stats("", 1.0, every_tenant=True)


def _tls_said(config: GatewayConfig) -> str:
    if not config.tls:
        return ""
    return " over TLS, client certificates required" if config.tls.ca else " over TLS"


def tenant_limits(common: CommonConfig, store: Store, closing: AsyncExitStack) -> Limits:
    """The limits SYLLABUS_RATE_LIMIT, SYLLABUS_MAX_WAITING_JOBS and SYLLABUS_SPEND_BUDGET_USD ask for, with a Redis
    connection (closed by `closing`) when they need one."""
    config = LimitsConfig.from_env()
    redis = None
    if config.rate > 0 or config.budget_usd > 0:
        if not common.redis_url:
            raise ConfigError("SYLLABUS_RATE_LIMIT and SYLLABUS_SPEND_BUDGET_USD need SYLLABUS_REDIS_URL")
        from syllabus.redisclient import redis_client  # only for limits: a gateway without them needs no client

        redis = redis_client(common, socket_timeout=config.redis_timeout, socket_connect_timeout=config.redis_timeout)
        closing.push_async_callback(redis.aclose)
    # Course estimates name and price the generator's model: the gateway reads the same settings.
    return Limits(config, redis=redis, namespace=common.namespace, store=store, generator=GeneratorConfig.from_env())


def main() -> int:
    return run_service("gateway", serve)
