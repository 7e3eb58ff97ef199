"""What every service process does around its work: config, logging, connections, and stopping on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any, TypeVar

import uvloop
from nats.aio.client import Client

from syllabus import outages
from syllabus.config import CommonConfig, ConfigError, LimitsConfig, MetricsConfig, TracingConfig, WorkerConfig
from syllabus.hooks import WorkerHook
from syllabus.jetstream import connect, disconnect, ensure_topology, nats_options
from syllabus.logs import setup_logging
from syllabus.metrics.workers import WorkerMetrics
from syllabus.runtime import Runtime
from syllabus.status import Health, nats_connected, status_server
from syllabus.store.base import Store
from syllabus.store.factory import open_store
from syllabus.tenanthooks import tenant_hooks
from syllabus.topology import Topology, WorkQueue, check_handlers
from syllabus.tracing.hook import worker_hooks
from syllabus.tracing.setup import setup_tracing
from syllabus.worker import Handler, Worker

T = TypeVar("T")
log = logging.getLogger(__name__)


def require_nats(common: CommonConfig) -> str:
    if not common.nats_url:
        raise ConfigError(
            "SYLLABUS_NATS_URL is not set: a service started on its own needs a NATS server (or use `syllabus up`)"
        )
    return common.nats_url


class Stopped(Exception):
    """SIGTERM or SIGINT arrived before the service was up: it exits without having started."""


async def unless_stopped(work: Awaitable[T], stop: asyncio.Event) -> T:
    """`work`'s result, or Stopped if the stop signal comes first (e.g. while NATS is still unreachable)."""
    task = asyncio.ensure_future(work)
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if task.done():
        return task.result()
    task.cancel()
    with contextlib.suppress(BaseException):
        await task
    raise Stopped


async def open_connections(
    common: CommonConfig, name: str, on_nats: Callable[[bool], Awaitable[None]] | None = None
) -> tuple[Client, Store]:
    """NATS (with the topology declared) and the store. `on_nats` hears the connection being lost and back."""
    nc = await connect(require_nats(common), name, on_nats, options=nats_options(common))
    # A NATS lost right after connecting delays the start; it does not end the process (a stop signal does).
    await outages.until_reachable(
        lambda: ensure_topology(nc, Topology(common.namespace, common.stream_replicas)),
        outages.OutageLog(log, announced_elsewhere={outages.NATS}),
        "the service starts once it answers",
        give_up=asyncio.Event(),
    )
    store = open_store(common)
    # So does a store that cannot be opened yet (its database file locked or its disk full, its server away).
    await outages.until_reachable(
        store.open, outages.OutageLog(log), "the service starts once it answers", give_up=asyncio.Event()
    )
    return nc, store


def serving() -> None:
    """A service is set up: what it holds now (modules, descriptors, connections) lives as long as the process,
    so the collector stops looking at it. Full collections then walk only what came after, a fraction."""
    gc.freeze()


def stop_signal() -> asyncio.Event:
    """Set on SIGTERM or SIGINT: the process then finishes what it is doing and exits."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


def run_service(name: str, serve: Callable[[CommonConfig], Coroutine[Any, Any, None]]) -> int:
    common = CommonConfig.from_env()
    setup_logging(common, name)
    setup_tracing(TracingConfig.from_env(), name)
    # Collections far apart: a service allocates (and frees) a few objects per message, and the cyclic collector,
    # run every 700 allocations by default, paused it for tens of milliseconds at the tail of its latency.
    gc.set_threshold(20_000, 20, 20)
    try:
        # uvloop's event loop costs a fraction of asyncio's per callback; every service is callback-bound.
        uvloop.run(serve(common))
    except Stopped:
        return 0
    except OSError as exc:
        print(f"syllabus {name}: {exc}", file=sys.stderr)
        return 1
    return 0


# Builds a service's handlers from the process's runtime (handlers that fan out or store results need it).
HandlerFactory = Callable[[Runtime], Mapping[str, Handler]]


async def serve_worker(
    common: CommonConfig,
    service: str,
    handlers: HandlerFactory,
    *,
    config: WorkerConfig | None = None,
    queue: WorkQueue | None = None,
    before_start: Callable[[Client], Awaitable[None]] | None = None,
    every_kind: bool = True,
    hooks: Sequence[WorkerHook] = (),
) -> None:
    """Run a worker service (or a task pool: its queue and a step before it takes work) until SIGTERM, then drain
    (see Worker.stop). A service must handle every kind its proto option gives it, and no other (`every_kind`:
    test workers run a few). `hooks` see every attempt (syllabus.hooks), and so does the metrics hook."""
    stop = stop_signal()
    health = Health()
    # Closed in reverse: the worker's hooks, NATS, the store, and last the status server.
    async with AsyncExitStack() as closing:
        await closing.enter_async_context(status_server(MetricsConfig.from_env(), health))
        nc, store = await unless_stopped(open_connections(common, f"syllabus-{service.replace(' ', '-')}"), stop)
        closing.push_async_callback(store.close)
        closing.push_async_callback(disconnect, nc)
        if before_start is not None:
            await before_start(nc)
        # The process's composition root: everything below shares these connections and publishers.
        runtime = Runtime.build(nc, store, Topology(common.namespace, common.stream_replicas))
        handler_map = handlers(runtime)
        if queue is None and every_kind:
            check_handlers(service, handler_map)
        config = config or WorkerConfig.from_env(service)
        limited = await tenant_hooks(common, config, LimitsConfig.from_env(), closing)
        worker = Worker(
            service=service,
            handlers=handler_map,
            runtime=runtime,
            config=config,
            queue=queue,
            hooks=[*hooks, *limited, *worker_hooks(TracingConfig.from_env()), WorkerMetrics()],
        )
        health.ready_when(
            nats_connected(nc),
            lambda: None if worker.consuming else "worker starting its consumers",
        )
        run = asyncio.create_task(worker.run())
        serving()
        stopped = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({run, stopped}, return_when=asyncio.FIRST_COMPLETED)
            health.stopping()
            worker.stop()
            await run
        finally:
            stopped.cancel()
