"""A lesson or quiz written again for a change of a finished course (CourseService.RegenerateCoursePart,
AddModule): the part is replaced in the course version the change made, with its quality findings, and the last
pending job of that version submits the version's one render job (syllabus.courseversions).

Safe to repeat: the part is stored only while the job is still pending on the course, so a redelivered job
changes nothing, and it submits the render job again under the same idempotency key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from generator.costs import job_usage, put_cost
from generator.deps import Deps
from generator.modules import Part, checked_answer, grounded_task, load_course, module_index
from generator.tasks import Task
from syllabus import lifecycle
from syllabus.courseversions import version_render_job
from syllabus.v1 import course_pb2, job_pb2
from syllabus.worker import JobContext, PermanentError

T = TypeVar("T")


async def rewrite_part(
    ctx: JobContext,
    deps: Deps,
    part: Part,
    course_id: str,
    index: int,
    version: int,
    task_for: Callable[[course_pb2.Course], Task[T]],
    check: Callable[[course_pb2.Course, T], list[course_pb2.QualityFinding]],
    selection: job_pb2.ModelSelection,
) -> job_pb2.JobResult:
    course = await load_course(deps, course_id)
    if ctx.job.id in course.pending_job_ids:
        module_index(course, index)
        # Written again from the course's sources too, as it was first written.
        task = await grounded_task(deps, course, task_for)
        answer, findings, item = await checked_answer(ctx, deps, task, selection, lambda value: check(course, value))

        def fill(current: course_pb2.Course) -> course_pb2.Course | None:
            if ctx.job.id not in current.pending_job_ids:
                return None  # an earlier delivery stored it first
            module = current.modules[index]
            getattr(module, part).CopyFrom(answer.value)
            # The findings of the part it replaces go with it.
            kept = [finding for finding in module.findings if finding.part.partition(".")[0] != part]
            del module.findings[:]
            module.findings.extend([*kept, *findings])
            put_cost(current, item)
            current.pending_job_ids.remove(ctx.job.id)
            current.update_time.CopyFrom(lifecycle.now())
            return current

        updated = await deps.store.update_course(course_id, fill)
        if updated is None:
            raise PermanentError(f"course {course_id} does not exist", error_type="NotFound")
        course = updated
    if course.version == version and not course.pending_job_ids:
        # The version is complete (a later version renders itself).
        await deps.submitter.submit(
            [version_render_job(course_id, version, ctx.job.tenant, ctx.job.options, deps.default_max_attempts)]
        )
    return job_pb2.JobResult(
        reference=f"courses/{course_id}/modules/{index}/{part}", usage=job_usage(course, ctx.job.id)
    )
