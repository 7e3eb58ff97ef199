"""render_document: a finished course becomes Markdown, HTML, PDF and the exports learning platforms import
(SCORM 1.2 and 2004 packages, QTI 2.1, Moodle XML, GIFT, EPUB) in the `artifacts` object store, recorded on the
course; then the course job that waited for it is finished with the course's total usage.

Rendering is deterministic (the PDF carries the course's creation time, not the clock), so a redelivered render
job writes the same bytes and the same document records again: repeating it changes nothing. For the same reason
a render that fails, or a course record that does not decode, would fail the same way on every attempt: both are
permanent errors, dead-lettered at once with their reason. Reading the store and writing the object store are
I/O and stay retryable.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from renderer.epub import render_epub
from renderer.html import render_html
from renderer.markdown import render_markdown
from renderer.moodle import render_gift, render_moodle_xml
from renderer.pdf import find_font_dir, render_pdf
from renderer.qti import render_qti
from renderer.scorm import render_scorm_12, render_scorm_2004
from syllabus import lifecycle
from syllabus.config import RendererConfig
from syllabus.coursecontract import course_usage, is_complete, module_written, render_progress
from syllabus.runtime import Runtime
from syllabus.v1 import course_pb2, job_pb2
from syllabus.worker import Defer, Handler, JobContext, PermanentError

log = logging.getLogger(__name__)
C = course_pb2
# States of a course job that will (again) wait for its children: the render job waits for that to finish it.
# The states lifecycle.finish_waiting finishes: still in its own attempt (the children were quick), or waiting.
_FINISHABLE = frozenset({job_pb2.JOB_STATE_RUNNING, job_pb2.JOB_STATE_WAITING})
_NOT_YET_WAITING = frozenset({job_pb2.JOB_STATE_QUEUED, job_pb2.JOB_STATE_RETRYING, job_pb2.JOB_STATE_SCHEDULED})


@dataclass(frozen=True)
class Format:
    extension: str
    content_type: str
    label: str


FORMATS: dict[course_pb2.DocumentFormat, Format] = {
    C.DOCUMENT_FORMAT_MARKDOWN: Format("md", "text/markdown; charset=utf-8", "Markdown"),
    C.DOCUMENT_FORMAT_HTML: Format("html", "text/html; charset=utf-8", "HTML"),
    C.DOCUMENT_FORMAT_PDF: Format("pdf", "application/pdf", "PDF"),
    C.DOCUMENT_FORMAT_SCORM_12: Format("scorm12.zip", "application/zip", "SCORM 1.2"),
    C.DOCUMENT_FORMAT_SCORM_2004: Format("scorm2004.zip", "application/zip", "SCORM 2004"),
    C.DOCUMENT_FORMAT_QTI_21: Format("qti21.zip", "application/zip", "QTI 2.1"),
    C.DOCUMENT_FORMAT_MOODLE_XML: Format("moodle.xml", "application/xml", "Moodle XML"),
    C.DOCUMENT_FORMAT_GIFT: Format("gift.txt", "text/plain; charset=utf-8", "GIFT"),
    C.DOCUMENT_FORMAT_EPUB: Format("epub", "application/epub+zip", "EPUB"),
}
# The formats that need nothing but the course (the PDF also needs fonts and a page size).
COURSE_RENDERERS: dict[course_pb2.DocumentFormat, Callable[[course_pb2.Course], bytes]] = {
    C.DOCUMENT_FORMAT_MARKDOWN: render_markdown,
    C.DOCUMENT_FORMAT_HTML: render_html,
    C.DOCUMENT_FORMAT_SCORM_12: render_scorm_12,
    C.DOCUMENT_FORMAT_SCORM_2004: render_scorm_2004,
    C.DOCUMENT_FORMAT_QTI_21: render_qti,
    C.DOCUMENT_FORMAT_MOODLE_XML: render_moodle_xml,
    C.DOCUMENT_FORMAT_GIFT: render_gift,
    C.DOCUMENT_FORMAT_EPUB: render_epub,
}


def object_name(course_id: str, document_format: course_pb2.DocumentFormat, version: int = 1) -> str:
    """Later versions of a course (edits) have names of their own, so a slow render of an earlier version cannot
    overwrite the documents of a later one."""
    folder = f"courses/{course_id}" if version <= 1 else f"courses/{course_id}/v{version}"
    return f"{folder}/course.{FORMATS[document_format].extension}"


class DocumentRenderer:
    def __init__(self, runtime: Runtime, config: RendererConfig) -> None:
        self._js = runtime.nc.jetstream()
        self._store = runtime.store
        self._bucket = runtime.topology.artifacts_bucket
        self._parents = runtime.parents
        self._font_dir: Path | None = find_font_dir(config.font_dir)
        self._page_size = config.page_size
        if self._font_dir is None:
            log.warning("no DejaVu fonts found: PDFs use built-in fonts and approximate non-Western-European text")

    async def render_document(self, ctx: JobContext) -> job_pb2.JobResult:
        spec = ctx.job.spec.render_document
        try:
            course = await self._store.get_course(spec.course_id)
        except DecodeError as exc:
            raise PermanentError(
                f"course {spec.course_id}: the stored record does not decode ({exc})", error_type="InvalidStoredData"
            ) from exc
        if course is None:
            raise PermanentError(f"course {spec.course_id} does not exist", error_type="NotFound")
        if spec.course_version and course.version != spec.course_version:
            # Changed again since: the later version's own render job renders it.
            return job_pb2.JobResult(reference=f"courses/{course.id}")
        if not is_complete(course):
            missing = [m.index + 1 for m in course.modules if not module_written(m)]
            raise PermanentError(
                f"course {course.id} is not written yet (modules without lesson or quiz: {missing or 'all'})",
                error_type="InvalidJob",
            )
        formats = list(dict.fromkeys(spec.formats)) or list(FORMATS)
        bucket = await self._js.object_store(self._bucket)
        documents = []
        for step, document_format in enumerate(formats):
            shape = FORMATS[document_format]
            await self._progress(ctx, render_progress(step, len(formats)), f"rendering {shape.label}")
            data = await self._render(document_format, course)
            name = object_name(course.id, document_format, course.version)
            await bucket.put(name, data)
            documents.append(
                C.Document(
                    format=document_format,
                    object_name=name,
                    content_type=shape.content_type,
                    size_bytes=len(data),
                    sha256=hashlib.sha256(data).hexdigest(),
                    course_version=course.version,
                )
            )
        course = await self._record(course.id, course.version, documents)
        reference = f"courses/{course.id}"
        if ctx.job.parent_id:
            await self._finish_parent(ctx, job_pb2.JobResult(reference=reference, usage=course_usage(course)))
        return job_pb2.JobResult(reference=reference)

    async def _render(self, document_format: course_pb2.DocumentFormat, course: course_pb2.Course) -> bytes:
        render: Callable[[], bytes]
        if document_format == C.DOCUMENT_FORMAT_PDF:
            render = functools.partial(render_pdf, course, self._font_dir, self._page_size)
        else:
            render = functools.partial(COURSE_RENDERERS[document_format], course)
        # Laying out a long course takes a while: it runs on a thread so the worker's event loop keeps serving
        # heartbeats and other jobs.
        what = f"the {FORMATS[document_format].label} document of {course.id}"
        guarded = functools.partial(guarded_render, render, what)
        return await asyncio.get_running_loop().run_in_executor(None, guarded)

    async def _record(self, course_id: str, version: int, documents: list[course_pb2.Document]) -> course_pb2.Course:
        rendered = {document.format for document in documents}

        def record(current: course_pb2.Course) -> course_pb2.Course | None:
            if current.version != version:
                return None  # changed since it was read: the new version's own render job records its documents
            kept = [document for document in current.documents if document.format not in rendered]
            if list(current.documents) == sorted([*kept, *documents], key=lambda d: d.format):
                return None  # the same documents are recorded already (a repeated render)
            del current.documents[:]
            current.documents.extend(sorted([*kept, *documents], key=lambda d: d.format))
            current.update_time.CopyFrom(lifecycle.now())
            return current

        course = await self._store.update_course(course_id, record)
        if course is None:
            raise PermanentError(f"course {course_id} does not exist", error_type="NotFound")
        return course

    async def _progress(self, ctx: JobContext, percent: float, message: str) -> None:
        if ctx.job.parent_id:
            await self._parents.progress(ctx.job.parent_id, percent, message)
        await ctx.progress(percent, message)

    async def _finish_parent(self, ctx: JobContext, result: job_pb2.JobResult) -> None:
        """Has the worker finish the course job once this render's own success is stored, if it can be finished."""
        parent_id = ctx.job.parent_id
        parent = await self._store.get_job(parent_id)
        if parent is None:
            return
        if parent.state in _FINISHABLE:
            ctx.finish_parent(result)
            return
        resuming = (
            parent.state == job_pb2.JOB_STATE_FAILED
            and bool(parent.errors)
            and parent.errors[-1].type == lifecycle.CHILD_FAILED
        )
        if parent.state in _NOT_YET_WAITING or resuming:
            # Its own attempt is not running (it waits to be retried), or a retried child is resuming it: either
            # way it waits for its children again shortly, and only a waiting (or still running) parent can be
            # finished.
            raise Defer(
                1.0, f"course job {parent_id} is {job_pb2.JobState.Name(parent.state)}; finishing it once it waits"
            )


def guarded_render(render: Callable[[], bytes], what: str) -> bytes:
    # Only what the renderer itself raises is permanent: the executor failing to run it (shutting down) is not.
    try:
        return render()
    except Exception as exc:
        raise PermanentError(f"rendering {what} failed: {type(exc).__name__}: {exc}", error_type="RenderError") from exc


def build_handlers(runtime: Runtime, config: RendererConfig) -> dict[str, Handler]:
    # Imported here: renderer.reports builds on this module's formats.
    from renderer.reports import ReportRenderer

    return {
        "render_document": DocumentRenderer(runtime, config).render_document,
        "render_report": ReportRenderer(runtime.nc, runtime.topology, config).render_report,
    }
