"""The course flow end to end on real NATS: CreateCourse → outline → lessons and quizzes in parallel → render →
course SUCCEEDED, read back through CourseService; redelivery, a failing child and its dead-letter retry."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2
from grpc_status import rpc_status

from generator.handlers import build_handlers
from generator.providers.base import ModelReply, ModelRequest
from generator.providers.errors import ProviderError
from generator.providers.offline import OfflineProvider, offline_summary
from generator.providers.registry import Registry
from generator.tasks import LessonTask
from renderer.documents import FORMATS
from syllabus.store.base import JobQuery
from syllabus.v1 import admin_service_pb2, course_pb2, course_service_pb2, job_pb2, job_service_pb2
from syllabus.worker import JobContext
from tests.course.conftest import TENANT, CourseStack
from tests.parent_ends import record_parent_ends

E = job_pb2


def types(events: list[job_pb2.JobEvent]) -> list[str]:
    return [E.JobEventType.Name(event.type).removeprefix("JOB_EVENT_TYPE_") for event in events]


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "course.pdf"
    path.write_bytes(data)
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return " ".join(text.split())


async def document(stack: CourseStack, course_id: str, document_format: int = 0) -> Any:
    return await stack.courses.GetCourseDocument(
        course_service_pb2.GetCourseDocumentRequest(course_id=course_id, format=document_format),  # type: ignore[arg-type]
        timeout=10,
    )


async def children(stack: CourseStack, parent_id: str, kind: str = "") -> list[job_pb2.Job]:
    return (await stack.store.list_jobs(JobQuery(tenant=TENANT, parent_id=parent_id, kind=kind))).jobs


async def test_a_six_module_course_is_written_rendered_and_served(stack: CourseStack, tmp_path: Path) -> None:
    await stack.start_workers()
    created = await stack.create(modules=6)
    assert created.course.id and created.job.kind == "generate_course"
    assert created.job.spec.generate_course.course_id == created.course.id
    events = await stack.events(created.job.id)
    assert types(events)[-1] == "SUCCEEDED", events[-1]
    steps = [event.progress.message for event in events if event.type == E.JOB_EVENT_TYPE_PROGRESS]
    assert "outline ready: 6 modules" in steps
    assert any(step.startswith("lesson ") and step.endswith(" of 6 written") for step in steps)
    assert any(step.startswith("quiz ") for step in steps)
    assert "rendering PDF" in steps
    percents = [event.progress.percent for event in events if event.type == E.JOB_EVENT_TYPE_PROGRESS]
    assert percents == sorted(percents)

    course = (
        await stack.courses.GetCourse(course_service_pb2.GetCourseRequest(course_id=created.course.id), timeout=10)
    ).course
    assert len(course.modules) == 6
    assert all(m.lesson.body_markdown and len(m.quiz.questions) == 5 for m in course.modules)
    assert course.offline_draft and "offline draft" in course.description
    assert (course.provider, course.model) == ("offline", "offline-draft-1")
    # One cost item per job that called a model (the outline, 6 lessons, 6 quizzes), summed into the totals.
    assert len(course.costs) == 13 and len({cost.job_id for cost in course.costs}) == 13
    assert course.input_tokens == sum(cost.input_tokens for cost in course.costs) > 0
    assert course.output_tokens == sum(cost.output_tokens for cost in course.costs) > 0
    assert events[-1].result.reference == f"courses/{course.id}"
    assert events[-1].result.usage.input_tokens == course.input_tokens
    assert {d.format for d in course.documents} == set(FORMATS)
    assert all(d.size_bytes > 0 and len(d.sha256) == 64 for d in course.documents)
    lessons = await children(stack, created.job.id, "generate_lesson")
    assert len(lessons) == 6 and all(job.state == E.JOB_STATE_SUCCEEDED for job in lessons)
    assert {cost.job_id for cost in course.costs} >= {job.id for job in lessons}

    pdf = await document(stack, course.id)
    assert pdf.content_type == "application/pdf" and pdf.data.startswith(b"%PDF-")
    text = pdf_text(pdf.data, tmp_path)
    for module in course.modules:
        assert module.lesson.title in text
    assert "Contents" in text and "Answer key" in text

    html = await document(stack, course.id, course_pb2.DOCUMENT_FORMAT_HTML)
    assert html.content_type == "text/html; charset=utf-8"
    page = html.data.decode()
    assert '<nav class="toc"' in page and 'href="#answer-key"' in page and '<section id="answer-key">' in page
    assert all(module.lesson.title in page for module in course.modules)

    markdown = await document(stack, course.id, course_pb2.DOCUMENT_FORMAT_MARKDOWN)
    assert markdown.content_type.startswith("text/markdown") and b"## Answer key" in markdown.data

    listed = await stack.courses.ListCourses(course_service_pb2.ListCoursesRequest(), timeout=10)
    assert [c.id for c in listed.courses] == [course.id]


async def test_redelivering_children_changes_nothing(stack: CourseStack) -> None:
    await stack.start_workers()
    created = await stack.create(modules=2)
    assert types(await stack.events(created.job.id))[-1] == "SUCCEEDED"
    before = await stack.store.get_course(created.course.id)
    kids_before = await children(stack, created.job.id)
    assert sorted(job.kind for job in kids_before) == ["generate_lesson"] * 2 + ["generate_quiz"] * 2 + [
        "render_document"
    ]
    handlers = build_handlers(stack.runtime(), stack.models(), 3)
    for child in kids_before:
        if child.kind == "render_document":
            continue
        for _ in range(2):
            result = await handlers[child.kind](JobContext(job=child, attempt=2, _report=_no_progress))
            assert result.reference.startswith(f"courses/{created.course.id}/modules/")
            assert result.usage == child.result.usage
    # The course job itself, delivered again after it finished, changes nothing either.
    course_job = await stack.store.get_job(created.job.id)
    assert course_job is not None
    again = await handlers["generate_course"](JobContext(job=course_job, attempt=2, _report=_no_progress))
    assert again.reference == f"courses/{created.course.id}"
    assert await stack.store.get_course(created.course.id) == before
    kids_after = await children(stack, created.job.id)
    assert [job.id for job in kids_after] == [job.id for job in kids_before]
    assert len(await children(stack, created.job.id, "render_document")) == 1


async def _no_progress(percent: float, message: str) -> None:
    return None


class BrokenLesson:
    """The offline provider, except that one module's lesson is refused for good until it is fixed."""

    name = "offline"
    model = "offline-draft-1"
    billed = False

    def __init__(self, module_index: int) -> None:
        self.broken = True
        self._index = module_index
        self._offline = OfflineProvider()

    async def generate(self, request: ModelRequest) -> ModelReply:
        if self.broken and isinstance(request.task, LessonTask) and request.task.module.index == self._index:
            raise ProviderError("the model refused this lesson", error_type="ProviderRejected", retryable=False)
        return await self._offline.generate(request)

    async def aclose(self) -> None:
        return None


async def test_a_failing_child_fails_the_course_and_its_dead_letter_retry_completes_it(stack: CourseStack) -> None:
    provider = BrokenLesson(module_index=1)
    await stack.start_workers(stack.models(Registry("offline", {"offline": lambda model: provider})))
    created = await stack.create(modules=3)
    first = await stack.events(created.job.id)
    assert types(first)[-1] == "FAILED"
    failure = first[-1].error
    [broken] = [
        job for job in await children(stack, created.job.id, "generate_lesson") if job.state == E.JOB_STATE_FAILED
    ]
    assert broken.spec.generate_lesson.module_index == 1
    assert failure.type == "ChildFailed"
    assert broken.id in failure.message and "generate_lesson" in failure.message
    assert "the model refused this lesson" in failure.message and "deadletters retry" in failure.message
    letter = await stack.admin.GetDeadLetter(admin_service_pb2.GetDeadLetterRequest(job_id=broken.id), timeout=10)
    assert letter.dead_letter.job.parent_id == created.job.id
    with pytest.raises(grpc.aio.AioRpcError) as not_yet:
        await document(stack, created.course.id)
    assert not_yet.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    provider.broken = False
    await stack.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=broken.id), timeout=10)
    resumed = await stack.events(created.job.id, after=first[-1].sequence)
    assert types(resumed)[0] == "RESUMED" and types(resumed)[-1] == "SUCCEEDED"
    course = await stack.store.get_course(created.course.id)
    assert course is not None and course.modules[1].HasField("lesson") and len(course.documents) == len(FORMATS)
    assert (await document(stack, created.course.id)).data.startswith(b"%PDF-")
    assert len(await children(stack, created.job.id, "render_document")) == 1


async def test_course_errors_and_idempotent_creation(stack: CourseStack) -> None:
    # No workers: the course stays unwritten.
    with pytest.raises(grpc.aio.AioRpcError) as missing:
        await stack.courses.GetCourse(course_service_pb2.GetCourseRequest(course_id="nope"), timeout=10)
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as no_document:
        await document(stack, "nope")
    assert no_document.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as invalid:
        await stack.create(prompt="x")
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "course.prompt" in (invalid.value.details() or "")

    first = await stack.create(modules=4, idempotency_key="rust-1")
    again = await stack.create(modules=4, idempotency_key="rust-1")
    assert (again.course.id, again.job.id) == (first.course.id, first.job.id)
    assert first.course.language == "en" and first.job.spec.generate_course.modules == 4
    listed = await stack.courses.ListCourses(course_service_pb2.ListCoursesRequest(), timeout=10)
    assert [course.id for course in listed.courses] == [first.course.id]
    with pytest.raises(grpc.aio.AioRpcError) as unrendered:
        await document(stack, first.course.id, course_pb2.DOCUMENT_FORMAT_HTML)
    assert unrendered.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    status = rpc_status.from_call(unrendered.value)
    assert status is not None and status.code == code_pb2.FAILED_PRECONDITION


async def test_only_the_formats_asked_for_are_rendered(stack: CourseStack) -> None:
    await stack.start_workers()
    created = await stack.create(modules=1)
    assert types(await stack.events(created.job.id))[-1] == "SUCCEEDED"
    # Render again, standalone, as HTML only: the other documents stay, none added twice.
    render = E.JobSpec(
        render_document=E.RenderDocument(course_id=created.course.id, formats=[course_pb2.DOCUMENT_FORMAT_HTML])
    )
    job = (await stack.jobs.SubmitJob(job_service_pb2.SubmitJobRequest(spec=render), timeout=10)).job
    assert types(await stack.events(job.id))[-1] == "SUCCEEDED"
    course = await stack.store.get_course(created.course.id)
    assert course is not None and sorted(d.format for d in course.documents) == sorted(FORMATS)


async def test_a_course_job_is_stored_done_only_after_every_child_it_waited_for(
    stack: CourseStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    ends = record_parent_ends(stack.store, monkeypatch)
    await stack.start_workers()
    created = await stack.create(modules=2)
    assert types(await stack.events(created.job.id))[-1] == "SUCCEEDED"
    [(parent_id, state, children_then)] = ends
    assert (parent_id, state) == (created.job.id, E.JOB_STATE_SUCCEEDED)
    # Two lessons, two quizzes and the render.
    assert children_then == [E.JOB_STATE_SUCCEEDED] * 5


async def test_summaries_go_through_the_providers(stack: CourseStack) -> None:
    await stack.start_workers()
    text = "NATS keeps messages. Workers ack them when done. Unacked ones come back later."
    spec = E.JobSpec(summarize_text=E.SummarizeText(text=text, max_words=9))
    job = (await stack.jobs.SubmitJob(job_service_pb2.SubmitJobRequest(spec=spec), timeout=10)).job
    events = await stack.events(job.id)
    assert events[-1].result.text == offline_summary(text, 9) == "NATS keeps messages. Workers ack them when done."
    assert events[-1].result.usage.input_tokens > 0


async def test_a_course_job_for_a_missing_course_fails_permanently(stack: CourseStack) -> None:
    await stack.start_workers()
    spec = E.JobSpec(generate_course=E.GenerateCourse(prompt="Ghost course", course_id="missing"))
    job = (await stack.jobs.SubmitJob(job_service_pb2.SubmitJobRequest(spec=spec), timeout=10)).job
    events = await asyncio.wait_for(stack.events(job.id), 30)
    assert types(events)[-1] == "FAILED" and events[-1].error.type == "NotFound"
