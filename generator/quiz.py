"""generate_quiz: write the quiz of one module of a stored course."""

from __future__ import annotations

from generator.changes import rewrite_part
from generator.deps import Deps
from generator.modules import write_part
from generator.quality import check_citations, check_quiz
from generator.tasks import ModuleContext, QuizTask
from syllabus.coursecontract import DEFAULT_QUESTIONS
from syllabus.v1 import course_pb2, job_pb2
from syllabus.worker import Handler, JobContext


def quiz_handler(deps: Deps) -> Handler:
    async def generate_quiz(ctx: JobContext) -> job_pb2.JobResult:
        spec = ctx.job.spec.generate_quiz
        questions = spec.questions or DEFAULT_QUESTIONS

        def check(course: course_pb2.Course, quiz: course_pb2.Quiz) -> list[course_pb2.QualityFinding]:
            # Twins are looked for in the quizzes stored so far: one written at the same time is not seen.
            others = [
                (i, module.quiz)
                for i, module in enumerate(course.modules)
                if i != spec.module_index and module.HasField("quiz")
            ]
            cited = [
                (f"quiz.questions[{i}]", question.citation)
                for i, question in enumerate(quiz.questions)
                if question.HasField("citation")
            ]
            return check_quiz(quiz, course.modules[spec.module_index].objectives, others) + check_citations(
                cited, course.sources
            )

        def task_for(course: course_pb2.Course) -> QuizTask:
            return QuizTask(ModuleContext.of(course, spec.module_index), questions, spec.instruction)

        if spec.course_version:
            return await rewrite_part(
                ctx, deps, "quiz", spec.course_id, spec.module_index, spec.course_version, task_for, check, spec.model
            )
        return await write_part(ctx, deps, "quiz", spec.course_id, spec.module_index, task_for, check, spec.model)

    return generate_quiz
