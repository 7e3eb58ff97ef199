"""What a course will cost before it is written: its model calls (an outline, then a lesson and a quiz per
module) at typical sizes, priced as the generator prices what it spends (generator.providers.prices).

The sizes are assumptions about this generator's prompts and answers, not measurements of one course; a course's
record holds what it really cost per step, and the tenant's spend is counted from that (syllabus.spend).
"""

from __future__ import annotations

from generator.grounding import OUTLINE_LINES, OUTLINE_WORDS
from generator.providers.prices import estimate_cost
from generator.retrieval import PASSAGES_PER_MODULE
from syllabus.config import GeneratorConfig
from syllabus.coursecontract import DEFAULT_MODULES
from syllabus.extraction import PASSAGE_WORDS
from syllabus.v1 import course_pb2, job_pb2

# (input, output) tokens of one call of each part.
OUTLINE = (600, 1_500)
LESSON = (900, 2_500)
QUIZ = (900, 1_000)
# Input tokens a grounded lesson or quiz call adds: its passages (syllabus.extraction.PASSAGE_WORDS words each, about
# four tokens for three words) with their ids and places.
GROUNDING = PASSAGES_PER_MODULE * (PASSAGE_WORDS * 4 // 3 + 20)
# And the grounded outline's: at most OUTLINE_LINES openings of OUTLINE_WORDS words, with their places.
OUTLINE_MATERIAL = OUTLINE_LINES * (OUTLINE_WORDS * 4 // 3 + 10)


def model_of(config: GeneratorConfig, selection: job_pb2.ModelSelection) -> tuple[str, str]:
    """The provider and model a course asking for `selection` is written with."""
    provider = selection.provider or config.provider
    default = {"gemini": config.gemini_model, "openai": config.openai_model}.get(provider, "")
    return provider, selection.model or default


def course_estimate(config: GeneratorConfig, course: job_pb2.GenerateCourse) -> course_pb2.CourseEstimate:
    """The course's model calls, tokens and price (0 offline or for a model without a listed price); the budget
    fields are left for the caller that knows the tenant's spend."""
    provider, model = model_of(config, course.model)
    modules = course.modules or DEFAULT_MODULES
    input_tokens = OUTLINE[0] + modules * (LESSON[0] + QUIZ[0])
    if course.source_ids:
        input_tokens += OUTLINE_MATERIAL + modules * 2 * GROUNDING
    output_tokens = OUTLINE[1] + modules * (LESSON[1] + QUIZ[1])
    return _priced(provider, model, modules, 1 + 2 * modules, input_tokens, output_tokens)


def parts_estimate(
    config: GeneratorConfig, course: course_pb2.Course, *, lessons: int, quizzes: int
) -> course_pb2.CourseEstimate:
    """What writing `lessons` lessons and `quizzes` quizzes of a stored course again will cost (a change to it),
    with the provider and model that wrote it."""
    provider, model = model_of(config, job_pb2.ModelSelection(provider=course.provider, model=course.model))
    grounding = GROUNDING if course.sources else 0
    input_tokens = lessons * (LESSON[0] + grounding) + quizzes * (QUIZ[0] + grounding)
    output_tokens = lessons * LESSON[1] + quizzes * QUIZ[1]
    return _priced(provider, model, len(course.modules), lessons + quizzes, input_tokens, output_tokens)


def _priced(
    provider: str, model: str, modules: int, calls: int, input_tokens: int, output_tokens: int
) -> course_pb2.CourseEstimate:
    return course_pb2.CourseEstimate(
        provider=provider,
        model=model,
        modules=modules,
        model_calls=calls,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        estimated_cost_usd=0.0 if provider == "offline" else estimate_cost(model, input_tokens, output_tokens),
        within_budget=True,
    )
