"""Server-streaming RPCs over HTTP: newline-delimited JSON as grpc-gateway writes it, and Server-Sent Events
with the event sequence as id and Last-Event-ID resuming after it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from syllabus.v1 import job_pb2
from tests.pipeline import handlers
from tests.pipeline.conftest import StartWorker
from tests.rest.conftest import Rest, ShelfRest
from tests.rest.test_jobs_api import submit, watch_to_end

LIFECYCLE = ["JOB_EVENT_TYPE_QUEUED", "JOB_EVENT_TYPE_STARTED", "JOB_EVENT_TYPE_SUCCEEDED"]


def sse_events(text: str) -> list[dict[str, Any]]:
    """Each event of an SSE body as {"id", "event", "data"} (data decoded from JSON)."""
    events = []
    for block in text.split("\n\n"):
        if not block.strip():
            continue
        fields = dict(line.split(": ", 1) for line in block.split("\n"))
        events.append({"id": fields.get("id"), "event": fields.get("event"), "data": json.loads(fields["data"])})
    return events


async def test_ndjson_lines_are_flushed_as_the_job_moves(rest: Rest, start_worker: StartWorker) -> None:
    await start_worker()
    job = await submit(rest, text="block")
    async with rest.http.stream("GET", f"/v1/jobs/{job['id']}:watch") as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        lines = response.aiter_lines()
        queued = json.loads(await anext(lines))
        started = json.loads(await anext(lines))
        # These two came while the job still runs: the stream is written as it happens, not at its end.
        stored = await rest.pipeline.store.get_job(job["id"])
        assert stored is not None and stored.state == job_pb2.JOB_STATE_RUNNING
        handlers.release.set()
        rest_of_it = [json.loads(line) async for line in lines if line]
    events = [line["result"]["event"] for line in (queued, started, *rest_of_it)]
    assert [e["type"] for e in events] == [
        "JOB_EVENT_TYPE_QUEUED",
        "JOB_EVENT_TYPE_STARTED",
        "JOB_EVENT_TYPE_SUCCEEDED",
    ]
    assert all(set(line) == {"result"} for line in (queued, started, *rest_of_it))
    assert events[-1]["terminal"] is True
    sequences = [int(e["sequence"]) for e in events]
    assert sequences == sorted(sequences)


async def test_sse_ids_are_sequences_and_last_event_id_resumes(rest: Rest, start_worker: StartWorker) -> None:
    await start_worker()
    job = await submit(rest, text="progress")
    await watch_to_end(rest, job["id"])
    sse = {"Accept": "text/event-stream"}
    got = await rest.http.get(f"/v1/jobs/{job['id']}:watch", headers=sse)
    assert got.status_code == 200
    assert got.headers["content-type"] == "text/event-stream"
    assert got.headers["cache-control"] == "no-cache"
    events = sse_events(got.text)
    assert events[-1] == {"id": None, "event": "end", "data": {}}
    ids = [e["id"] for e in events[:-1]]
    assert ids == [e["data"]["event"]["sequence"] for e in events[:-1]]
    types = [e["data"]["event"]["type"] for e in events[:-1]]
    assert types == [
        "JOB_EVENT_TYPE_QUEUED",
        "JOB_EVENT_TYPE_STARTED",
        "JOB_EVENT_TYPE_PROGRESS",
        "JOB_EVENT_TYPE_SUCCEEDED",
    ]
    # A browser reconnecting sends the last id it saw: the stream goes on after it.
    resumed = await rest.http.get(f"/v1/jobs/{job['id']}:watch", headers={**sse, "Last-Event-ID": ids[1]})
    assert [e["id"] for e in sse_events(resumed.text)[:-1]] == ids[2:]
    # The same resume, spelled as the request field, for NDJSON clients.
    by_query = await rest.http.get(f"/v1/jobs/{job['id']}:watch", params={"afterSequence": ids[2]})
    assert [json.loads(line)["result"]["event"]["sequence"] for line in by_query.text.splitlines()] == ids[3:]
    bad = await rest.http.get(f"/v1/jobs/{job['id']}:watch", headers={**sse, "Last-Event-ID": "yesterday"})
    assert bad.status_code == 400 and bad.json()["details"][0]["fieldViolations"][0]["field"] == "after_sequence"


async def test_run_streams_the_answer_then_the_events_of_the_job(rest: Rest, start_worker: StartWorker) -> None:
    await start_worker()
    body = {"spec": {"summarizeText": {"text": "progress"}}, "options": {"labels": {"team": "docs"}}}
    got = await rest.http.post("/v1/jobs:run", json=body)
    assert got.status_code == 200 and got.headers["content-type"] == "application/json"
    first, *rest_of_it = [json.loads(line)["result"] for line in got.text.splitlines()]
    job = first["submitted"]["job"]
    assert first["submitted"]["created"] is True and job["options"]["labels"] == {"team": "docs"}
    events = [line["event"] for line in rest_of_it]
    assert [e["type"] for e in events] == [*LIFECYCLE[:2], "JOB_EVENT_TYPE_PROGRESS", LIFECYCLE[2]]
    assert {e["jobId"] for e in events} == {job["id"]} and events[-1]["result"]["text"]
    # As SSE: the answer first (no sequence, so no id), then each event with its sequence as id, then the end.
    sse = sse_events((await rest.http.post("/v1/jobs:run", json=body, headers={"Accept": "text/event-stream"})).text)
    assert sse[0]["id"] is None and sse[0]["data"]["submitted"]["created"] is True
    assert [e["id"] for e in sse[1:-1]] == [e["data"]["event"]["sequence"] for e in sse[1:-1]]
    assert sse[-1] == {"id": None, "event": "end", "data": {}}
    # Bad input fails before the first message: a 400 naming the field, as SubmitJob's.
    bad = await rest.http.post("/v1/jobs:run", json={"spec": {"summarizeText": {"text": ""}}})
    assert bad.status_code == 400 and bad.headers["content-type"] == "application/json"
    assert bad.json()["details"][0]["fieldViolations"][0]["field"] == "spec.summarize_text.text"


async def test_a_stream_that_fails_before_its_first_message_answers_like_a_unary_call(rest: Rest) -> None:
    for headers in ({}, {"Accept": "text/event-stream"}):
        got = await rest.http.get("/v1/jobs/nope:watch", headers=headers)
        assert got.status_code == 404
        assert got.headers["content-type"] == "application/json"
        assert got.json()["code"] == 5 and got.json()["message"] == "job 'nope' not found"


async def test_watch_jobs_follows_new_jobs_live(rest: Rest, start_worker: StartWorker) -> None:
    await start_worker()

    async def until_a_whole_job() -> tuple[httpx.Headers, str, list[str]]:
        """Reads the watch until it has seen one job from its QUEUED event to its end."""
        async with rest.http.stream("GET", "/v1/jobs:watch", params={"kind": "summarize_text"}) as response:
            seen: dict[str, list[str]] = {}
            async for line in response.aiter_lines():
                event = json.loads(line)["result"]["event"]
                types = seen.setdefault(event["jobId"], [])
                types.append(event["type"])
                if types[0] == LIFECYCLE[0] and event["terminal"]:
                    return response.headers, event["jobId"], types
        raise AssertionError("WatchJobs ended")

    # The watch only sees what happens after it subscribed, and it answers nothing before its first event:
    # run jobs one after another until it has seen one whole (each run is awaited, nothing sleeps).
    watcher = asyncio.create_task(until_a_whole_job())
    submitted: list[str] = []
    for index in range(50):
        if watcher.done():
            break
        job = await submit(rest, text=f"live {index}")
        submitted.append(job["id"])
        await watch_to_end(rest, job["id"])
    assert watcher.done(), "WatchJobs saw no whole job of 50"
    headers, job_id, types = await watcher
    assert headers["content-type"] == "application/json"
    assert job_id in submitted
    assert types == LIFECYCLE


async def test_open_streams_end_with_unavailable_when_the_gateway_stops(rest: Rest, start_worker: StartWorker) -> None:
    await start_worker()
    job = await submit(rest, text="block")
    async with rest.http.stream("GET", f"/v1/jobs/{job['id']}:watch") as response:
        lines = response.aiter_lines()
        assert json.loads(await anext(lines))["result"]["event"]["type"] == "JOB_EVENT_TYPE_QUEUED"
        stopping = asyncio.create_task(rest.gateway.stop())
        rest_of_it = [json.loads(line) async for line in lines if line]
    await stopping
    assert rest_of_it[-1] == {"error": {"code": 14, "message": "the gateway is shutting down", "details": []}}


async def test_stream_errors_after_messages_become_the_last_line(shelf: ShelfRest) -> None:
    got = await shelf.http.get("/v1/count/c:count", params={"i32": 2, "flag": "true"})
    assert got.status_code == 200
    assert [json.loads(line) for line in got.text.splitlines()] == [
        {"result": {"tick": {"sequence": "1", "id": "c"}}},
        {"result": {"tick": {"sequence": "2", "id": "c"}}},
        {"error": {"code": 15, "message": "lost after 2", "details": []}},
    ]
    sse = await shelf.http.get("/v1/count/c:count?i32=2&flag=1", headers={"Accept": "text/event-stream"})
    assert sse_events(sse.text) == [
        {"id": "1", "event": None, "data": {"tick": {"sequence": "1", "id": "c"}}},
        {"id": "2", "event": None, "data": {"tick": {"sequence": "2", "id": "c"}}},
        {"id": None, "event": "error", "data": {"code": 15, "message": "lost after 2", "details": []}},
    ]


async def test_empty_streams_and_failures_before_any_message(shelf: ShelfRest) -> None:
    empty = await shelf.http.get("/v1/count/c:count", params={"i32": 0})
    assert (empty.status_code, empty.content) == (200, b"")
    empty_sse = await shelf.http.get("/v1/count/c:count?i32=0", headers={"Accept": "text/event-stream"})
    assert sse_events(empty_sse.text) == [{"id": None, "event": "end", "data": {}}]
    failed = await shelf.http.get("/v1/count/c:count", params={"i32": 0, "flag": "true"})
    assert failed.status_code == 500
    assert failed.json() == {"code": 15, "message": "lost after 0", "details": []}


async def test_last_event_id_maps_to_after_sequence(shelf: ShelfRest) -> None:
    got = await shelf.http.get("/v1/count/c:count?i32=2", headers={"Accept": "text/event-stream", "Last-Event-ID": "5"})
    assert [e["id"] for e in sse_events(got.text)] == ["6", "7", None]


async def test_response_header_metadata_comes_back_as_grpc_metadata_headers(shelf: ShelfRest) -> None:
    got = await shelf.http.get("/v1/echo/x", headers={"Grpc-Metadata-Echo-Me": "hello"})
    assert got.status_code == 200
    assert got.headers["grpc-metadata-echoed"] == "hello"
    assert got.headers["grpc-metadata-echoed-bin"] == "AP8="
