"""`buf curl` (from the buf-bin wheel) calling every RPC through server reflection, streams included.

SubmitJob, GetJob and WatchJob are covered in tests/e2e; this covers the rest against the in-process gateway.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import sys
from pathlib import Path
from typing import Any

from syllabus.v1 import job_pb2
from tests.pipeline.conftest import StartWorker
from tests.rest.conftest import Rest

BUF = Path(sys.executable).with_name("buf")


def documents(text: str) -> list[Any]:
    """The JSON documents buf curl printed one after another (one per response message)."""
    decoder = json.JSONDecoder()
    found: list[Any] = []
    position = 0
    while position < len(text):
        if text[position].isspace():
            position += 1
            continue
        value, position = decoder.raw_decode(text, position)
        found.append(value)
    return found


def arguments(rest: Rest, method: str, body: dict[str, Any] | None, *extra: str) -> list[str]:
    data = ["-d", json.dumps(body)] if body is not None else []
    return [
        str(BUF),
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        *data,
        *extra,
        f"http://{rest.grpc_target}/{method}",
    ]


async def buf_curl(rest: Rest, method: str, body: dict[str, Any] | None = None) -> tuple[int, list[Any], str]:
    process = await asyncio.create_subprocess_exec(
        *arguments(rest, method, body), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    return process.returncode, documents(out.decode()), err.decode()


async def ok(rest: Rest, method: str, body: dict[str, Any] | None = None) -> Any:
    code, answers, err = await buf_curl(rest, method, body)
    assert code == 0, err
    [answer] = answers
    return answer


async def test_every_service_is_listed_through_reflection(rest: Rest) -> None:
    process = await asyncio.create_subprocess_exec(
        str(BUF),
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "--list-methods",
        f"http://{rest.grpc_target}",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    methods = set(out.decode().split())
    for route in rest.gateway.routes:
        assert f"{route.method.containing_service.full_name}/{route.method.name}" in methods


async def test_submit_jobs_list_jobs_and_cancel_job(rest: Rest) -> None:
    batch = await ok(
        rest,
        "syllabus.v1.JobService/SubmitJobs",
        {"requests": [{"spec": {"summarize_text": {"text": "one"}}}, {"spec": {"summarizeText": {"text": "two"}}}]},
    )
    ids = [result["job"]["id"] for result in batch["results"]]
    assert len(ids) == 2 and all(result["created"] for result in batch["results"])
    listed = await ok(rest, "syllabus.v1.JobService/ListJobs", {"states": ["JOB_STATE_QUEUED"], "page_size": 10})
    assert {job["id"] for job in listed["jobs"]} == set(ids)
    canceled = await ok(rest, "syllabus.v1.JobService/CancelJob", {"job_id": ids[0], "reason": "not needed"})
    assert canceled["job"]["state"] == "JOB_STATE_CANCELED"
    code, _, err = await buf_curl(rest, "syllabus.v1.JobService/CancelJob", {"job_id": "nope"})
    assert code != 0 and '"code": "not_found"' in err


async def test_watch_jobs_streams_through_buf_curl(rest: Rest, start_worker: StartWorker) -> None:
    await start_worker()
    process = await asyncio.create_subprocess_exec(
        *arguments(rest, "syllabus.v1.JobService/WatchJobs", {"kind": "summarize_text"}, "-v"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    try:
        # -v shows the response headers: WatchJobs sends them once it is subscribed, so the watch is live then.
        stream_number = None
        while True:
            line = (await process.stderr.readline()).decode()
            assert line, "buf curl ended before WatchJobs answered"
            posted = re.search(r"> \(#(\d+)\) POST /syllabus.v1.JobService/WatchJobs", line)
            if posted:
                stream_number = posted.group(1)
            if stream_number and re.search(rf"< \(#{stream_number}\) HTTP/2.0 200 OK", line):
                break
        drain = asyncio.create_task(process.stderr.read())
        job = await rest.pipeline.submit("watched by buf curl")
        seen: list[dict[str, Any]] = []
        text = ""
        while not seen or seen[-1]["type"] != "JOB_EVENT_TYPE_SUCCEEDED":
            chunk = await process.stdout.read(4096)
            assert chunk, "buf curl ended before the job did"
            text += chunk.decode()
            with contextlib.suppress(json.JSONDecodeError):
                seen = [answer["event"] for answer in documents(text)]
        assert {event["jobId"] for event in seen} == {job.id}
        assert [event["type"] for event in seen] == [
            "JOB_EVENT_TYPE_QUEUED",
            "JOB_EVENT_TYPE_STARTED",
            "JOB_EVENT_TYPE_SUCCEEDED",
        ]
    finally:
        process.terminate()
        await process.wait()
    drain.cancel()


async def test_dead_letters_through_buf_curl(rest: Rest, start_worker: StartWorker) -> None:
    await start_worker()
    job = await rest.pipeline.submit("fail-permanent")
    assert (await rest.pipeline.wait_end(job.id)).state == job_pb2.JOB_STATE_FAILED
    listed = await ok(rest, "syllabus.v1.AdminService/ListDeadLetters", {"kind": "summarize_text"})
    assert [letter["jobId"] for letter in listed["deadLetters"]] == [job.id]
    letter = await ok(rest, "syllabus.v1.AdminService/GetDeadLetter", {"job_id": job.id})
    assert letter["deadLetter"]["job"]["errors"][0]["permanent"] is True
    retried = await ok(
        rest,
        "syllabus.v1.AdminService/RetryDeadLetter",
        {"job_id": job.id, "spec": {"summarize_text": {"text": "fixed"}}},
    )
    assert retried["job"]["state"] == "JOB_STATE_QUEUED"
    assert (await rest.pipeline.wait_end(job.id)).state == job_pb2.JOB_STATE_SUCCEEDED
    other = await rest.pipeline.submit("fail-permanent:again")
    await rest.pipeline.wait_end(other.id)
    purged = await ok(rest, "syllabus.v1.AdminService/PurgeDeadLetters", {})
    assert purged == {"purged": "1"}


async def test_course_service_through_buf_curl(rest: Rest) -> None:
    created = await ok(
        rest,
        "syllabus.v1.CourseService/CreateCourse",
        {"course": {"prompt": "Message queues", "modules": 1, "level": "COURSE_LEVEL_BEGINNER"}},
    )
    course_id = created["course"]["id"]
    assert created["job"]["kind"] == "generate_course"
    got = await ok(rest, "syllabus.v1.CourseService/GetCourse", {"course_id": course_id})
    assert got["course"]["prompt"] == "Message queues"
    listed = await ok(rest, "syllabus.v1.CourseService/ListCourses", {"page_size": 5})
    assert [course["id"] for course in listed["courses"]] == [course_id]
    # No worker writes it here, so there is no document yet (test_courses_e2e fetches a real one).
    code, _, err = await buf_curl(rest, "syllabus.v1.CourseService/GetCourseDocument", {"course_id": course_id})
    assert code != 0 and '"code": "failed_precondition"' in err
