"""generate_lesson: write the lesson of one module of a stored course."""

from __future__ import annotations

from generator.changes import rewrite_part
from generator.deps import Deps
from generator.modules import write_part
from generator.quality import check_citations, check_lesson
from generator.tasks import LessonTask, ModuleContext
from syllabus.v1 import course_pb2, job_pb2
from syllabus.worker import Handler, JobContext


def lesson_handler(deps: Deps) -> Handler:
    async def generate_lesson(ctx: JobContext) -> job_pb2.JobResult:
        spec = ctx.job.spec.generate_lesson

        def check(course: course_pb2.Course, lesson: course_pb2.Lesson) -> list[course_pb2.QualityFinding]:
            module = ModuleContext.of(course, spec.module_index)
            cited = [("lesson", citation) for citation in lesson.citations]
            return check_lesson(lesson, module.objectives, module.level, module.language) + check_citations(
                cited, course.sources
            )

        def task_for(course: course_pb2.Course) -> LessonTask:
            return LessonTask(ModuleContext.of(course, spec.module_index), spec.instruction)

        if spec.course_version:
            return await rewrite_part(
                ctx, deps, "lesson", spec.course_id, spec.module_index, spec.course_version, task_for, check, spec.model
            )
        return await write_part(ctx, deps, "lesson", spec.course_id, spec.module_index, task_for, check, spec.model)

    return generate_lesson
