"""`syllabus up` gives every service a metrics page and lists them in its banner: each URL answers."""

from __future__ import annotations

import httpx
import pytest

from tests.conditions import eventually
from tests.e2e.conftest import Stack
from tests.metrics.scrape import Page

pytestmark = pytest.mark.e2e


def banner_urls(stack: Stack) -> dict[str, str]:
    for line in stack.log.read_text(errors="replace").splitlines():
        if line.strip().startswith("metrics:"):
            pairs = [item.split() for item in line.split(":", 1)[1].split(",")]
            return {name: url for name, url in pairs}
    return {}


async def test_the_banner_lists_a_metrics_url_per_service_and_each_answers(stack: Stack) -> None:
    urls: dict[str, str] = {}

    async def printed() -> bool:
        urls.update(banner_urls(stack))
        return bool(urls)

    await eventually(printed, timeout=60)
    assert set(urls) == {"gateway", "generator", "renderer", "scheduler"}, stack.log_tail()
    pages: dict[str, Page] = {}
    async with httpx.AsyncClient(timeout=10) as client:

        async def answered() -> bool:
            # A worker's page comes up with the worker, which may still be connecting.
            for name, url in urls.items():
                if name not in pages:
                    try:
                        response = await client.get(url)
                    except httpx.TransportError:
                        continue
                    if response.status_code == 200:
                        pages[name] = Page(response.text)
            return len(pages) == len(urls)

        await eventually(answered, timeout=60)
    assert "syllabus_queue_jobs" in pages["gateway"].names()
    assert "syllabus_scheduler_leader" in pages["scheduler"].names()
    for name in ("gateway", "generator", "renderer", "scheduler"):
        assert "process_cpu_seconds_total" in pages[name].names(), name
    # The workers advertise their pages where `syllabus workers` reads them.
    listed = await stack.syllabus("workers", "--json")
    assert listed.code == 0, listed.err
    assert urls["generator"] in listed.out and urls["renderer"] in listed.out
