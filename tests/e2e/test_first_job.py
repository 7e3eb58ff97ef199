"""The issue's "done means", as a new user would check it against `syllabus up`: the CLI, buf curl, health."""

from __future__ import annotations

import json
import sysconfig
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import Run, Stack

pytestmark = pytest.mark.e2e

TEXT = (
    "NATS JetStream keeps every job until a worker acknowledges it. "
    "A worker that dies mid-job hands it back, and another worker runs it again."
)
BUF = Path(sysconfig.get_path("scripts")) / "buf"
JOB_METHODS = ["SubmitJob", "SubmitJobs", "GetJob", "ListJobs", "CancelJob", "WatchJob", "WatchJobs"]
ADMIN_METHODS = ["ListDeadLetters", "GetDeadLetter", "RetryDeadLetter", "PurgeDeadLetters"]


def json_messages(text: str) -> list[dict[str, Any]]:
    """Every JSON object in buf curl's output: a streaming call prints one per message, one after another."""
    decoder = json.JSONDecoder()
    messages = []
    position = 0
    text = text.strip()
    while position < len(text):
        message, end = decoder.raw_decode(text, position)
        messages.append(message)
        position = end
        while position < len(text) and text[position].isspace():
            position += 1
    return messages


async def buf_curl(stack: Stack, method: str, data: dict[str, Any] | None = None) -> Run:
    argv = [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    if data is not None:
        argv += ["--data", json.dumps(data)]
    return await stack.run(*argv, f"http://{stack.grpc_addr}/{method}")


async def test_submit_watch_and_get_from_the_command_line(stack: Stack) -> None:
    submitted = await stack.syllabus("submit", "summarize", "--text", TEXT)
    assert submitted.code == 0, submitted.err
    job_id = submitted.out.strip()
    assert submitted.out == f"{job_id}\n" and job_id

    watched = await stack.syllabus("watch", job_id)
    assert watched.code == 0, watched.err
    states = [line.split()[0] for line in watched.out.splitlines() if line and not line.startswith(" ")]
    # The gateway stores QUEUED before the job reaches a worker, so it always comes first.
    assert states[:2] == ["QUEUED", "RUNNING"]
    assert states[-2:] == ["SUCCEEDED", "result:"]

    got = await stack.syllabus("get", job_id)
    assert got.code == 0, got.err
    lines = got.out.splitlines()
    assert lines[0] == f"job       {job_id}"
    assert "state     SUCCEEDED" in lines and "kind      summarize_text" in lines
    summary = json.loads((await stack.syllabus("get", job_id, "--json")).out)["result"]["text"]
    assert summary.strip()
    # Both show the summary, indented under "result", whichever model wrote it.
    block = "\n".join(f"  {line}" for line in summary.splitlines())
    assert f"\nresult\n{block}\n" in got.out
    assert f"\nresult:\n{block}\n" in watched.out

    listed = await stack.syllabus("jobs", "--state", "succeeded")
    assert job_id in [line.split()[0] for line in listed.out.splitlines()[1:]]


async def test_a_bad_request_from_the_command_line_names_the_field(stack: Stack) -> None:
    result = await stack.syllabus("submit", "summarize", "--text", "x", "--max-attempts", "1000")
    assert result.code == 2 and result.out == ""
    assert result.err.startswith("syllabus: INVALID_ARGUMENT: ")
    assert result.err.splitlines()[1].startswith("  options.max_attempts: ")


async def test_buf_curl_submits_gets_and_watches_a_job_through_reflection(stack: Stack) -> None:
    submitted = await buf_curl(stack, "syllabus.v1.JobService/SubmitJob", {"spec": {"summarizeText": {"text": TEXT}}})
    assert submitted.code == 0, submitted.err
    [answer] = json_messages(submitted.out)
    job = answer["job"]
    assert answer["created"] is True
    assert job["kind"] == "summarize_text" and job["spec"] == {"summarizeText": {"text": TEXT}}
    assert job["state"] == "JOB_STATE_QUEUED"

    got = await buf_curl(stack, "syllabus.v1.JobService/GetJob", {"jobId": job["id"]})
    assert got.code == 0, got.err
    [current] = json_messages(got.out)
    assert current["job"]["id"] == job["id"]
    assert current["job"]["state"] in {"JOB_STATE_QUEUED", "JOB_STATE_RUNNING", "JOB_STATE_SUCCEEDED"}

    watched = await buf_curl(stack, "syllabus.v1.JobService/WatchJob", {"jobId": job["id"]})
    assert watched.code == 0, watched.err
    events = [message["event"] for message in json_messages(watched.out)]
    assert [event["type"] for event in events] == [
        "JOB_EVENT_TYPE_QUEUED",
        "JOB_EVENT_TYPE_STARTED",
        "JOB_EVENT_TYPE_SUCCEEDED",
    ]
    assert all(event["jobId"] == job["id"] for event in events)
    assert [int(event["sequence"]) for event in events] == sorted(int(event["sequence"]) for event in events)
    end = events[-1]
    assert end["terminal"] is True and end["state"] == "JOB_STATE_SUCCEEDED" and end["result"]["text"]

    done = json_messages((await buf_curl(stack, "syllabus.v1.JobService/GetJob", {"jobId": job["id"]})).out)[0]
    assert done["job"]["state"] == "JOB_STATE_SUCCEEDED"
    assert done["job"]["result"] == end["result"]


async def test_buf_curl_gets_bad_request_details(stack: Stack) -> None:
    result = await buf_curl(stack, "syllabus.v1.JobService/SubmitJob", {"spec": {}})
    assert result.code != 0
    [error] = json_messages(result.err)
    assert error["code"] == "invalid_argument"
    assert "spec.kind" in error["message"]
    assert [detail["type"] for detail in error["details"]] == ["google.rpc.BadRequest"]


async def test_buf_curl_lists_the_services(stack: Stack) -> None:
    result = await stack.run(
        str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--list-methods", f"http://{stack.grpc_addr}"
    )
    assert result.code == 0, result.err
    methods = set(result.out.split())
    assert {f"syllabus.v1.JobService/{name}" for name in JOB_METHODS} <= methods
    assert {f"syllabus.v1.AdminService/{name}" for name in ADMIN_METHODS} <= methods
    assert "grpc.health.v1.Health/Check" in methods


@pytest.mark.parametrize("service", ["", "syllabus.v1.JobService", "syllabus.v1.AdminService"])
async def test_health_check_answers_serving(stack: Stack, service: str) -> None:
    result = await buf_curl(stack, "grpc.health.v1.Health/Check", {"service": service} if service else None)
    assert result.code == 0, result.err
    assert json_messages(result.out) == [{"status": "SERVING"}]


async def test_a_report_job_sent_with_curl_is_downloaded_as_a_pdf_with_curl(stack: Stack, tmp_path: Path) -> None:
    base = f"http://{stack.env['SYLLABUS_HTTP_ADDR']}"
    report = {
        "title": "Quarterly report",
        "figures": [{"label": "Revenue", "value": "EUR 1.2M"}],
        "sections": [
            {
                "heading": "Sales",
                "bodyMarkdown": "Sales **grew**.",
                "tables": [{"columns": ["Region", "Orders"], "rows": [{"cells": ["North", "2,001"]}]}],
            }
        ],
    }
    body = json.dumps({"spec": {"renderReport": report}})
    json_type = ("-H", "Content-Type: application/json")
    posted = await stack.run("curl", "-sS", "--fail-with-body", f"{base}/v1/jobs", *json_type, "-d", body)
    assert posted.code == 0, (posted.out, posted.err)
    job_id = json.loads(posted.out)["job"]["id"]
    watched = await stack.run("curl", "-sS", "--fail-with-body", f"{base}/v1/jobs/{job_id}:watch")
    last = json.loads(watched.out.splitlines()[-1])["result"]["event"]
    assert last["type"] == "JOB_EVENT_TYPE_SUCCEEDED", watched.out
    assert {a["name"] for a in last["result"]["artifacts"]} == {"report.md", "report.html", "report.pdf"}

    # -OJ: saved under the name the Content-Disposition gives, as a browser would.
    download = await stack.run(
        "curl",
        "-sS",
        "--fail-with-body",
        "-OJ",
        "--output-dir",
        str(tmp_path),
        f"{base}/v1/jobs/{job_id}/artifacts/report.pdf",
    )
    assert download.code == 0, download.err
    assert (tmp_path / "report.pdf").read_bytes().startswith(b"%PDF")
    missing = await stack.run(
        "curl", "-sS", "-w", "%{http_code}", "-o", "/dev/null", f"{base}/v1/jobs/{job_id}/artifacts/nope.pdf"
    )
    assert missing.out == "404"
