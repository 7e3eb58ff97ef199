"""The course contract: what the gateway, the generator and the renderer agree on about a course.

The sizes a course gets when its request leaves them open, when a course is written through (ready to render),
the bands of the course job's progress each service moves it through, and the usage a finished course reports.
Each service reads these facts from here, so none of them can drift from another's copy.
"""

from __future__ import annotations

from syllabus.v1 import course_pb2, job_pb2

# A request's 0 or empty string means "let the service choose" (see GenerateCourse and GenerateQuiz).
DEFAULT_MODULES = 6
DEFAULT_QUESTIONS = 5
DEFAULT_LANGUAGE = "en"

# The course job's progress, in bands that only grow: the generator writes the outline from OUTLINE_START to
# OUTLINE_DONE, the lessons and quizzes take it to CHILDREN_DONE, the renderer's documents to RENDER_DONE, and
# the course job's success to 100.
OUTLINE_START = 2.0
OUTLINE_DONE = 10.0
CHILDREN_DONE = 90.0
RENDER_DONE = 99.0
# Every module is written by two children: its lesson and its quiz.
PARTS_PER_MODULE = 2


def module_written(module: course_pb2.Module) -> bool:
    return module.HasField("lesson") and module.HasField("quiz")


def is_complete(course: course_pb2.Course) -> bool:
    """Every module has its lesson and its quiz: the course can be rendered."""
    return bool(course.modules) and all(module_written(m) for m in course.modules)


def children_progress(parts_written: int, modules: int) -> float:
    """The course job's progress once `parts_written` of its modules' lessons and quizzes are stored."""
    return OUTLINE_DONE + (CHILDREN_DONE - OUTLINE_DONE) * parts_written / (PARTS_PER_MODULE * modules)


def render_progress(step: int, steps: int) -> float:
    """The course job's progress while document `step` (from 0) of `steps` is rendered: strictly above
    CHILDREN_DONE, because a waiting parent's progress only moves forward."""
    return CHILDREN_DONE + (RENDER_DONE - CHILDREN_DONE) * (step + 1) / (steps + 1)


def course_usage(course: course_pb2.Course) -> job_pb2.Usage:
    """What the course job reports as its usage: the course's totals over all of its jobs."""
    return job_pb2.Usage(
        input_tokens=course.input_tokens,
        output_tokens=course.output_tokens,
        estimated_cost_usd=course.estimated_cost_usd,
    )
