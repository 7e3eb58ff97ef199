"""The queue gauges are computed at scrape time, once for all scrapes within their max age."""

from __future__ import annotations

import asyncio

from prometheus_client import CollectorRegistry, generate_latest

from syllabus.metrics.queues import QueueGauges
from syllabus.v1 import admin_service_pb2 as pb
from tests.metrics.scrape import Page


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


async def test_scrapes_within_the_max_age_share_one_computation() -> None:
    computed: list[int] = []
    entered, release = asyncio.Event(), asyncio.Event()

    async def stats() -> list[pb.QueueStats]:
        computed.append(1)
        entered.set()
        await release.wait()
        return [pb.QueueStats(queue="generator", workers=len(computed))]

    clock = Clock()
    gauges = QueueGauges(stats, max_age=2.0, clock=clock)
    scrapes = [asyncio.create_task(gauges.refresh()) for _ in range(5)]
    # The first scrape computes; the others, scheduled before the test resumes, wait for its snapshot.
    await entered.wait()
    release.set()
    await asyncio.gather(*scrapes)
    assert len(computed) == 1
    clock.now += 1.9
    await gauges.refresh()
    assert len(computed) == 1
    clock.now += 0.2
    await gauges.refresh()
    assert len(computed) == 2
    registry = CollectorRegistry()
    registry.register(gauges)
    assert Page(generate_latest(registry).decode()).value("syllabus_workers", queue="generator") == 2


async def test_gauges_are_left_out_while_the_stats_cannot_be_computed() -> None:
    async def failing() -> list[pb.QueueStats]:
        raise RuntimeError("the store is away")

    gauges = QueueGauges(failing)
    await gauges.refresh()
    registry = CollectorRegistry()
    registry.register(gauges)
    assert not Page(generate_latest(registry).decode()).samples
