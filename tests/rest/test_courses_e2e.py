"""A course from prompt to PDF through REST and through the Node.js client, against `syllabus up` as a user runs it
(the generator, with the offline provider, and the renderer do the work)."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path

import httpx
import pytest

from tests.e2e import conftest as e2e_fixtures
from tests.e2e.conftest import Stack
from tests.rest.conftest import run_node
from tests.rest.test_buf_curl import BUF
from tests.rest.test_readme import course_examples, run_examples

pytestmark = pytest.mark.e2e
# `syllabus up` on free ports in a temp home, once for this module.
stack = e2e_fixtures.stack


def saved_pdf(directory: Path) -> bytes:
    [pdf] = directory.glob("course-*.pdf")
    return pdf.read_bytes()


def http_addr(stack: Stack) -> str:
    return stack.env["SYLLABUS_HTTP_ADDR"]


async def test_readme_course_examples(stack: Stack, tmp_path: Path) -> None:
    code, out, err = await run_examples(course_examples(), http_addr(stack), tmp_path)
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}\n{stack.log_tail()}"
    assert '"type":"JOB_EVENT_TYPE_WAITING"' in out and '"type":"JOB_EVENT_TYPE_SUCCEEDED"' in out
    assert '"title":"An introduction to message queues"' in out
    assert saved_pdf(tmp_path).startswith(b"%PDF")


async def test_course_documents_download_with_their_type_and_name(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=f"http://{http_addr(stack)}", timeout=60) as http:
        created = await http.post("/v1/courses", json={"course": {"prompt": "Rust ownership", "modules": 1}})
        assert created.status_code == 200, created.text
        course_id, job_id = created.json()["course"]["id"], created.json()["job"]["id"]
        async with http.stream("GET", f"/v1/jobs/{job_id}:watch") as watch:
            events = [json.loads(line)["result"]["event"] async for line in watch.aiter_lines() if line]
        assert events[-1]["type"] == "JOB_EVENT_TYPE_SUCCEEDED", events[-1]
        expected = {
            "DOCUMENT_FORMAT_PDF": ("application/pdf", ".pdf", b"%PDF"),
            "DOCUMENT_FORMAT_HTML": ("text/html", ".html", b"<!doctype html"),
            "DOCUMENT_FORMAT_MARKDOWN": ("text/markdown", ".md", b"# Rust ownership"),
        }
        for format_name, (media, extension, start) in expected.items():
            got = await http.get(f"/v1/courses/{course_id}/document", params={"format": format_name})
            assert got.status_code == 200, got.text
            assert got.headers["content-type"].split(";")[0] == media
            assert got.headers["content-disposition"] == f'attachment; filename="course-{course_id}{extension}"'
            assert got.content[:40].lower().startswith(start.lower()), got.content[:40]
        missing = await http.get("/v1/courses/no-such-course/document")
        assert missing.status_code == 404 and missing.json()["code"] == 5
        pdf = await http.get(f"/v1/courses/{course_id}/document")
    # The same document through gRPC, with buf curl and server reflection: the same bytes.
    process = await asyncio.create_subprocess_exec(
        str(BUF),
        "curl",
        "--protocol",
        "grpc",
        "--http2-prior-knowledge",
        "-d",
        json.dumps({"course_id": course_id}),
        f"http://{stack.grpc_addr}/syllabus.v1.CourseService/GetCourseDocument",
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    assert process.returncode == 0
    body = json.loads(out)
    assert body["contentType"] == "application/pdf"
    assert base64.b64decode(body["data"]) == pdf.content


async def test_node_client_writes_a_course(stack: Stack, node_client: Path, tmp_path: Path) -> None:
    code, out, err = await run_node(node_client, "example.js", stack.grpc_addr, "--out", str(tmp_path))
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}\n{stack.log_tail()}"
    # The example leaves the course out against a gateway without CourseService; this one serves it.
    assert "CourseService is not served" not in out, out
    lines = out.splitlines()
    assert any(line.startswith("created course ") for line in lines), out
    assert any("JOB_EVENT_TYPE_WAITING" in line for line in lines), out
    course_line = next(line for line in lines if line.startswith("course "))
    assert course_line.endswith('"An introduction to message queues", 2 modules'), course_line
    job_id = next(line for line in lines if line.startswith("created course ")).split("(job ")[1].rstrip(")")
    course_id = course_line.split()[1].rstrip(":")
    pdf = saved_pdf(tmp_path)
    assert lines[-5].startswith(f"document application/pdf, {len(pdf)} bytes, "), lines[-5]
    assert pdf.startswith(b"%PDF")
    # getJobArtifact: the course job's artifact, under the name the gateway's content-disposition gives.
    assert lines[-4] == f"artifact course.pdf of job {job_id}: application/pdf, {len(pdf)} bytes, the same bytes"
    # regenerateCoursePart and listCourseVersions; uploadSource, listSources and deleteSource.
    assert lines[-3] == f'versions of course {course_id}: 1 "", 2 "regenerated the lesson of module 1: simpler"'
    source = re.fullmatch(r"source (\w+): notes\.md, 1 passages, listed: true", lines[-2])
    assert source, lines[-2]
    assert lines[-1] == f"source {source.group(1)} deleted, listed: false"


async def test_node_client_edits_a_course_and_its_sources(stack: Stack, node_client: Path) -> None:
    script = Path(__file__).with_name("node_course_edits.js")
    code, out, err = await run_node(node_client, str(script), stack.grpc_addr)
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}\n{stack.log_tail()}"
    assert out.splitlines() == [
        "updateLesson: version 2, render job render_document",
        'updateQuestion: version 3, "What does a stream keep?"',
        'reorderModules: version 4, first "# Streams"',
        "addModule: version 5, 2 jobs",
        "removeModule: version 6, 2 modules",
        'getSource: notes.txt, 1 passages, "Consumers acknowledge messages."',
        "getSource after deleteSource: 5",
    ], out
