"""Every course the API accepts renders, through the real job path on real NATS (CreateCourse, the offline
provider, the renderer): module counts from 1 to 20, contents of one and of two pages, non-Latin prompts. And a
render that cannot succeed (invalid stored data, a broken font) is dead-lettered after one attempt, with its
reason, instead of being retried."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
import unicodedata
from pathlib import Path

import pytest

from renderer.documents import FORMATS, DocumentRenderer
from renderer.pdf import find_font_dir
from syllabus.config import RendererConfig
from syllabus.runtime import Runtime
from syllabus.v1 import admin_service_pb2, course_pb2, job_pb2, job_service_pb2
from syllabus.worker import Worker
from tests.course.conftest import WORKER_CONFIG, CourseStack
from tests.course.offline_course import pdf_fonts, pdf_text
from tests.course.test_course_flow import children, document, types

E = job_pb2
RUST = "Intro to Rust for Python developers"


@pytest.mark.parametrize(
    ("prompt", "modules"),
    [
        (RUST, 1),
        (RUST, 7),
        # The contents of an A4 PDF: 12 modules fill the first page exactly, 13 need a second.
        (RUST, 12),
        (RUST, 13),
        (RUST, 20),
        ("Введение в Rust для разработчиков Python", 8),
        # Deliberately other scripts than Latin, full-width punctuation included.
        ("面向 Python 开发者的 Rust 入门：所有权与借用", 3),  # noqa: RUF001
        ("Ελληνικά για αρχάριους 🚀 ✨", 2),  # noqa: RUF001
        ("مقدمة في لغة رست لمطوري بايثون", 2),
    ],
)
async def test_every_course_renders_through_the_job_path(
    stack: CourseStack, prompt: str, modules: int, tmp_path: Path
) -> None:
    await stack.start_workers()
    created = await stack.create(prompt=prompt, modules=modules)
    events = await stack.events(created.job.id, timeout=120)
    assert types(events)[-1] == "SUCCEEDED", events[-1].error
    course = await stack.store.get_course(created.course.id)
    assert course is not None and len(course.modules) == modules
    # Every format the renderer makes, a course asking for none in particular.
    assert {d.format for d in course.documents} == set(FORMATS)
    [render] = await children(stack, created.job.id, "render_document")
    assert render.attempt == 1 and not render.errors
    steps = [event.progress.message for event in events if event.progress.message]
    assert f"outline ready: {modules} module{'' if modules == 1 else 's'}" in steps

    text = pdf_text((await document(stack, course.id)).data, tmp_path).replace(" ", "")
    html = (await document(stack, course.id, course_pb2.DOCUMENT_FORMAT_HTML)).data.decode()
    markdown = (await document(stack, course.id, course_pb2.DOCUMENT_FORMAT_MARKDOWN)).data.decode()
    fonts = pdf_fonts(course, find_font_dir(""))
    for shown in [course.title, *(module.title for module in course.modules)]:
        assert shown in html and shown in markdown
        # pdftotext reorders right-to-left text (drawn unshaped, left to right): it cannot give Arabic back.
        if not any(unicodedata.bidirectional(char) in ("R", "AL") for char in shown):
            assert fonts.text(shown).replace(" ", "") in text


def broken_renderer(stack: CourseStack, font_dir: Path) -> Worker:
    """A renderer worker whose font directory holds a DejaVuSans.ttf that is not a font."""
    (font_dir / "DejaVuSans.ttf").write_bytes(b"this is not a font")
    renderer = DocumentRenderer(stack.runtime(), RendererConfig(font_dir=str(font_dir)))
    return Worker(
        service="renderer",
        handlers={"render_document": renderer.render_document},
        runtime=Runtime.build(stack.nc, stack.store, stack.topology),
        config=dataclasses.replace(WORKER_CONFIG, concurrency=1),
    )


async def dead_letter(stack: CourseStack, job_id: str) -> admin_service_pb2.DeadLetter:
    response = await stack.admin.GetDeadLetter(admin_service_pb2.GetDeadLetterRequest(job_id=job_id), timeout=10)
    letter: admin_service_pb2.DeadLetter = response.dead_letter
    return letter


async def test_a_course_whose_render_fails_is_dead_lettered_after_one_attempt(
    stack: CourseStack, tmp_path: Path
) -> None:
    # The generator as usual; the renderer with a broken font, so every PDF render fails the same way.
    await stack.start_workers()
    [renderer] = [(worker, task) for worker, task in stack.workers if worker.service == "renderer"]
    renderer[0].stop()
    await renderer[1]
    stack.workers.remove(renderer)
    broken = broken_renderer(stack, tmp_path)
    stack.workers.append((broken, asyncio.create_task(broken.run())))

    created = await stack.create(modules=2)
    events = await stack.events(created.job.id)
    assert types(events)[-1] == "FAILED"
    [render] = await children(stack, created.job.id, "render_document")
    assert events[-1].error.type == "ChildFailed" and render.id in events[-1].error.message
    assert render.state == E.JOB_STATE_FAILED and render.attempt == 1
    [error] = render.errors
    assert error.type == "RenderError" and error.permanent
    assert f"rendering the PDF document of {created.course.id} failed: TTLibError" in error.message
    letter = await dead_letter(stack, render.id)
    assert letter.job.attempt == 1 and [e.message for e in letter.job.errors] == [error.message]
    assert "permanent" in letter.reason


async def test_a_course_record_that_does_not_decode_is_dead_lettered_at_once(
    stack: CourseStack, tmp_path: Path
) -> None:
    course = course_pb2.Course(id="garbled", tenant="default", prompt="Bread baking")
    await stack.store.insert_course(course)
    with sqlite3.connect(tmp_path / "store.db") as db:
        db.execute("UPDATE courses SET data = ? WHERE id = ?", (b"\xff\xff\xff\xff", course.id))
    await stack.start_workers()
    spec = E.JobSpec(render_document=E.RenderDocument(course_id=course.id))
    job = (await stack.jobs.SubmitJob(job_service_pb2.SubmitJobRequest(spec=spec), timeout=10)).job
    events = await stack.events(job.id)
    assert types(events).count("STARTED") == 1 and types(events)[-1] == "FAILED"
    assert events[-1].error.type == "InvalidStoredData"
    assert "course garbled: the stored record does not decode" in events[-1].error.message
    letter = await dead_letter(stack, job.id)
    assert letter.job.attempt == 1 and "permanent" in letter.reason
