"""generate_quiz: write the quiz of one module of a stored course."""

from __future__ import annotations

from generator.deps import Deps
from generator.modules import write_part
from generator.tasks import ModuleContext, QuizTask
from syllabus.coursecontract import DEFAULT_QUESTIONS
from syllabus.v1 import job_pb2
from syllabus.worker import Handler, JobContext


def quiz_handler(deps: Deps) -> Handler:
    async def generate_quiz(ctx: JobContext) -> job_pb2.JobResult:
        spec = ctx.job.spec.generate_quiz
        questions = spec.questions or DEFAULT_QUESTIONS
        return await write_part(
            ctx,
            deps,
            "quiz",
            spec.course_id,
            spec.module_index,
            lambda course: QuizTask(ModuleContext.of(course, spec.module_index), questions),
            spec.model,
        )

    return generate_quiz
