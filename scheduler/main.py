"""The scheduler process: relays delayed jobs when they fall due, and recurring schedules' firings into jobs;
dead-letters jobs JetStream gave up on; and, on one scheduler at a time, sweeps orphaned and old jobs."""

from __future__ import annotations

import asyncio

from scheduler.advisories import MaxDeliveries
from scheduler.recurring import FiringRelay
from scheduler.relay import DueRelay
from scheduler.sweeps import run_elected
from syllabus.config import CommonConfig, MetricsConfig
from syllabus.jetstream import disconnect
from syllabus.process import open_connections, run_service, serving, stop_signal, unless_stopped
from syllabus.runtime import Runtime
from syllabus.status import Health, nats_connected, status_server
from syllabus.topology import Topology


async def serve(common: CommonConfig) -> None:
    stop = stop_signal()
    health = Health()
    async with status_server(MetricsConfig.from_env(), health):
        nc, store = await unless_stopped(open_connections(common, "syllabus-scheduler"), stop)
        try:
            runtime = Runtime.build(nc, store, Topology(common.namespace, common.stream_replicas))
            health.ready_when(nats_connected(nc))
            serving()
            await asyncio.gather(
                DueRelay(runtime).run(stop),
                FiringRelay(runtime).run(stop),
                MaxDeliveries(runtime).run(stop),
                run_elected(runtime, common, stop),
                _stopping(stop, health),
            )
        finally:
            await disconnect(nc)
            await store.close()


async def _stopping(stop: asyncio.Event, health: Health) -> None:
    await stop.wait()
    health.stopping()


def main() -> int:
    return run_service("scheduler", serve)
