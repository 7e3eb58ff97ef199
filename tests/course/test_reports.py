"""render_report through the real job path on real NATS: a renderer worker with the real handlers writes the
report's documents into the artifacts object store, and GetJobArtifact downloads them over gRPC, over the REST
shim and with `syllabus artifact`; a course's documents download through the same route."""

from __future__ import annotations

import asyncio
import html
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import grpc
import httpx
import pytest
import pytest_asyncio
from google.protobuf import json_format
from google.rpc import status_pb2

from cli import main as cli
from gateway.rest.server import RestGateway, services_named
from gateway.services import SERVICE_NAMES
from renderer.reports import literal, render_report_html, render_report_markdown, render_report_pdf
from syllabus.v1 import job_pb2, job_service_pb2
from tests.course.conftest import CourseStack
from tests.course.offline_course import pdf_text

E = job_pb2
TITLE = "Quarterly report: Q1 2026"
REPORT = {
    "title": TITLE,
    "subtitle": "All regions",
    "figures": [{"label": "Revenue", "value": "EUR 1.2M"}, {"label": "Orders", "value": "4,812"}],
    "sections": [
        {
            "heading": "Sales",
            "bodyMarkdown": "Sales **grew** in every region.\n\n# Details\n\n<script>alert(1)</script>",
            "tables": [
                {
                    "caption": "By region",
                    "columns": ["Region", "Orders"],
                    "rows": [{"cells": ["North | East", "2,001"]}, {"cells": ["*South*", "2,811"]}],
                }
            ],
        }
    ],
}


def report_spec(**changes: object) -> job_pb2.JobSpec:
    spec = job_pb2.JobSpec()
    json_format.ParseDict({"renderReport": {**REPORT, **changes}}, spec)
    return spec


async def run_report(stack: CourseStack, spec: job_pb2.JobSpec) -> job_pb2.Job:
    submitted = await stack.jobs.SubmitJob(job_service_pb2.SubmitJobRequest(spec=spec), timeout=10)
    events = await stack.events(submitted.job.id, timeout=60)
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED, events[-1].error
    got = await stack.jobs.GetJob(job_service_pb2.GetJobRequest(job_id=submitted.job.id), timeout=10)
    job: job_pb2.Job = got.job
    return job


async def artifact(stack: CourseStack, job_id: str, name: str) -> tuple[bytes, str, dict[str, str]]:
    call = stack.jobs.GetJobArtifact(job_service_pb2.GetJobArtifactRequest(job_id=job_id, name=name), timeout=10)
    body = await call
    metadata = {key: str(value) for key, value in await call.initial_metadata()}
    return body.data, body.content_type, metadata


@pytest_asyncio.fixture
async def http(stack: CourseStack) -> AsyncIterator[httpx.AsyncClient]:
    """The REST shim, with the production route table, in front of the stack's gRPC services."""
    gateway = RestGateway(services_named(SERVICE_NAMES), stack.addr)
    address = await gateway.start("127.0.0.1:0")
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}", timeout=30) as client:
            yield client
    finally:
        await gateway.stop()


async def test_a_report_renders_into_the_jobs_artifacts(stack: CourseStack, tmp_path: Path) -> None:
    await stack.start_workers()
    job = await run_report(stack, report_spec())
    artifacts = {a.name: a for a in job.result.artifacts}
    assert sorted(artifacts) == ["report.html", "report.md", "report.pdf"]
    assert job.result.reference == f"jobs/{job.id}"

    html, content_type, metadata = await artifact(stack, job.id, "report.html")
    assert content_type == "text/html; charset=utf-8"
    assert metadata["content-disposition"] == 'attachment; filename="report.html"'
    page = html.decode()
    assert page.startswith("<!DOCTYPE html>") and f"<h1>{TITLE}</h1>" in page
    assert "<td>North | East</td>" in page and "<td>*South*</td>" in page
    assert "<td>Revenue</td>" in page and "<td>EUR 1.2M</td>" in page
    assert "<strong>grew</strong>" in page and "<script>" not in page
    assert artifacts["report.html"].size_bytes == len(html)

    markdown, content_type, _ = await artifact(stack, job.id, "report.md")
    assert content_type == "text/markdown; charset=utf-8"
    assert markdown.decode().startswith(f"# {literal(TITLE)}\n") and "### Details" in markdown.decode()

    pdf, content_type, _ = await artifact(stack, job.id, "report.pdf")
    assert content_type == "application/pdf" and pdf.startswith(b"%PDF")
    text = pdf_text(pdf, tmp_path)
    for shown in (TITLE, "North | East", "EUR 1.2M", "By region"):
        assert shown in text, text


async def test_only_the_asked_formats_are_rendered(stack: CourseStack) -> None:
    await stack.start_workers()
    job = await run_report(stack, report_spec(formats=["DOCUMENT_FORMAT_MARKDOWN"]))
    assert [a.name for a in job.result.artifacts] == ["report.md"]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await artifact(stack, job.id, "report.pdf")
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


async def test_a_table_row_of_the_wrong_width_is_refused_naming_it(stack: CourseStack) -> None:
    sections = [{"heading": "S", "tables": [{"columns": ["a", "b"], "rows": [{"cells": ["only one"]}]}]}]
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stack.jobs.SubmitJob(job_service_pb2.SubmitJobRequest(spec=report_spec(sections=sections)), timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "spec.render_report.sections[0].tables[0]: every row must have one cell per column" in str(
        err.value.details()
    )


async def test_artifacts_download_over_rest(stack: CourseStack, http: httpx.AsyncClient) -> None:
    await stack.start_workers()
    job = await run_report(stack, report_spec())
    got = await http.get(f"/v1/jobs/{job.id}/artifacts/report.pdf")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "application/pdf"
    assert got.headers["content-disposition"] == 'attachment; filename="report.pdf"'
    assert got.content.startswith(b"%PDF")
    html = await http.get(f"/v1/jobs/{job.id}/artifacts/report.html")
    assert html.headers["content-type"] == "text/html; charset=utf-8" and TITLE in html.text

    for missing in (f"/v1/jobs/{job.id}/artifacts/report.docx", "/v1/jobs/no-such-job/artifacts/report.pdf"):
        answer = await http.get(missing)
        assert answer.status_code == 404, answer.text
        status = json_format.ParseDict(answer.json(), status_pb2.Status())
        assert status.code == grpc.StatusCode.NOT_FOUND.value[0]

    # %2E%2E: an HTTP client would resolve a literal ".." before sending it.
    for bad in ("%2E%2E", ".env", "a%2F..%2Fb", "report%20pdf"):
        answer = await http.get(f"/v1/jobs/{job.id}/artifacts/{bad}")
        assert answer.status_code == 400, (bad, answer.text)
        violations = answer.json()["details"][0]["fieldViolations"]
        assert [v["field"] for v in violations] == ["name"], bad
    answer = await http.get("/v1/jobs/bad.id/artifacts/report.pdf")
    assert answer.status_code == 400 and answer.json()["details"][0]["fieldViolations"][0]["field"] == "job_id"


async def test_a_courses_documents_download_as_its_jobs_artifacts(stack: CourseStack, http: httpx.AsyncClient) -> None:
    await stack.start_workers()
    created = await stack.create(modules=1)
    events = await stack.events(created.job.id, timeout=60)
    assert events[-1].type == E.JOB_EVENT_TYPE_SUCCEEDED, events[-1].error
    pdf, content_type, metadata = await artifact(stack, created.job.id, "course.pdf")
    assert content_type == "application/pdf" and pdf.startswith(b"%PDF")
    assert metadata["content-disposition"] == 'attachment; filename="course.pdf"'
    # The course's own download is the same bytes, under its own name.
    document = await http.get(f"/v1/courses/{created.course.id}/document")
    assert document.status_code == 200 and document.content == pdf
    assert document.headers["content-disposition"] == f'attachment; filename="course-{created.course.id}.pdf"'
    html = await http.get(f"/v1/jobs/{created.job.id}/artifacts/course.html")
    assert html.status_code == 200 and html.headers["content-type"] == "text/html; charset=utf-8"


async def test_the_cli_submits_a_report_and_downloads_it(
    stack: CourseStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    await stack.start_workers()
    template = tmp_path / "report.json"
    template.write_text(json.dumps(REPORT))
    # The command runs its own event loop, as it does from a shell.
    code = await asyncio.to_thread(
        cli.main, ["submit", "report", "--file", str(template), "--watch", "--addr", stack.addr]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    job_id = out.splitlines()[0]
    saved = tmp_path / "q1.html"
    code = await asyncio.to_thread(
        cli.main, ["artifact", job_id, "report.html", "-o", str(saved), "--addr", stack.addr]
    )
    err = capsys.readouterr().err
    assert code == 0, err
    assert TITLE in saved.read_text() and f"wrote {saved}" in err

    code = await asyncio.to_thread(cli.main, ["artifact", job_id, "report.docx", "--addr", stack.addr])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("syllabus: NOT_FOUND: ") and len(err.strip().splitlines()) == 1, err
    code = await asyncio.to_thread(cli.main, ["artifact", job_id, "../x", "--addr", stack.addr])
    err = capsys.readouterr().err
    assert code == 2 and "INVALID_ARGUMENT" in err and "name:" in err, err
    code = await asyncio.to_thread(
        cli.main, ["submit", "report", "--file", str(tmp_path / "none.json"), "--addr", stack.addr]
    )
    err = capsys.readouterr().err
    assert (
        code == 2
        and err.strip() == f"syllabus: --file {tmp_path / 'none.json'}: cannot read it: No such file or directory"
    )


@pytest.mark.parametrize(
    "text",
    ["*not emphasis*", "a | b", "`code`", "[link](javascript:alert(1))", "<b>tag</b>", "&amp;", "~~x~~", "# x #", "\\"],
)
def test_cells_figures_and_headings_show_as_written(text: str) -> None:
    report = job_pb2.RenderReport(
        title=text,
        figures=[job_pb2.ReportFigure(label=text, value=text)],
        sections=[
            job_pb2.ReportSection(
                heading=text, tables=[job_pb2.ReportTable(columns=[text], rows=[job_pb2.ReportRow(cells=[text])])]
            )
        ],
    )
    page = render_report_html(report).decode()
    shown = html.escape(text, quote=False)
    assert f"<h1>{html.escape(text)}</h1>" in page and f"<h2>{shown}</h2>" in page
    assert f"<th>{shown}</th>" in page and page.count(f"<td>{shown}</td>") == 3


def test_a_report_of_only_a_title_renders_in_every_format() -> None:
    report = job_pb2.RenderReport(title="Nothing to report")
    assert render_report_markdown(report).startswith(b"# Nothing to report\n")
    assert b"<h1>Nothing to report</h1>" in render_report_html(report)
    assert render_report_pdf(report, None, "A4", datetime(2026, 1, 1, tzinfo=UTC)).startswith(b"%PDF")
