"""A course is one trace: CreateCourse's span, the course job's attempt under it, every lesson and quiz attempt
under that, and the render attempt under the attempt whose success completed the course (it submits the render)."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan

from syllabus.tracing.hook import TracingHook
from syllabus.v1 import job_pb2
from tests.conditions import eventually
from tests.course.conftest import CourseStack
from tests.tracing.conftest import Spans

MODULES = 3


def parent_id(span: ReadableSpan) -> int:
    assert span.parent is not None, span.name
    return span.parent.span_id


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


async def test_a_course_is_one_trace_from_the_call_to_its_render(stack: CourseStack, spans: Spans) -> None:
    await stack.start_workers(hooks=[TracingHook()])
    created = await stack.create(modules=MODULES)
    events = await stack.events(created.job.id, timeout=60)
    assert events[-1].type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED, events[-1]

    async def rendered() -> bool:
        children = [spans.named(f"generate_{part} attempt") for part in ("lesson", "quiz")]
        return bool(spans.named("render_document attempt")) and all(len(ended) == MODULES for ended in children)

    await eventually(rendered)
    (call,) = spans.named("syllabus.v1.CourseService/CreateCourse")
    assert call.context is not None and call.parent is None
    trace_id = call.context.trace_id
    assert created.job.trace_id == f"{trace_id:032x}"
    (course,) = spans.named("generate_course attempt")
    lessons = spans.named("generate_lesson attempt")
    quizzes = spans.named("generate_quiz attempt")
    (render,) = spans.named("render_document attempt")
    assert len(lessons) == len(quizzes) == MODULES
    every = [call, course, *lessons, *quizzes, render]
    assert {span.context.trace_id for span in every if span.context is not None} == {trace_id}
    assert spans.of_trace(trace_id) == [span for span in spans.finished() if span in every]
    assert parent_id(course) == span_id(call)
    assert course.attributes is not None and course.attributes["syllabus.outcome"] == "waiting"
    assert {parent_id(child) for child in [*lessons, *quizzes]} == {span_id(course)}
    assert parent_id(render) in {span_id(child) for child in [*lessons, *quizzes]}
