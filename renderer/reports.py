"""render_report: a report (title, key figures, Markdown sections with tables) becomes Markdown, HTML and PDF in
the `artifacts` object store under jobs/<job_id>/report.<extension>, named in the job's result.

A report is one Markdown document, and each format is that document rendered by the code that renders lessons
(renderer.commonmark, renderer.html, renderer.pdf_text): the formats cannot disagree, and a report gets the same
safety as a lesson (raw HTML shows as text, unsafe links stay text). Table cells, figures and headings are data,
not Markdown, so their punctuation is escaped.

Rendering is deterministic (the PDF carries the job's creation time), so a redelivered job writes the same
objects again. A render that fails would fail on every attempt: it is permanent. Writing the object store is I/O
and stays retryable.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from nats.aio.client import Client

from renderer.commonmark import embed
from renderer.documents import FORMATS, guarded_render
from renderer.html import markdown_html, page
from renderer.pdf import find_font_dir, render_markdown_pdf
from syllabus.artifacts import job_object_name
from syllabus.config import RendererConfig
from syllabus.topology import Topology
from syllabus.v1 import course_pb2, job_pb2
from syllabus.worker import JobContext, PermanentError

log = logging.getLogger(__name__)
C = course_pb2
ARTIFACT_STEM = "report"
# A report is a document, not a course: the course exports (SCORM, QTI, ...) have nothing to hold.
REPORT_FORMATS = (C.DOCUMENT_FORMAT_MARKDOWN, C.DOCUMENT_FORMAT_HTML, C.DOCUMENT_FORMAT_PDF)
# What means something inline (a heading's text and a table cell are inline): emphasis, code, links, raw HTML,
# entities, strikethrough, cell ends, a heading's closing hashes. A backslash makes each one itself.
_PUNCTUATION = re.compile(r"([\\`*_\[\]<>|&~#])")


def artifact_name(document_format: course_pb2.DocumentFormat) -> str:
    return f"{ARTIFACT_STEM}.{FORMATS[document_format].extension}"


def literal(text: str) -> str:
    """Text that Markdown shows as it is, on one line."""
    return _PUNCTUATION.sub(r"\\\1", " ".join(text.split()))


def _table(table: job_pb2.ReportTable) -> list[str]:
    width = len(table.columns)
    out = [f"**{literal(table.caption)}**", ""] if table.caption else []
    out.append("| " + " | ".join(literal(column) for column in table.columns) + " |")
    out.append("|" + " --- |" * width)
    for row in table.rows:
        # Validation makes rows as wide as the header; a stored job from elsewhere is laid out all the same.
        cells = [*row.cells[:width], *[""] * (width - len(row.cells))]
        out.append("| " + " | ".join(literal(cell) for cell in cells) + " |")
    return [*out, ""]


def body_markdown(report: job_pb2.RenderReport) -> str:
    """Everything under the title: the key figures as a table, then the sections."""
    out: list[str] = []
    if report.figures:
        out += ["| Key figure | Value |", "| --- | --- |"]
        out += [f"| {literal(figure.label)} | {literal(figure.value)} |" for figure in report.figures]
        out.append("")
    for section in report.sections:
        out += [f"## {literal(section.heading)}", ""]
        if section.body_markdown.strip():
            # A section's own headings sit below its heading, and a fence it leaves open is closed.
            out += [embed(section.body_markdown.strip(), 2), ""]
        for table in section.tables:
            out += _table(table)
    return "\n".join(out)


def render_report_markdown(report: job_pb2.RenderReport) -> bytes:
    head = [f"# {literal(report.title)}", ""]
    if report.subtitle:
        head += [f"*{literal(report.subtitle)}*", ""]
    return ("\n".join(head) + "\n" + body_markdown(report) + "\n").encode()


def render_report_html(report: job_pb2.RenderReport) -> bytes:
    header = [f"<header><h1>{escape(' '.join(report.title.split()))}</h1>"]
    if report.subtitle:
        header.append(f'<p class="meta">{escape(report.subtitle)}</p>')
    header.append("</header>")
    return page(report.title, "en", [*header, markdown_html(body_markdown(report))])


def render_report_pdf(report: job_pb2.RenderReport, font_dir: Path | None, page_size: str, created: datetime) -> bytes:
    return render_markdown_pdf(
        " ".join(report.title.split()),
        report.subtitle,
        body_markdown(report),
        font_dir=font_dir,
        page_size=page_size,
        created=created,
    )


class ReportRenderer:
    def __init__(self, nc: Client, topology: Topology, config: RendererConfig) -> None:
        self._js = nc.jetstream()
        self._bucket = topology.artifacts_bucket
        self._font_dir: Path | None = find_font_dir(config.font_dir)
        self._page_size = config.page_size

    async def render_report(self, ctx: JobContext) -> job_pb2.JobResult:
        job = ctx.job
        report = job.spec.render_report
        formats = list(dict.fromkeys(report.formats)) or list(REPORT_FORMATS)
        unfit = [C.DocumentFormat.Name(f) for f in formats if f not in REPORT_FORMATS]
        if unfit:
            raise PermanentError(f"a report is rendered as Markdown, HTML or PDF, not {unfit}", error_type="InvalidJob")
        # The job's own time, not the clock: a redelivered job writes the same bytes.
        created = job.create_time.ToDatetime(tzinfo=UTC) if job.HasField("create_time") else datetime(2000, 1, 1)
        bucket = await self._js.object_store(self._bucket)
        artifacts: list[job_pb2.Artifact] = []
        for step, document_format in enumerate(formats):
            shape = FORMATS[document_format]
            await ctx.progress(100.0 * step / len(formats), f"rendering {shape.label}")
            data = await self._render(document_format, report, created, job.id)
            name = artifact_name(document_format)
            await bucket.put(job_object_name(job.id, name), data)
            artifacts.append(
                job_pb2.Artifact(
                    name=name,
                    content_type=shape.content_type,
                    size_bytes=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                )
            )
        return job_pb2.JobResult(reference=f"jobs/{job.id}", artifacts=artifacts)

    async def _render(
        self, document_format: course_pb2.DocumentFormat, report: job_pb2.RenderReport, created: datetime, job_id: str
    ) -> bytes:
        render: Callable[[], bytes]
        if document_format == C.DOCUMENT_FORMAT_PDF:
            render = functools.partial(render_report_pdf, report, self._font_dir, self._page_size, created)
        elif document_format == C.DOCUMENT_FORMAT_HTML:
            render = functools.partial(render_report_html, report)
        else:
            render = functools.partial(render_report_markdown, report)
        what = f"the {FORMATS[document_format].label} report of job {job_id}"
        # Long reports take a while to lay out: on a thread, the worker's loop keeps serving heartbeats.
        return await asyncio.get_running_loop().run_in_executor(None, functools.partial(guarded_render, render, what))
