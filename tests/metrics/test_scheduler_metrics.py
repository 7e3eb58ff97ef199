"""The scheduler's metrics: a delayed job relayed when due, and whether this scheduler leads the sweeps."""

from __future__ import annotations

import asyncio

from prometheus_client import REGISTRY, generate_latest

from scheduler.leadership import Leadership
from syllabus.v1 import job_pb2
from tests.conditions import eventually
from tests.metrics.scrape import Page
from tests.pipeline import conftest as pipeline_fixtures
from tests.pipeline.conftest import Pipeline
from tests.pipeline.test_outages import in_seconds

relay = pipeline_fixtures.relay
RELAYED = "syllabus_scheduler_relayed_total"


def page() -> Page:
    return Page(generate_latest(REGISTRY).decode())


async def test_a_delayed_job_relayed_when_due_is_counted(pipeline: Pipeline, relay: None) -> None:
    before = page()
    job = await pipeline.submit("later", run_at=in_seconds(1))

    async def relayed() -> bool:
        stored = await pipeline.store.get_job(job.id)
        return (
            stored is not None
            and stored.state == job_pb2.JOB_STATE_QUEUED
            and (page().moved(before, RELAYED, relay="delayed_jobs") == 1)
        )

    await eventually(relayed)
    assert page().moved(before, RELAYED, relay="schedule_firings") == 0


async def test_the_leader_gauge_is_1_while_leading() -> None:
    stop = asyncio.Event()
    seen: list[float] = []

    async def duties() -> None:
        seen.append(page().value("syllabus_scheduler_leader"))
        stop.set()
        await asyncio.Event().wait()  # duties run until the leadership ends them

    # Without Redis a scheduler leads alone.
    await Leadership(None, "test", lease=15.0).run(duties, stop)
    assert seen == [1.0]
    assert page().value("syllabus_scheduler_leader") == 0
