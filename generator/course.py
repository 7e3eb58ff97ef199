"""generate_course: the outline, then one lesson job and one quiz job per module, then wait for them.

The course job's own attempt ends in WAITING; its children write the modules, the last of them submits the
render job, and the render job finishes the course job (generator.modules, renderer.documents). Every step is
safe to repeat: a redelivered course job keeps the stored outline and its children's idempotency keys return
the jobs submitted the first time.
"""

from __future__ import annotations

from generator.costs import put_cost
from generator.deps import Deps
from generator.grounding import outline_material
from generator.modules import child_key, child_options, load_course, render_job
from generator.tasks import LEVELS, OutlineTask
from syllabus import lifecycle
from syllabus.coursecontract import (
    DEFAULT_LANGUAGE,
    DEFAULT_MODULES,
    OUTLINE_DONE,
    OUTLINE_START,
    course_usage,
    is_complete,
)
from syllabus.submit import build_job
from syllabus.v1 import course_pb2, job_pb2
from syllabus.worker import Handler, JobContext, PermanentError, WaitForChildren


def course_handler(deps: Deps) -> Handler:
    async def generate_course(ctx: JobContext) -> job_pb2.JobResult:
        job = ctx.job
        spec = job.spec.generate_course
        course = await load_course(deps, spec.course_id)
        if course.documents and is_complete(course):
            # Redelivered after the course was finished and rendered: nothing left to do.
            return job_pb2.JobResult(reference=f"courses/{course.id}", usage=course_usage(course))
        if not course.modules:
            course = await _write_outline(ctx, deps, course, spec)
        children = [
            _child(deps, job, part, i, spec, course.id)
            for i in range(len(course.modules))
            for part in ("lesson", "quiz")
        ]
        await deps.submitter.submit(children)
        if is_complete(course):
            # Every child finished before this (redelivered) attempt: make sure the render job exists.
            await deps.submitter.submit(
                [render_job(course.id, job.id, job.tenant, job.options, deps.default_max_attempts)]
            )
        count = len(course.modules)
        raise WaitForChildren(f"writing {_count(count, 'lesson')} and {_count(count, 'quiz')}")

    return generate_course


async def _write_outline(
    ctx: JobContext, deps: Deps, course: course_pb2.Course, spec: job_pb2.GenerateCourse
) -> course_pb2.Course:
    modules = spec.modules or DEFAULT_MODULES
    await ctx.progress(OUTLINE_START, f"writing the outline ({_count(modules, 'module')})")
    task = OutlineTask(
        prompt_text=course.prompt,
        modules=modules,
        audience=course.audience,
        level=LEVELS.get(course.level, "general"),
        language=course.language or DEFAULT_LANGUAGE,
        material=await outline_material(deps.sources, course),
    )
    answer = await deps.models.run(task, spec.model)
    outline = answer.value
    item = answer.cost_item(ctx.job)

    def fill(current: course_pb2.Course) -> course_pb2.Course | None:
        if current.modules:
            # An earlier delivery stored an outline first; its children may be running on it already.
            return None
        current.title = outline.title
        current.description = outline.description
        current.modules.extend(outline.modules)
        current.provider = answer.provider
        current.model = answer.model
        current.offline_draft = answer.offline
        put_cost(current, item)
        current.update_time.CopyFrom(lifecycle.now())
        return current

    updated = await deps.store.update_course(course.id, fill)
    if updated is None:
        raise PermanentError(f"course {course.id} does not exist", error_type="NotFound")
    await ctx.progress(OUTLINE_DONE, f"outline ready: {_count(len(updated.modules), 'module')}")
    return updated


def _child(
    deps: Deps, parent: job_pb2.Job, part: str, index: int, spec: job_pb2.GenerateCourse, course_id: str
) -> job_pb2.Job:
    if part == "lesson":
        child_spec = job_pb2.JobSpec(
            generate_lesson=job_pb2.GenerateLesson(course_id=course_id, module_index=index, model=spec.model)
        )
    else:
        child_spec = job_pb2.JobSpec(
            generate_quiz=job_pb2.GenerateQuiz(course_id=course_id, module_index=index, model=spec.model)
        )
    return build_job(
        child_spec,
        child_options(parent.options, child_key(parent.id, part, index)),
        tenant=parent.tenant,
        default_max_attempts=deps.default_max_attempts,
        parent_id=parent.id,
    )


def _count(number: int, noun: str) -> str:
    """ "1 module", "6 modules", "2 quizzes"."""
    plural = noun + ("zes" if noun.endswith("z") else "s")
    return f"{number} {noun if number == 1 else plural}"
