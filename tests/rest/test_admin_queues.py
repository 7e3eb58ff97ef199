"""The workers, queue stats and queue pause over REST, and ListJobs by end time with its total; bad input is a
400 google.rpc.Status naming the field."""

from __future__ import annotations

import pytest

from tests.conditions import eventually
from tests.pipeline.conftest import StartWorker
from tests.rest import rawhttp
from tests.rest.conftest import LogProblems, Rest
from tests.rest.test_bad_input import violation

SPEC = {"summarizeText": {"text": "ok"}}


async def test_pause_stats_workers_and_resume(rest: Rest, start_worker: StartWorker, gateway_log: LogProblems) -> None:
    paused = await rest.http.post("/v1/admin/queues/generator:pause", json={})
    assert paused.status_code == 200 and paused.json()["queue"]["paused"] is True
    await start_worker()

    async def listed() -> bool:
        return len((await rest.http.get("/v1/admin/workers?queue=generator")).json().get("workers", [])) == 1

    await eventually(listed)
    [worker] = (await rest.http.get("/v1/admin/workers")).json()["workers"]
    assert worker["queue"] == "generator" and worker["kinds"] == ["summarize_text"] and worker["version"]

    job = (await rest.http.post("/v1/jobs", json={"spec": SPEC})).json()["job"]
    shown = (await rest.http.get("/v1/admin/queues?queue=generator&window=60s")).json()
    assert shown["window"] == "60s"
    [queue] = shown["queues"]
    assert queue["paused"] is True and queue["workers"] == 1
    assert [(c["kind"], c["waiting"]) for c in queue["counts"]] == [("summarize_text", "1")]

    resumed = await rest.http.post("/v1/admin/queues/generator:resume", json={})
    assert resumed.status_code == 200 and resumed.json()["queue"]["paused"] is False
    await rest.pipeline.wait_end(job["id"])
    ended = (await rest.http.get("/v1/jobs?orderBy=JOB_ORDER_END_TIME_DESC")).json()
    assert [j["id"] for j in ended["jobs"]] == [job["id"]] and ended["totalSize"] == "1"
    assert gateway_log() == []


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("POST", "/v1/admin/queues/nope:pause", "queue"),
        ("POST", "/v1/admin/queues/pool-gone:resume", "queue"),
        ("GET", "/v1/admin/queues?queue=nope", "queue"),
        ("GET", "/v1/admin/queues?window=0.5s", "window"),
        ("GET", "/v1/admin/queues?window=forever", "window"),
        ("GET", f"/v1/admin/workers?queue={'q' * 65}", "queue"),
        ("GET", "/v1/jobs?orderBy=JOB_ORDER_SIDEWAYS", "order_by"),
        ("GET", "/v1/jobs?orderBy=JOB_ORDER_END_TIME_DESC&pageToken=bm9wZQ", "page_token"),
    ],
)
async def test_bad_input_is_400_naming_the_field(
    rest: Rest, gateway_log: LogProblems, method: str, path: str, field: str
) -> None:
    got = await rest.http.request(method, path, json={} if method == "POST" else None)
    status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    assert got.status_code == 400 and violation(status).replace("orderBy", "order_by") == field, status
    assert gateway_log() == []
