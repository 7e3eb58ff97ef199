"""The scheduler process: relays delayed jobs when they fall due."""

from __future__ import annotations

from scheduler.relay import DueRelay
from syllabus.config import CommonConfig
from syllabus.jetstream import disconnect
from syllabus.process import open_connections, run_service, serving, stop_signal, unless_stopped
from syllabus.runtime import Runtime
from syllabus.topology import Topology


async def serve(common: CommonConfig) -> None:
    stop = stop_signal()
    nc, store = await unless_stopped(open_connections(common, "syllabus-scheduler"), stop)
    try:
        relay = DueRelay(Runtime.build(nc, store, Topology(common.namespace)))
        serving()
        await relay.run(stop)
    finally:
        await disconnect(nc)
        await store.close()


def main() -> int:
    return run_service("scheduler", serve)
