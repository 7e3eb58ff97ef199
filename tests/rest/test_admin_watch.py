"""The dashboard's REST calls: the workers and queue stats followed as Server-Sent Events, the activity figures,
and ListJobs by creation time; bad input is a 400 naming the field."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.pipeline.conftest import StartWorker
from tests.rest import rawhttp
from tests.rest.conftest import LogProblems, Rest
from tests.rest.test_bad_input import violation

SPEC = {"summarizeText": {"text": "ok"}}
SSE = {"Accept": "text/event-stream"}
Event = dict[str, Any]


@asynccontextmanager
async def sse(rest: Rest, path: str) -> AsyncIterator[Callable[[Callable[[Event], bool]], Any]]:
    """Opens the stream; yields `until(check)`, which reads events until one's data passes `check`."""
    async with rest.http.stream("GET", path, headers=SSE) as response:
        assert response.status_code == 200 and response.headers["content-type"] == "text/event-stream"
        lines = response.aiter_lines()

        async def until(check: Callable[[Event], bool]) -> Event:
            async with asyncio.timeout(30):
                async for line in lines:
                    if line.startswith("data: "):
                        data: Event = json.loads(line.removeprefix("data: "))
                        if check(data):
                            return data
            raise AssertionError("the stream ended")

        yield until


async def test_workers_watch_streams_the_list_as_workers_come_and_go(
    rest: Rest, start_worker: StartWorker, gateway_log: LogProblems
) -> None:
    async with sse(rest, "/v1/admin/workers:watch?queue=generator") as until:
        await until(lambda data: data.get("workers", []) == [])
        worker = await start_worker()
        shown = await until(lambda data: len(data.get("workers", [])) == 1)
        [listed] = shown["workers"]
        assert listed["queue"] == "generator" and listed["kinds"] == ["summarize_text"] and listed["workerId"]
        await worker.stop()
        await until(lambda data: data.get("workers", []) == [])
    assert gateway_log() == []


def waiting(data: Event) -> int:
    return sum(int(counts.get("waiting", 0)) for queue in data["queues"] for counts in queue.get("counts", []))


async def test_queues_watch_streams_stats_as_jobs_arrive_and_the_queue_pauses(
    rest: Rest, gateway_log: LogProblems
) -> None:
    async with sse(rest, "/v1/admin/queues:watch?queue=generator&window=120s") as until:
        first = await until(lambda data: True)
        assert first["window"] == "120s" and [q["queue"] for q in first["queues"]] == ["generator"]
        assert waiting(first) == 0
        await rest.http.post("/v1/jobs", json={"spec": SPEC})
        queued = await until(lambda data: waiting(data) == 1)
        assert "oldestWaitingAge" in queued["queues"][0]
        await rest.http.post("/v1/admin/queues/generator:pause", json={})
        await until(lambda data: data["queues"][0].get("paused") is True)
    assert gateway_log() == []


async def test_activity_answers_buckets_and_durations(rest: Rest, start_worker: StartWorker) -> None:
    await start_worker()
    job = (await rest.http.post("/v1/jobs", json={"spec": SPEC})).json()["job"]
    await rest.pipeline.wait_end(job["id"])
    got = await rest.http.get("/v1/admin/activity?window=600s&bucket=30s&kind=summarize_text")
    assert got.status_code == 200
    body = got.json()
    assert body["bucket"] == "30s" and len(body["buckets"]) == 20 and {"startTime", "endTime"} <= body.keys()
    assert sum(int(b.get("created", 0)) for b in body["buckets"]) == 1
    assert sum(int(b.get("succeeded", 0)) for b in body["buckets"]) == 1
    # The last bucket, of runs longer than every bound, has no bound.
    assert body["durations"][0]["leSeconds"] == 0.01 and "leSeconds" not in body["durations"][-1]
    assert sum(int(d.get("count", 0)) for d in body["durations"]) == 1 and "p50" in body


async def test_list_jobs_by_creation_time(rest: Rest) -> None:
    job = (await rest.http.post("/v1/jobs", json={"spec": SPEC})).json()["job"]
    created = datetime.fromisoformat(job["createTime"])
    before = (created - timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    after = (created + timedelta(seconds=1)).isoformat().replace("+00:00", "Z")
    found = (await rest.http.get("/v1/jobs", params={"createdAfter": before, "createdBefore": after})).json()
    assert [j["id"] for j in found["jobs"]] == [job["id"]] and found["totalSize"] == "1"
    later = (await rest.http.get("/v1/jobs", params={"createdAfter": after})).json()
    assert later.get("jobs", []) == [] and later["totalSize"] == "0"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/admin/queues:watch?queue=nope", "queue"),
        ("/v1/admin/queues:watch?window=0.5s", "window"),
        ("/v1/admin/workers:watch?queue=" + "q" * 65, "queue"),
        ("/v1/admin/activity?window=90000s", "window"),
        ("/v1/admin/activity?window=86400s&bucket=10s", "bucket"),
        ("/v1/admin/activity?bucket=soon", "bucket"),
        ("/v1/jobs?createdAfter=yesterday", "created_after"),
        ("/v1/jobs?createdAfter=2030-01-02T00:00:00Z&createdBefore=2030-01-01T00:00:00Z", "created_before"),
    ],
)
async def test_bad_input_is_400_naming_the_field(rest: Rest, gateway_log: LogProblems, path: str, field: str) -> None:
    for headers in ({}, SSE):
        got = await rest.http.get(path, headers=headers)
        status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
        assert got.status_code == 400 and violation(status).replace("createdAfter", "created_after") == field, status
    assert gateway_log() == []
