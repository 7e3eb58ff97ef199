"""The status server over real HTTP: /healthz while the loop answers, /readyz following the process's phase and
checks, /metrics brought up to date first, and nothing else served."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import httpx
import pytest

from syllabus.config import MetricsConfig
from syllabus.status import Health, Scrape, status_server


async def test_readiness_follows_the_phase_and_the_checks() -> None:
    health = Health()
    reasons: list[str | None] = [None, None]
    async with status_server(MetricsConfig("127.0.0.1:0"), health) as url, httpx.AsyncClient() as client:
        base = url.removesuffix("/metrics")

        async def ready() -> tuple[int, str]:
            answer = await client.get(f"{base}/readyz")
            return answer.status_code, answer.text

        assert await ready() == (503, "starting: connecting to NATS and the store\n")
        assert (await client.get(f"{base}/healthz")).text == "ok\n"
        health.ready_when(lambda: reasons[0], lambda: reasons[1])
        assert await ready() == (200, "ready\n")
        reasons[1] = "worker starting its consumers"
        assert await ready() == (503, "worker starting its consumers\n")
        reasons[0] = "NATS connection lost: reconnecting"
        assert await ready() == (503, "NATS connection lost: reconnecting\n")
        reasons[:] = [None, None]
        assert await ready() == (200, "ready\n")
        health.stopping()
        assert await ready() == (503, "stopping: draining\n")
        # Still alive while it drains.
        assert (await client.get(f"{base}/healthz")).status_code == 200


async def test_only_reads_of_its_three_pages_are_served() -> None:
    async with status_server(MetricsConfig("127.0.0.1:0"), Health()) as url, httpx.AsyncClient() as client:
        base = url.removesuffix("/metrics")
        assert (await client.get(f"{base}/other")).status_code == 404
        refused = await client.post(f"{base}/readyz")
        assert (refused.status_code, refused.headers["Allow"]) == (405, "GET, HEAD")
        assert (await client.head(f"{base}/healthz")).status_code == 200


async def test_the_metrics_page_is_brought_up_to_date_before_it_is_drawn() -> None:
    scrapes: list[int] = []

    async def before() -> None:
        scrapes.append(len(scrapes))

    scrape = Scrape(before=before)
    async with status_server(MetricsConfig("127.0.0.1:0"), Health(), scrape) as url, httpx.AsyncClient() as client:
        for _ in range(2):
            page = await client.get(url)
            assert "process_cpu_seconds_total" in page.text
    assert scrapes == [0, 1]


@pytest.mark.parametrize(
    ("addr", "said"),
    [
        ("", "SYLLABUS_METRICS_ADDR is not set"),
        ("nonsense", "SYLLABUS_METRICS_ADDR"),
    ],
)
async def test_probe_without_a_status_server_to_ask_is_unhealthy_in_one_line(addr: str, said: str) -> None:
    # Exit 1, not the 2 of other configuration errors: Docker reserves a health check's exit code 2.
    env = {key: value for key, value in os.environ.items() if not key.startswith("SYLLABUS_")}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syllabus",
        "probe",
        env=env | {"SYLLABUS_METRICS_ADDR": addr},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = await process.communicate()
    lines = err.decode().splitlines()
    assert (process.returncode, out, len(lines)) == (1, b"", 1), err
    assert said in lines[0]
