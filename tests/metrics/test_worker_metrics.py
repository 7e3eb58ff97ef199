"""A worker's counters, scraped over HTTP from its metrics server after real jobs ran on real NATS: each moved by
exactly what happened, and the worker advertises the page in its presence entry."""

from __future__ import annotations

import httpx
import pytest

from syllabus.config import MetricsConfig
from syllabus.metrics.workers import WorkerMetrics
from syllabus.status import Health, status_server
from syllabus.v1 import admin_service_pb2
from tests.conditions import eventually
from tests.metrics.scrape import Page, scrape
from tests.pipeline.conftest import WORKER_CONFIG, Pipeline, StartWorker

KIND = "summarize_text"


async def test_counters_move_by_what_the_jobs_did(pipeline: Pipeline, start_worker: StartWorker) -> None:
    assert WORKER_CONFIG.retry.max_attempts == 3
    async with status_server(MetricsConfig("127.0.0.1:0"), Health()) as url:
        before = await scrape(url)
        await start_worker(hooks=[WorkerMetrics()])
        texts = ["ok-1", "ok-2", "ok-3", "fail-retryable:1", "fail-permanent", "always-fail"]
        jobs = [await pipeline.submit(text) for text in texts]
        for job in jobs:
            await pipeline.wait_end(job.id)

        async def settled() -> Page | None:
            # The hooks run once an outcome is stored and announced: a moment after the watch saw the end.
            page = await scrape(url)
            ended = page.moved(before, "syllabus_jobs_succeeded_total", kind=KIND)
            ended += page.moved(before, "syllabus_jobs_dead_lettered_total", kind=KIND)
            return page if ended == 6 else None

        pages: list[Page] = []

        async def check() -> bool:
            page = await settled()
            if page is not None:
                pages.append(page)
            return page is not None

        await eventually(check)
        after = pages[-1]
        # Attempts: 1 for each success, 2 for the retried one, 1 for the permanent failure, 3 for always-fail.
        assert after.moved(before, "syllabus_jobs_started_total", kind=KIND) == 9
        assert after.moved(before, "syllabus_jobs_succeeded_total", kind=KIND) == 4
        assert after.moved(before, "syllabus_jobs_failed_total", kind=KIND) == 5
        assert after.moved(before, "syllabus_jobs_retried_total", kind=KIND) == 3
        assert after.moved(before, "syllabus_jobs_dead_lettered_total", kind=KIND) == 2
        assert after.moved(before, "syllabus_jobs_canceled_total", kind=KIND) == 0
        durations = "syllabus_attempt_duration_seconds_count"
        assert after.moved(before, durations, kind=KIND, outcome="succeeded") == 4
        assert after.moved(before, durations, kind=KIND, outcome="retrying") == 3
        assert after.moved(before, durations, kind=KIND, outcome="dead_lettered") == 2
        # One wait per job: its first attempt's.
        assert after.moved(before, "syllabus_queue_wait_seconds_count", kind=KIND) == 6
        assert after.moved(before, "syllabus_queue_wait_seconds_sum", kind=KIND) >= 0
        # No job id or tenant among the labels.
        for name in ("syllabus_jobs_started_total", "syllabus_attempt_duration_seconds_bucket"):
            assert all(set(labels) <= {"kind", "outcome", "le"} for labels in after.labelled(name))


async def test_a_worker_advertises_its_metrics_page(pipeline: Pipeline, start_worker: StartWorker) -> None:
    async with status_server(MetricsConfig("127.0.0.1:0"), Health()) as url:
        await start_worker()
        listed: list[str] = []

        async def advertised() -> bool:
            answer = await pipeline.admin.ListWorkers(admin_service_pb2.ListWorkersRequest(queue="generator"))
            listed[:] = [worker.metrics_url for worker in answer.workers]
            return bool(listed)

        await eventually(advertised)
        assert listed == [url]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        page = await scrape(url)
        # prometheus_client's process collector: the page is this process's.
        assert "process_cpu_seconds_total" in page.names()


async def test_the_status_server_serves_only_its_pages(closed_addr: str) -> None:
    async with status_server(MetricsConfig("127.0.0.1:0"), Health()) as url, httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(url.replace("/metrics", "/other"))).status_code == 404
        assert (await client.get(url)).status_code == 200
    async with status_server(MetricsConfig(""), Health()) as none:
        assert none == ""
    # A port that is taken is one line naming the variable.
    with pytest.raises(OSError, match="SYLLABUS_METRICS_ADDR"):
        async with status_server(MetricsConfig(closed_addr), Health()):
            pass
