"""Changes to a finished course through CourseService, on the real pipeline (NATS, the generator and renderer
workers, the embedded store): a part written again with an instruction, hand edits, modules reordered, added and
removed; each change a new version that is kept, refused on a stale expected_version, and rendered once."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status
from redis.asyncio import Redis

from cli import main as cli
from gateway.limits import Limits
from gateway.services import add_services
from syllabus.config import GeneratorConfig, LimitsConfig
from syllabus.courseversions import version_render_key
from syllabus.ids import new_id
from syllabus.store.base import JobQuery
from syllabus.v1 import course_pb2, course_service_pb2, course_service_pb2_grpc, job_pb2
from tests.course.conftest import TENANT, CourseStack
from tests.pipeline.conftest import wiring

S = course_service_pb2


async def finished_course(stack: CourseStack, modules: int) -> course_pb2.Course:
    created = await stack.create(modules=modules)
    events = await stack.events(created.job.id)
    assert events[-1].type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED, events[-1]
    return await get(stack, created.course.id)


async def get(stack: CourseStack, course_id: str, version: int = 0) -> course_pb2.Course:
    response: S.GetCourseResponse = await stack.courses.GetCourse(
        S.GetCourseRequest(course_id=course_id, version=version), timeout=10
    )
    return response.course


async def ended(stack: CourseStack, job: job_pb2.Job) -> None:
    events = await stack.events(job.id)
    assert events[-1].type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED, events[-1]


async def render_jobs(stack: CourseStack, course_id: str) -> list[job_pb2.Job]:
    jobs = (await stack.store.list_jobs(JobQuery(tenant=TENANT, kind="render_document", page_size=100))).jobs
    return [job for job in jobs if job.spec.render_document.course_id == course_id]


async def refused(call: Awaitable[Any]) -> Any:
    """The google.rpc.Status a call failed with."""
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await call
    status = rpc_status.from_call(failed.value)
    assert status is not None
    return status


def violations(status: Any) -> list[str]:
    fields: list[str] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields.extend(violation.field for violation in bad.field_violations)
    return fields


async def test_lesson_3_regenerated_simpler_changes_only_lesson_3(stack: CourseStack) -> None:
    await stack.start_workers()
    original = await finished_course(stack, modules=4)
    assert original.version == 1 and not original.pending_job_ids

    response = await stack.courses.RegenerateCoursePart(
        S.RegenerateCoursePartRequest(
            course_id=original.id,
            module_index=2,
            part=S.COURSE_PART_LESSON,
            instruction="simpler",
            expected_version=1,
        ),
        timeout=10,
    )
    assert response.course.version == 2 and list(response.course.pending_job_ids) == [response.job.id]
    assert response.job.spec.generate_lesson.instruction == "simpler"
    await ended(stack, response.job)
    renders = await render_jobs(stack, original.id)
    # The course's own render, then one for version 2.
    assert len(renders) == 2
    [render] = [job for job in renders if job.options.idempotency_key == version_render_key(original.id, 2)]
    await ended(stack, render)

    course = await get(stack, original.id)
    assert course.version == 2 and not course.pending_job_ids
    assert course.change == "regenerated the lesson of module 3: simpler"
    # Only lesson 3 changed: every other module, and module 3's quiz, is the same, byte for byte.
    for index in (0, 1, 3):
        assert course.modules[index].SerializeToString() == original.modules[index].SerializeToString()
    assert course.modules[2].quiz.SerializeToString() == original.modules[2].quiz.SerializeToString()
    lesson = course.modules[2].lesson.body_markdown
    assert lesson != original.modules[2].lesson.body_markdown
    assert "Written again as asked:** simpler" in lesson
    # The regenerated lesson went through the quality checks and its job's cost is counted.
    assert not [finding for finding in course.modules[2].findings if not finding.repaired]
    assert response.job.id in {cost.job_id for cost in course.costs}
    # The documents are the new version's, rendered once.
    assert {document.course_version for document in course.documents} == {2}
    assert all("/v2/" in document.object_name for document in course.documents)
    markdown = await stack.courses.GetCourseDocument(
        S.GetCourseDocumentRequest(course_id=course.id, format=course_pb2.DOCUMENT_FORMAT_MARKDOWN), timeout=10
    )
    assert b"Written again as asked:** simpler" in markdown.data

    # Version 1 is kept as it was, and readable.
    assert await get(stack, original.id, version=1) == original
    versions = await stack.courses.ListCourseVersions(S.ListCourseVersionsRequest(course_id=original.id), timeout=10)
    assert [(v.version, v.change) for v in versions.versions] == [
        (1, ""),
        (2, "regenerated the lesson of module 3: simpler"),
    ]
    missing = await refused(stack.courses.GetCourse(S.GetCourseRequest(course_id=original.id, version=3), timeout=10))
    assert missing.code == code_pb2.NOT_FOUND
    # So are version 1's documents.
    markdown_at = S.GetCourseDocumentRequest(course_id=course.id, format=course_pb2.DOCUMENT_FORMAT_MARKDOWN)
    markdown_at.version = 1
    earlier = await stack.courses.GetCourseDocument(markdown_at, timeout=10)
    assert b"Written again as asked" not in earlier.data and earlier.data != markdown.data
    assert original.modules[2].lesson.body_markdown.splitlines()[0].encode() in earlier.data
    markdown_at.version = 3
    assert (await refused(stack.courses.GetCourseDocument(markdown_at, timeout=10))).code == code_pb2.NOT_FOUND

    # A change made on version 1 is refused now: it would overwrite what version 2 did unseen.
    stale = await refused(
        stack.courses.UpdateLesson(
            S.UpdateLessonRequest(course_id=original.id, module_index=2, body_markdown="mine", expected_version=1),
            timeout=10,
        )
    )
    assert stale.code == code_pb2.ABORTED and "version 2, not 1" in stale.message
    assert (await get(stack, original.id)).version == 2


async def test_a_version_changed_again_before_its_render_has_no_documents_of_its_own(stack: CourseStack) -> None:
    await stack.start_workers()
    original = await finished_course(stack, modules=1)
    # No renderer runs now: version 2's render job waits, and version 3 comes first.
    await stack.stop_workers()
    for body in ("# Second", "# Third"):
        await stack.courses.UpdateLesson(
            S.UpdateLessonRequest(course_id=original.id, module_index=0, body_markdown=body), timeout=10
        )
    request = S.GetCourseDocumentRequest(course_id=original.id, format=course_pb2.DOCUMENT_FORMAT_MARKDOWN)
    request.version = 2
    never = await refused(stack.courses.GetCourseDocument(request, timeout=10))
    assert never.code == code_pb2.FAILED_PRECONDITION and "version 2" in never.message, never
    request.version = 1
    assert b"# Second" not in (await stack.courses.GetCourseDocument(request, timeout=10)).data


async def test_a_change_that_writes_parts_must_fit_the_tenants_budget(stack: CourseStack, redis: Redis) -> None:
    await stack.start_workers()
    original = await finished_course(stack, modules=1)

    def priced(course: course_pb2.Course) -> course_pb2.Course:
        # As if a billed model had written it: its changes are priced for that model.
        course.provider, course.model = "openai", "gpt-4o"
        return course

    await stack.store.update_course(original.id, priced)
    # A gateway whose tenants may spend one cent a month: a gpt-4o lesson or quiz costs more (generator.estimate).
    limits = Limits(
        LimitsConfig(budget_usd=0.01),
        redis=redis,
        namespace=stack.topology.namespace,
        store=stack.store,
        generator=GeneratorConfig(),
    )
    server = grpc.aio.server()
    streams = add_services(server, dataclasses.replace(wiring(stack.nc, stack.store, stack.topology), limits=limits))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            courses = course_service_pb2_grpc.CourseServiceStub(channel)
            for part in (S.COURSE_PART_LESSON, S.COURSE_PART_QUIZ):
                request = S.RegenerateCoursePartRequest(course_id=original.id, module_index=0, part=part)
                over = await refused(courses.RegenerateCoursePart(request, timeout=10))
                assert over.code == code_pb2.RESOURCE_EXHAUSTED and "the change would cost about" in over.message
            add = S.AddModuleRequest(course_id=original.id, title="More", objectives=["Do more"])
            assert (await refused(courses.AddModule(add, timeout=10))).code == code_pb2.RESOURCE_EXHAUSTED
            # A hand edit calls no model: the budget does not stop it.
            edit = S.UpdateLessonRequest(course_id=original.id, module_index=0, body_markdown="# Mine")
            assert (await courses.UpdateLesson(edit, timeout=10)).course.version == 2
    finally:
        await server.stop(grace=None)
        await streams.close()
    assert (await get(stack, original.id)).version == 2


async def test_hand_edits_and_module_changes_make_versions_each_rendered_once(stack: CourseStack) -> None:
    created = await stack.create(modules=3)
    # Not written yet (no worker runs): no change is taken.
    early = await refused(
        stack.courses.UpdateLesson(
            S.UpdateLessonRequest(course_id=created.course.id, module_index=0, body_markdown="# Mine"), timeout=10
        )
    )
    assert early.code == code_pb2.FAILED_PRECONDITION and "still being written" in early.message
    await stack.start_workers()
    events = await stack.events(created.job.id)
    assert events[-1].type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED
    original = await get(stack, created.course.id)
    course_id = original.id

    edited = await stack.courses.UpdateLesson(
        S.UpdateLessonRequest(
            course_id=course_id, module_index=1, body_markdown="# Mine\n\nBy hand.", expected_version=1
        ),
        timeout=10,
    )
    assert edited.course.version == 2 and edited.course.modules[1].lesson.body_markdown == "# Mine\n\nBy hand."
    assert edited.render_job.options.idempotency_key == version_render_key(course_id, 2)

    question = course_pb2.Question(text="Which is right?", choices=["this", "that"], answer_index=1, explanation="So.")
    asked = await stack.courses.UpdateQuestion(
        S.UpdateQuestionRequest(course_id=course_id, module_index=0, question_index=4, question=question), timeout=10
    )
    assert asked.course.version == 3 and asked.course.modules[0].quiz.questions[4] == question

    # Hand edits are validated, naming the field; nothing is changed by a refused one.
    for bad, field in (
        (course_pb2.Question(text="Q?", choices=["a", "A "], answer_index=0, explanation="e"), "question.choices"),
        (course_pb2.Question(text="Q?", choices=["a", "b"], answer_index=2, explanation="e"), "question.answer_index"),
    ):
        status = await refused(
            stack.courses.UpdateQuestion(
                S.UpdateQuestionRequest(course_id=course_id, module_index=0, question_index=0, question=bad), timeout=10
            )
        )
        assert status.code == code_pb2.INVALID_ARGUMENT and violations(status) == [field]
    status = await refused(
        stack.courses.UpdateLesson(
            S.UpdateLessonRequest(course_id=course_id, module_index=3, body_markdown="x"), timeout=10
        )
    )
    assert status.code == code_pb2.INVALID_ARGUMENT and violations(status) == ["module_index"]
    status = await refused(stack.courses.ReorderModules(S.ReorderModulesRequest(course_id=course_id, order=[0, 0, 1])))
    assert status.code == code_pb2.INVALID_ARGUMENT and violations(status) == ["order"]

    reordered = await stack.courses.ReorderModules(S.ReorderModulesRequest(course_id=course_id, order=[2, 0, 1]))
    titles = [module.title for module in original.modules]
    assert [m.title for m in reordered.course.modules] == [titles[2], titles[0], titles[1]]
    assert [m.index for m in reordered.course.modules] == [0, 1, 2]
    removed = await stack.courses.RemoveModule(S.RemoveModuleRequest(course_id=course_id, module_index=0))
    assert [m.title for m in removed.course.modules] == [titles[0], titles[1]] and removed.course.version == 5

    added = await stack.courses.AddModule(
        S.AddModuleRequest(
            course_id=course_id,
            title="Async Rust",
            summary="Futures and tasks.",
            objectives=["Write an async fn"],
            position=1,
        )
    )
    assert added.course.version == 6 and len(added.jobs) == 2
    for job in added.jobs:
        await ended(stack, job)

    renders = {job.options.idempotency_key: job for job in await render_jobs(stack, course_id) if not job.parent_id}
    # One render per change, none per part: versions 2 to 6, one job each (and the course's own, its first).
    assert len(await render_jobs(stack, course_id)) == 6
    assert sorted(renders) == sorted(version_render_key(course_id, version) for version in range(2, 7))
    # Each succeeds: one that finds the course moved on to a later version leaves it to that version's render.
    for render in renders.values():
        await ended(stack, render)
    course = await get(stack, course_id)
    assert [m.title for m in course.modules] == [titles[0], "Async Rust", titles[1]]
    assert course.modules[1].lesson.body_markdown and len(course.modules[1].quiz.questions) == 5
    assert course.modules[1].objectives == ["Write an async fn"]
    assert {document.course_version for document in course.documents} == {6}
    # The hand-edited lesson moved with its module and is kept in every version since.
    assert course.modules[2].lesson.body_markdown == "# Mine\n\nBy hand."
    versions = await stack.courses.ListCourseVersions(S.ListCourseVersionsRequest(course_id=course_id))
    assert [v.version for v in versions.versions] == [1, 2, 3, 4, 5, 6]
    assert (await get(stack, course_id, version=3)).modules[0].quiz.questions[4] == question


async def test_a_course_being_changed_takes_no_other_change_until_its_job_ended(stack: CourseStack) -> None:
    job = job_pb2.Job(id=new_id(), tenant=TENANT, kind="generate_lesson", state=job_pb2.JOB_STATE_QUEUED)
    await stack.store.insert_jobs([job])
    course = course_pb2.Course(id=new_id(), job_id=new_id(), tenant=TENANT, version=2, pending_job_ids=[job.id])
    course.modules.add(index=0, title="Ours").lesson.body_markdown = "# Ours"
    course.documents.add(format=course_pb2.DOCUMENT_FORMAT_MARKDOWN, course_version=1)
    await stack.store.insert_course(course)
    edit = S.UpdateLessonRequest(course_id=course.id, module_index=0, body_markdown="# Mine")

    busy = await refused(stack.courses.UpdateLesson(edit))
    assert busy.code == code_pb2.FAILED_PRECONDITION and f"being changed by job {job.id}" in busy.message

    def cancel(current: job_pb2.Job) -> job_pb2.Job:
        current.state = job_pb2.JOB_STATE_CANCELED
        return current

    await stack.store.update_job(job.id, cancel)
    # A job that ended without writing its part holds the course no longer.
    edited = await stack.courses.UpdateLesson(edit)
    assert edited.course.version == 3 and not edited.course.pending_job_ids
    assert edited.course.modules[0].lesson.body_markdown == "# Mine"


async def test_course_edit_command_regenerates_lists_versions_and_names_a_bad_field(
    stack: CourseStack, capsys: pytest.CaptureFixture[str]
) -> None:
    await stack.start_workers()
    course = await finished_course(stack, modules=3)
    base = ["course-edit", course.id, "--addr", stack.addr]

    regenerate = [*base, "--expect-version", "1", "--wait", "regenerate", "lesson", "3", "--instruction", "simpler"]
    code = await asyncio.to_thread(cli.main, regenerate)
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"course {course.id} is at version 2: regenerated the lesson of module 3: simpler" in err
    assert "generate_lesson job" in err and "succeeded" in err
    # --wait ends once the new version is rendered, not only written: the documents are version 2's.
    [render] = [job for job in await render_jobs(stack, course.id) if job.spec.render_document.course_version == 2]
    assert f"render_document job {render.id} succeeded" in err, err
    changed = await get(stack, course.id)
    assert "Written again as asked:** simpler" in changed.modules[2].lesson.body_markdown
    assert changed.documents and {document.course_version for document in changed.documents} == {2}

    assert await asyncio.to_thread(cli.main, [*base, "versions"]) == 0
    assert capsys.readouterr().err.splitlines() == [
        "   1  written",
        "   2  regenerated the lesson of module 3: simpler",
    ]

    question = ["question", "1", "1", "--text", "Q?", "--choice", "a", "--choice", "a", "--answer", "1"]
    code = await asyncio.to_thread(cli.main, [*base, *question, "--explanation", "e"])
    err = capsys.readouterr().err
    assert code == 2 and "INVALID_ARGUMENT" in err and "question.choices: must all differ" in err
    stale = await asyncio.to_thread(cli.main, [*base, "--expect-version", "1", "remove", "1"])
    assert stale == 1 and "ABORTED" in capsys.readouterr().err
