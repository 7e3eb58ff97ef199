"""Children of a course job: writing one module's lesson or quiz into the stored course, and the fan-in.

Fan-in is idempotent by construction: the set of modules whose lesson and quiz are stored IS the set of
finished children. Whoever stores the last part submits the render job, under an idempotency key derived from
the course job, so two children finishing at once, or one redelivered, still make exactly one render job.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from generator.costs import job_usage, put_cost
from generator.deps import Deps
from generator.tasks import Task
from syllabus import lifecycle
from syllabus.coursecontract import children_progress, is_complete
from syllabus.submit import build_job
from syllabus.v1 import course_pb2, job_pb2
from syllabus.worker import JobContext, PermanentError

Part = Literal["lesson", "quiz"]


def child_key(course_job_id: str, part: str, index: int) -> str:
    return f"{course_job_id}:{part}:{index}"


def render_key(course_job_id: str) -> str:
    return f"{course_job_id}:render"


def child_options(parent: job_pb2.JobOptions, idempotency_key: str) -> job_pb2.JobOptions:
    """A child runs like its parent (priority, attempts, time limit, labels) but now, under its own key."""
    options = job_pb2.JobOptions(
        priority=parent.priority, max_attempts=parent.max_attempts, idempotency_key=idempotency_key
    )
    options.labels.update(parent.labels)
    if parent.HasField("timeout"):
        options.timeout.CopyFrom(parent.timeout)
    return options


def written(course: course_pb2.Course, part: Part) -> int:
    return sum(1 for module in course.modules if module.HasField(part))


def render_job(
    course_id: str, course_job_id: str, tenant: str, options: job_pb2.JobOptions, default_max_attempts: int
) -> job_pb2.Job:
    return build_job(
        job_pb2.JobSpec(render_document=job_pb2.RenderDocument(course_id=course_id)),
        child_options(options, render_key(course_job_id)),
        tenant=tenant,
        default_max_attempts=default_max_attempts,
        parent_id=course_job_id,
    )


async def load_course(deps: Deps, course_id: str) -> course_pb2.Course:
    course = await deps.store.get_course(course_id)
    if course is None:
        raise PermanentError(f"course {course_id} does not exist", error_type="NotFound")
    return course


async def write_part(
    ctx: JobContext,
    deps: Deps,
    part: Part,
    course_id: str,
    index: int,
    task_for: Callable[[course_pb2.Course], Task[Any]],
    selection: job_pb2.ModelSelection,
) -> job_pb2.JobResult:
    course = await load_course(deps, course_id)
    if index >= len(course.modules):
        raise PermanentError(
            f"course {course_id} has {len(course.modules)} modules; there is no module {index}", error_type="InvalidJob"
        )
    stored = False
    if not course.modules[index].HasField(part):
        answer = await deps.models.run(task_for(course), selection)
        item = answer.cost_item(ctx.job)

        def fill(current: course_pb2.Course) -> course_pb2.Course | None:
            nonlocal stored
            stored = False
            if index >= len(current.modules) or current.modules[index].HasField(part):
                # An earlier delivery of this job stored it first; its result stands.
                return None
            getattr(current.modules[index], part).CopyFrom(answer.value)
            put_cost(current, item)
            current.update_time.CopyFrom(lifecycle.now())
            stored = True
            return current

        updated = await deps.store.update_course(course_id, fill)
        if updated is None:
            raise PermanentError(f"course {course_id} does not exist", error_type="NotFound")
        course = updated
    if ctx.job.parent_id:
        if stored:
            await _report(deps, ctx.job.parent_id, course, part)
        if is_complete(course):
            await deps.submitter.submit(
                [render_job(course_id, ctx.job.parent_id, ctx.job.tenant, ctx.job.options, deps.default_max_attempts)]
            )
    return job_pb2.JobResult(
        reference=f"courses/{course_id}/modules/{index}/{part}", usage=job_usage(course, ctx.job.id)
    )


async def _report(deps: Deps, parent_id: str, course: course_pb2.Course, part: Part) -> None:
    total = len(course.modules)
    done = written(course, "lesson") + written(course, "quiz")
    percent = children_progress(done, total)
    await deps.parents.progress(parent_id, percent, f"{part} {written(course, part)} of {total} written")
