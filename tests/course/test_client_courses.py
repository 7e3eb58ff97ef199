"""SyllabusClient's course methods against the course flow (offline provider): an estimate, a course written and
read back with its document, then every kind of change, each a version, and the errors as SyllabusError."""

from __future__ import annotations

import grpc
import pytest

from syllabus.client import SyllabusClient, SyllabusError
from syllabus.v1 import course_pb2, course_service_pb2, job_pb2
from tests.course.conftest import CourseStack

S = course_service_pb2


async def ended(client: SyllabusClient, job: job_pb2.Job) -> None:
    events = [event async for event in client.watch(job.id)]
    assert events[-1].type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED, events[-1]


async def test_a_course_written_read_and_changed_through_the_client(stack: CourseStack) -> None:
    await stack.start_workers()
    ask = job_pb2.GenerateCourse(prompt="Queues for beginners", modules=2)
    async with SyllabusClient.connect(stack.addr) as client:
        estimate = await client.create_course(ask, validate_only=True)
        assert estimate.estimate.model_calls > 0 and not estimate.course.id
        assert (await client.list_courses()).items == []

        created = await client.create_course(ask)
        await ended(client, created.job)
        course = await client.get_course(created.course.id)
        assert course.version == 1 and len(course.modules) == 2 and course.title
        assert [listed.id for listed in (await client.list_courses()).items] == [course.id]
        pdf = await client.course_document(course.id)
        assert pdf.content_type == "application/pdf" and pdf.data.startswith(b"%PDF")
        markdown = await client.course_document(course.id, course_pb2.DOCUMENT_FORMAT_MARKDOWN)
        assert course.title in markdown.data.decode()

        rewrite = await client.regenerate_course_part(
            S.RegenerateCoursePartRequest(
                course_id=course.id,
                module_index=0,
                part=S.COURSE_PART_LESSON,
                instruction="simpler",
                expected_version=1,
            )
        )
        await ended(client, rewrite.job)
        edited = await client.update_lesson(
            S.UpdateLessonRequest(course_id=course.id, module_index=1, body_markdown="# Mine", expected_version=2)
        )
        assert edited.course.version == 3 and edited.course.modules[1].lesson.body_markdown == "# Mine"
        await ended(client, edited.render_job)
        question = course_pb2.Question(text="Which?", choices=["this", "that"], answer_index=0, explanation="So.")
        asked = await client.update_question(
            S.UpdateQuestionRequest(course_id=course.id, module_index=0, question_index=0, question=question)
        )
        assert asked.course.modules[0].quiz.questions[0] == question
        reordered = await client.reorder_modules(S.ReorderModulesRequest(course_id=course.id, order=[1, 0]))
        assert reordered.course.modules[0].lesson.body_markdown == "# Mine"
        added = await client.add_module(
            S.AddModuleRequest(course_id=course.id, title="Retries", summary="Again.", objectives=["Retry a job"])
        )
        for job in added.jobs:
            await ended(client, job)
        removed = await client.remove_module(S.RemoveModuleRequest(course_id=course.id, module_index=2))
        assert [m.title for m in removed.course.modules] == [m.title for m in reordered.course.modules]

        versions = await client.course_versions(course.id)
        assert [v.version for v in versions] == [1, 2, 3, 4, 5, 6, 7]
        assert await client.get_course(course.id, version=1) == course

        # Errors come as SyllabusError: a stale version, a bad field, an unknown course.
        with pytest.raises(SyllabusError) as stale:
            await client.update_lesson(
                S.UpdateLessonRequest(course_id=course.id, module_index=0, body_markdown="x", expected_version=1)
            )
        assert stale.value.code == grpc.StatusCode.ABORTED
        with pytest.raises(SyllabusError) as bad:
            await client.update_lesson(S.UpdateLessonRequest(course_id=course.id, module_index=9, body_markdown="x"))
        assert bad.value.code == grpc.StatusCode.INVALID_ARGUMENT
        assert [v.field for v in bad.value.field_violations] == ["module_index"]
        with pytest.raises(SyllabusError) as missing:
            await client.get_course("no-such-course")
        assert missing.value.code == grpc.StatusCode.NOT_FOUND
