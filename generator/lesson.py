"""generate_lesson: write the lesson of one module of a stored course."""

from __future__ import annotations

from generator.deps import Deps
from generator.modules import write_part
from generator.tasks import LessonTask, ModuleContext
from syllabus.v1 import job_pb2
from syllabus.worker import Handler, JobContext


def lesson_handler(deps: Deps) -> Handler:
    async def generate_lesson(ctx: JobContext) -> job_pb2.JobResult:
        spec = ctx.job.spec.generate_lesson
        return await write_part(
            ctx,
            deps,
            "lesson",
            spec.course_id,
            spec.module_index,
            lambda course: LessonTask(ModuleContext.of(course, spec.module_index)),
            spec.model,
        )

    return generate_lesson
