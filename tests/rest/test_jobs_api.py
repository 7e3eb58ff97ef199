"""Every JobService and AdminService route end to end: an HTTP client, the shim, the gateway's gRPC services,
real NATS and in-process workers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

from grpc_tools import protoc

from gateway.descriptors import load_descriptor_sets
from gateway.rest.server import RestGateway, services_named
from syllabus.errors import QueueFull
from syllabus.jetstream import StreamLimits, ensure_topology
from syllabus.runtime import Runtime
from syllabus.taskregistry import TaskDeclaration, TaskRegistry
from syllabus.tasks import TaskApp, TaskContext
from syllabus.v1 import job_pb2
from syllabus.worker import Worker
from tests.pipeline.conftest import WORKER_CONFIG, StartWorker
from tests.rest.conftest import Rest

TEXT = "NATS JetStream keeps messages until they are acknowledged."


async def submit(rest: Rest, text: str = TEXT, **options: Any) -> dict[str, Any]:
    got = await rest.http.post("/v1/jobs", json={"spec": {"summarizeText": {"text": text}}, "options": options})
    assert got.status_code == 200, got.text
    job: dict[str, Any] = got.json()["job"]
    return job


async def watch_to_end(rest: Rest, job_id: str) -> list[dict[str, Any]]:
    got = await rest.http.get(f"/v1/jobs/{job_id}:watch")
    assert got.status_code == 200, got.text
    return [line["result"]["event"] for line in map(_json, got.text.splitlines())]


def _json(line: str) -> Any:
    return json.loads(line)


def violations(body: dict[str, Any]) -> list[str]:
    [detail] = [d for d in body["details"] if d["@type"] == "type.googleapis.com/google.rpc.BadRequest"]
    return [v["field"] for v in detail["fieldViolations"]]


async def test_submit_takes_both_json_spellings_and_answers_lower_camel_case_with_zero_values(rest: Rest) -> None:
    camel = await rest.http.post(
        "/v1/jobs",
        json={"spec": {"summarizeText": {"text": TEXT, "maxWords": 30}}, "options": {"maxAttempts": 2}},
    )
    snake = await rest.http.post(
        "/v1/jobs",
        json={"spec": {"summarize_text": {"text": TEXT, "max_words": 30}}, "options": {"max_attempts": 2}},
    )
    for got in (camel, snake):
        assert got.status_code == 200, got.text
        assert got.headers["content-type"] == "application/json"
        body = got.json()
        assert body["created"] is True
        job = body["job"]
        assert job["spec"] == {"summarizeText": {"text": TEXT, "maxWords": 30}}
        assert (job["state"], job["kind"], job["maxAttempts"]) == ("JOB_STATE_QUEUED", "summarize_text", 2)
        # Zero values are written out, as grpc-gateway's EmitUnpopulated does.
        assert (job["attempt"], job["errors"], job["parentId"], job["cancelRequested"]) == (0, [], "", False)
    assert camel.json()["job"]["id"] != snake.json()["job"]["id"]


async def test_idempotent_submit_returns_the_first_job(rest: Rest) -> None:
    first = await submit(rest, idempotencyKey="once")
    again = await rest.http.post(
        "/v1/jobs", json={"spec": {"summarizeText": {"text": "other"}}, "options": {"idempotency_key": "once"}}
    )
    assert again.json()["created"] is False and again.json()["job"]["id"] == first["id"]


async def test_get_watch_and_finished_job(rest: Rest, start_worker: StartWorker) -> None:
    await start_worker()
    job = await submit(rest, text="progress")
    events = await watch_to_end(rest, job["id"])
    assert [e["type"] for e in events] == [
        "JOB_EVENT_TYPE_QUEUED",
        "JOB_EVENT_TYPE_STARTED",
        "JOB_EVENT_TYPE_PROGRESS",
        "JOB_EVENT_TYPE_SUCCEEDED",
    ]
    got = await rest.http.get(f"/v1/jobs/{job['id']}")
    assert got.status_code == 200
    done = got.json()["job"]
    assert done["state"] == "JOB_STATE_SUCCEEDED" and done["result"]["text"] == "done by attempt 1: progress"


async def test_list_with_repeated_states_enums_by_name_or_number_labels_and_pages(
    rest: Rest, start_worker: StartWorker
) -> None:
    worker = await start_worker()
    ids = []
    for index in range(4):
        job = await submit(rest, text=f"job {index}", labels={"n": str(index % 2)})
        await watch_to_end(rest, job["id"])
        ids.append(job["id"])
    await worker.stop()
    queued = await submit(rest, text="stays queued: no worker takes it")
    canceled = await submit(rest, text="to cancel")
    assert (await rest.http.post(f"/v1/jobs/{canceled['id']}:cancel", json={})).status_code == 200

    both = await rest.http.get(
        "/v1/jobs", params=[("states", "JOB_STATE_SUCCEEDED"), ("states", str(job_pb2.JOB_STATE_CANCELED))]
    )
    assert both.status_code == 200
    assert {j["id"] for j in both.json()["jobs"]} == {*ids, canceled["id"]}
    labelled = await rest.http.get("/v1/jobs", params=[("labels", "n=1"), ("kind", "summarize_text")])
    assert [j["id"] for j in labelled.json()["jobs"]] == [ids[3], ids[1]]
    page = await rest.http.get("/v1/jobs", params={"pageSize": 2, "states": "JOB_STATE_SUCCEEDED"})
    first = page.json()
    assert [j["id"] for j in first["jobs"]] == [ids[3], ids[2]] and first["nextPageToken"]
    rest_page = await rest.http.get(
        "/v1/jobs", params={"page_size": 10, "page_token": first["nextPageToken"], "states": "JOB_STATE_SUCCEEDED"}
    )
    assert [j["id"] for j in rest_page.json()["jobs"]] == [ids[1], ids[0]]
    assert rest_page.json()["nextPageToken"] == ""
    assert queued["id"] not in {j["id"] for j in both.json()["jobs"]}


async def test_cancel_with_and_without_a_body(rest: Rest) -> None:
    job = await submit(rest)
    got = await rest.http.post(f"/v1/jobs/{job['id']}:cancel", json={"reason": "changed my mind"})
    assert got.status_code == 200
    assert got.json()["job"]["state"] == "JOB_STATE_CANCELED"
    other = await submit(rest)
    assert (await rest.http.post(f"/v1/jobs/{other['id']}:cancel")).json()["job"]["state"] == "JOB_STATE_CANCELED"
    unknown = await rest.http.post("/v1/jobs/nope:cancel", json={})
    assert unknown.status_code == 404 and unknown.json()["code"] == 5


async def test_batch_submit_all_or_nothing(rest: Rest) -> None:
    got = await rest.http.post(
        "/v1/jobs:batchSubmit",
        json={
            "requests": [{"spec": {"summarizeText": {"text": "one"}}}, {"spec": {"summarize_text": {"text": "two"}}}]
        },
    )
    assert got.status_code == 200
    results = got.json()["results"]
    assert [r["job"]["spec"]["summarizeText"]["text"] for r in results] == ["one", "two"]
    assert all(r["created"] for r in results)
    bad = await rest.http.post(
        "/v1/jobs:batchSubmit",
        json={"requests": [{"spec": {"summarizeText": {"text": "fine"}}}, {"spec": {"summarizeText": {"text": ""}}}]},
    )
    assert bad.status_code == 400
    assert violations(bad.json()) == ["requests[1].spec.summarize_text.text"]
    mistyped = await rest.http.post("/v1/jobs:batchSubmit", json={"requests": [{"spec": {"summarizeText": []}}]})
    assert mistyped.status_code == 400
    assert violations(mistyped.json()) == ["requests[0].spec.summarize_text"]


async def test_dead_letters_list_get_retry_edited_and_purge(rest: Rest, start_worker: StartWorker) -> None:
    # One job at a time, so they are dead-lettered in the order they were submitted.
    await start_worker(dataclasses.replace(WORKER_CONFIG, concurrency=1))
    doomed = await submit(rest, text="fail-permanent")
    second = await submit(rest, text="fail-permanent:again")
    for job in (doomed, second):
        assert (await watch_to_end(rest, job["id"]))[-1]["type"] == "JOB_EVENT_TYPE_FAILED"

    listed = await rest.http.get("/v1/admin/deadletters", params={"kind": "summarize_text", "pageSize": 10})
    assert listed.status_code == 200
    letters = listed.json()["deadLetters"]
    assert [(d["jobId"], d["sequence"]) for d in letters] == [(doomed["id"], "1"), (second["id"], "2")]
    one = await rest.http.get(f"/v1/admin/deadletters/{doomed['id']}")
    letter = one.json()["deadLetter"]
    assert letter["job"]["state"] == "JOB_STATE_FAILED" and letter["job"]["errors"][0]["type"] == "BadInput"
    assert letter["reason"] == "permanent error" and letter["sequence"] == "1"

    retried = await rest.http.post(
        f"/v1/admin/deadletters/{doomed['id']}:retry", json={"spec": {"summarizeText": {"text": "fixed"}}}
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["job"]["state"] == "JOB_STATE_QUEUED"
    assert (await watch_to_end(rest, doomed["id"]))[-1]["type"] == "JOB_EVENT_TYPE_SUCCEEDED"
    # Its dead letter went with the retry.
    again = await rest.http.post(f"/v1/admin/deadletters/{doomed['id']}:retry", json={})
    assert again.status_code == 404 and again.json()["code"] == 5
    wrong_kind = await rest.http.post(
        f"/v1/admin/deadletters/{second['id']}:retry", json={"spec": {"generateCourse": {"prompt": "Rust"}}}
    )
    assert wrong_kind.status_code == 400 and violations(wrong_kind.json()) == ["spec"]

    purged = await rest.http.post("/v1/admin/deadletters:purge", json={"kind": "summarize_text"})
    assert purged.status_code == 200 and purged.json() == {"purged": "1"}
    assert (await rest.http.get("/v1/admin/deadletters")).json() == {"deadLetters": [], "nextPageToken": ""}
    gone = await rest.http.get(f"/v1/admin/deadletters/{second['id']}")
    assert gone.status_code == 404


async def test_invalid_input_is_400_with_bad_request_details(rest: Rest) -> None:
    empty = await rest.http.post("/v1/jobs", json={"spec": {"summarizeText": {"text": ""}}})
    assert empty.status_code == 400
    body = empty.json()
    assert body["code"] == 3 and "spec.summarize_text.text" in body["message"]
    assert body["details"] == [
        {
            "@type": "type.googleapis.com/google.rpc.BadRequest",
            "fieldViolations": [
                {"field": "spec.summarize_text.text", "description": "must be at least 1 characters", "reason": ""}
            ],
        }
    ]
    missing = await rest.http.post("/v1/jobs", json={"options": {"priority": "PRIORITY_BATCH"}})
    assert missing.status_code == 400 and violations(missing.json()) == ["spec"]
    mistyped = await rest.http.post("/v1/jobs", json={"spec": {"summarizeText": {"text": 5}}})
    assert mistyped.status_code == 400 and violations(mistyped.json()) == ["spec.summarize_text.text"]
    assert "expected a string, got a number" in mistyped.json()["message"]
    labels = await rest.http.get("/v1/jobs", params={"labels": "NOT A LABEL"})
    assert labels.status_code == 400 and violations(labels.json()) == ["labels[0]"]
    page = await rest.http.get("/v1/jobs", params={"pageToken": "forged"})
    assert page.status_code == 400 and violations(page.json()) == ["page_token"]


async def test_malformed_json_is_400(rest: Rest) -> None:
    got = await rest.http.post("/v1/jobs", content=b'{"spec": ', headers={"Content-Type": "application/json"})
    assert got.status_code == 400
    assert got.json() == {
        "code": 3,
        "message": "malformed JSON in the request body: Expecting value at line 1 column 10",
        "details": [],
    }


async def test_unknown_job_is_404_with_resource_info(rest: Rest) -> None:
    got = await rest.http.get("/v1/jobs/nope")
    assert got.status_code == 404
    assert got.json() == {
        "code": 5,
        "message": "job 'nope' not found",
        "details": [
            {
                "@type": "type.googleapis.com/google.rpc.ResourceInfo",
                "resourceType": "syllabus.v1.Job",
                "resourceName": "nope",
                "owner": "",
                "description": "",
            }
        ],
    }


async def test_wrong_method_is_405_and_unknown_route_404(rest: Rest) -> None:
    wrong = await rest.http.delete("/v1/jobs/abc")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"
    assert wrong.json() == {"code": 12, "message": "Method Not Allowed", "details": []}
    assert (await rest.http.get("/v1/jobs/abc:cancel")).status_code == 404
    cancel = await rest.http.put("/v1/jobs/abc:cancel")
    assert cancel.status_code == 405 and cancel.headers["allow"] == "GET, POST"
    unknown = await rest.http.get("/v2/jobs")
    assert unknown.status_code == 404
    assert unknown.json() == {"code": 5, "message": "Not Found", "details": []}


async def test_full_queue_is_429_with_retry_info(rest: Rest) -> None:
    await ensure_topology(rest.pipeline.nc, rest.pipeline.topology, StreamLimits(max_jobs=1))
    await submit(rest)
    got = await rest.http.post("/v1/jobs", json={"spec": {"summarizeText": {"text": "one too many"}}})
    assert got.status_code == 429
    body = got.json()
    assert body["code"] == 8
    [retry] = body["details"]
    assert retry["@type"] == "type.googleapis.com/google.rpc.RetryInfo"
    assert retry["retryDelay"] == f"{QueueFull().retry_after:g}s"


async def test_deadline_from_grpc_timeout_is_504(rest: Rest) -> None:
    # WatchJobs never ends by itself, so its deadline is what ends it: before any event, a plain Status.
    got = await rest.http.get("/v1/jobs:watch", headers={"Grpc-Timeout": "200m"})
    assert got.status_code == 504
    assert got.json()["code"] == 4
    expired = await rest.http.get("/v1/jobs/x", headers={"Grpc-Timeout": "0S"})
    assert expired.status_code == 504
    bad = await rest.http.get("/v1/jobs/x", headers={"Grpc-Timeout": "soon"})
    assert bad.status_code == 400
    assert bad.json()["message"] == (
        "invalid grpc-timeout: soon (expected up to 8 digits and a unit: H, M, S, m, u or n, as in 30S)"
    )
    # A negative timeout is a client mistake, not a deadline the server missed.
    for raw in ("-5S", "+5S", "123456789S"):
        negative = await rest.http.get("/v1/jobs/x", headers={"Grpc-Timeout": raw})
        assert negative.status_code == 400 and negative.json()["message"].startswith(f"invalid grpc-timeout: {raw} ")


async def test_gateway_down_is_503(rest: Rest, closed_addr: str) -> None:
    # A shim whose gRPC server is not there.
    dead = RestGateway(services_named(["syllabus.v1.JobService"]), closed_addr)
    address = await dead.start("127.0.0.1:0")
    try:
        got = await rest.http.get(f"http://{address}/v1/jobs/x", headers={"Grpc-Timeout": "10S"})
    finally:
        await dead.stop()
    assert got.status_code == 503
    assert got.json()["code"] == 14


async def test_authorization_and_grpc_metadata_headers_become_metadata(rest: Rest) -> None:
    got = await rest.http.get(
        "/v1/jobs",
        headers={
            "Authorization": "Bearer t0ken",
            "Grpc-Metadata-Tenant-Hint": "blue",
            "grpc-metadata-trace-bin": "AAEC",
            "X-Forwarded-For": "10.1.2.3",
            "X-Ignored": "never forwarded",
            "User-Agent": "tests",
        },
    )
    assert got.status_code == 200
    metadata = rest.metadata.last("ListJobs")
    assert metadata["authorization"] == "Bearer t0ken"
    assert metadata["grpcgateway-authorization"] == "Bearer t0ken"
    assert metadata["tenant-hint"] == "blue"
    assert metadata["trace-bin"] == b"\x00\x01\x02"
    assert metadata["grpcgateway-user-agent"] == "tests"
    assert metadata["x-forwarded-for"] == "10.1.2.3, 127.0.0.1"
    assert metadata["x-forwarded-host"] == rest.url.removeprefix("http://")
    assert "x-ignored" not in metadata
    bad = await rest.http.get("/v1/jobs", headers={"Grpc-Metadata-Trace-Bin": "not base64!"})
    assert bad.status_code == 400 and "invalid binary header" in bad.json()["message"]


@contextlib.asynccontextmanager
async def serving(rest: Rest, app: TaskApp) -> AsyncIterator[None]:
    """The app's pool, declared and run by an in-process worker on the pipeline."""
    p = rest.pipeline
    await TaskRegistry(p.nc, p.topology).declare(app.pool, app.declarations)
    worker = Worker(
        service=f"pool {app.pool}",
        handlers={"task": app.handle},
        runtime=Runtime.build(p.nc, p.store, p.topology),
        config=WORKER_CONFIG,
        queue=p.topology.pool_queue(app.pool, [task.name for task in app.declarations]),
    )
    running = asyncio.create_task(worker.run())
    try:
        yield
    finally:
        worker.stop()
        await running


async def test_a_task_job_over_rest_runs_in_its_pool_and_answers_its_json_result(rest: Rest) -> None:
    app = TaskApp("shop")

    @app.task("orders.total", max_attempts=4)
    async def total(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
        await ctx.progress(50, "adding up")
        return {"total": sum(item["price"] * item["count"] for item in data["items"])}

    async with serving(rest, app):
        items = [{"price": 2.5, "count": 2}, {"price": 1, "count": 3}]
        got = await rest.http.post(
            "/v1/jobs", json={"spec": {"task": {"name": "orders.total", "json": {"items": items}}}}
        )
        assert got.status_code == 200, got.text
        job = got.json()["job"]
        assert (job["kind"], job["maxAttempts"]) == ("task", 4)
        assert job["spec"] == {"task": {"name": "orders.total", "json": {"items": items}}}
        events = await watch_to_end(rest, job["id"])
        assert [e["type"].removeprefix("JOB_EVENT_TYPE_") for e in events] == [
            "QUEUED",
            "STARTED",
            "PROGRESS",
            "SUCCEEDED",
        ]
        assert events[-1]["result"]["json"] == {"total": 8.0}
        done = (await rest.http.get(f"/v1/jobs/{job['id']}")).json()["job"]
        assert (done["state"], done["result"]["json"]) == ("JOB_STATE_SUCCEEDED", {"total": 8.0})


async def test_a_task_no_pool_serves_is_a_400_naming_the_field(rest: Rest) -> None:
    got = await rest.http.post("/v1/jobs", json={"spec": {"task": {"name": "orders.unknown", "json": {}}}})
    assert got.status_code == 400, got.text
    body = got.json()
    assert (body["code"], violations(body)) == (3, ["spec.task.name"])
    assert "no worker pool serves task 'orders.unknown'" in body["message"]


ORDER_PROTO = """
syntax = "proto3";
package {package};
import "buf/validate/validate.proto";
message Order {{
  string sku = 1 [(buf.validate.field).string.min_len = 1];
  int32 quantity = 2 [(buf.validate.field).int32 = {{gte: 1, lte: 99}}];
}}
"""


def order_descriptor_set(home: Path) -> tuple[Path, str]:
    """A proto of the user's own, in a package no other test loads, built as `buf build -o` would."""
    package = f"shop{uuid.uuid4().hex[:8]}.v1"
    (home / "order.proto").write_text(ORDER_PROTO.format(package=package))
    out = home / "shop.binpb"
    include = str(resources.files("grpc_tools") / "_proto")
    third_party = Path(__file__).resolve().parents[2] / "third_party" / "proto"
    args = ["protoc", f"-I{home}", f"-I{third_party}", f"-I{include}", "--include_imports"]
    assert protoc.main([*args, f"--descriptor_set_out={out}", "order.proto"]) == 0
    return out, f"{package}.Order"


async def test_a_typed_task_input_over_rest_takes_the_type_from_a_loaded_descriptor_set(
    rest: Rest, tmp_path: Path
) -> None:
    path, order = order_descriptor_set(tmp_path)
    assert load_descriptor_sets((str(path),)) == [order]
    declaration = TaskDeclaration(name="orders.place", pool="shop", max_attempts=2, timeout=5.0, input_type=order)
    await TaskRegistry(rest.pipeline.nc, rest.pipeline.topology).declare("shop", [declaration])
    typed = {"@type": f"type.googleapis.com/{order}", "sku": "A-1", "quantity": 3}
    got = await rest.http.post("/v1/jobs", json={"spec": {"task": {"name": "orders.place", "message": typed}}})
    assert got.status_code == 200, got.text
    job = got.json()["job"]
    assert job["spec"]["task"]["message"] == typed
    read = await rest.http.get(f"/v1/jobs/{job['id']}")
    assert read.json()["job"]["spec"]["task"]["message"] == typed

    bad = {**typed, "quantity": 0}
    refused = await rest.http.post("/v1/jobs", json={"spec": {"task": {"name": "orders.place", "message": bad}}})
    assert refused.status_code == 400, refused.text
    assert violations(refused.json()) == ["spec.task.message.quantity"]


async def test_a_result_of_a_type_the_gateway_does_not_know_is_read_as_its_type_and_bytes(rest: Rest) -> None:
    app = TaskApp("opaque")

    @app.task("opaque.make")
    async def make(ctx: TaskContext, data: dict[str, Any]) -> job_pb2.JobResult:
        result = job_pb2.JobResult()
        result.message.type_url = "type.googleapis.com/elsewhere.v1.Secret"
        result.message.value = b"\x08\x01"
        return result

    async with serving(rest, app):
        got = await rest.http.post("/v1/jobs", json={"spec": {"task": {"name": "opaque.make"}}})
        assert got.status_code == 200, got.text
        events = await watch_to_end(rest, got.json()["job"]["id"])
        opaque = {"@type": "type.googleapis.com/elsewhere.v1.Secret", "value": "CAE="}
        assert events[-1]["result"]["message"] == opaque
        read = await rest.http.get(f"/v1/jobs/{got.json()['job']['id']}")
        assert read.status_code == 200 and read.json()["job"]["result"]["message"] == opaque
