"""Quality checks in the course pipeline on real NATS, with the model faked at HTTP level: a quiz that fails
them is asked for once more with the problems quoted; what the repair fixes is recorded as repaired, what it does
not is kept and flagged for review, and the course completes either way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from generator.providers.gemini import GeminiProvider
from generator.providers.registry import Registry
from syllabus.v1 import course_service_pb2
from tests.course.conftest import CourseStack
from tests.course.fake_http import FakeHTTP, Reply, Request, gemini_json, gemini_prompt
from tests.course.test_course_flow import types

OBJECTIVES = ["Explain ownership and borrowing", "Write functions that return a Result"]


def question(text: str, correct: str, explanation: str) -> dict[str, Any]:
    return {
        "text": text,
        "choices": [correct, "A copy", "A panic", "Nothing"],
        "answer_index": 0,
        "explanation": explanation,
    }


GOOD_QUIZ = {
    "questions": [
        question("Who has ownership of a value after a move?", "The new binding", "A move transfers ownership."),
        question("What does a function that can fail return?", "A Result", "A Result carries the value or error."),
        question("What does borrowing give a function?", "A reference", "A borrow lends a reference to the value."),
        question("What does the ? operator do with an Err?", "Returns it", "It returns the error to the caller."),
        question("When is an owned value dropped?", "At scope end", "Values are dropped when their owner leaves."),
    ]
}
# Two correct answers: the right choice appears twice.
BAD_QUIZ = {
    "questions": [
        {**item, "choices": ["A Result", "A Result", "A panic", "Nothing"]} if i == 1 else item
        for i, item in enumerate(GOOD_QUIZ["questions"])
    ]
}
SENTENCE = "Ownership and borrowing decide who may change a value, and a function that can fail returns a Result. "


def model(quiz: Callable[[int], dict[str, Any]]) -> Callable[[Request], Reply]:
    """Answers each task by its prompt; `quiz(n)` is the n-th quiz answer (0: the first, 1: the repair)."""
    quizzes = 0

    def answer(request: Request) -> Reply:
        nonlocal quizzes
        prompt = gemini_prompt(request)
        if prompt.startswith("Design a course"):
            module = {"title": "Ownership", "summary": "Who owns what.", "objectives": OBJECTIVES}
            return gemini_json({"title": "Rust", "description": "Rust for Python developers.", "modules": [module]})
        if "Write this module's lesson" in prompt:
            return gemini_json({"title": "Ownership", "body_markdown": SENTENCE * 40, "key_points": ["Moves."]})
        quizzes += 1
        return gemini_json(quiz(quizzes - 1))

    return answer


async def course_with(stack: CourseStack, fake_api: FakeHTTP, quiz: Callable[[int], dict[str, Any]]) -> Any:
    fake_api.default = model(quiz)
    registry = Registry(
        "gemini",
        {"gemini": lambda name: GeminiProvider(api_key="k", model="gemini-2.5-flash", base_url=fake_api.url)},
    )
    await stack.start_workers(stack.models(registry))
    created = await stack.create(modules=1)
    events = await stack.events(created.job.id)
    await registry.aclose()
    assert types(events)[-1] == "SUCCEEDED", events[-1]
    request = course_service_pb2.GetCourseRequest(course_id=created.course.id)
    return (await stack.courses.GetCourse(request, timeout=10)).course


def quiz_prompts(fake_api: FakeHTTP) -> list[str]:
    prompts = [gemini_prompt(request) for request in fake_api.requests]
    return [prompt for prompt in prompts if "Write a quiz" in prompt]


async def test_a_bad_quiz_is_repaired_once_with_the_problem_quoted(stack: CourseStack, fake_api: FakeHTTP) -> None:
    course = await course_with(stack, fake_api, lambda n: BAD_QUIZ if n == 0 else GOOD_QUIZ)
    first, repair = quiz_prompts(fake_api)
    assert "failed these quality checks" not in first
    assert "choices 1 and 2 are the same ('A Result')" in repair and '"A Result", "A Result"' in repair
    [module] = course.modules
    assert list(module.quiz.questions[1].choices) == ["A Result", "A copy", "A panic", "Nothing"]
    [finding] = module.findings
    assert (finding.check, finding.part, finding.repaired) == ("distinct_choices", "quiz.questions[1]", True)
    # Both calls of the quiz job are in its one cost item.
    [quiz_cost] = [cost for cost in course.costs if cost.kind == "generate_quiz"]
    assert quiz_cost.input_tokens == 200


async def test_a_quiz_the_repair_does_not_fix_is_kept_and_flagged(stack: CourseStack, fake_api: FakeHTTP) -> None:
    course = await course_with(stack, fake_api, lambda n: BAD_QUIZ)
    assert len(quiz_prompts(fake_api)) == 2
    [module] = course.modules
    assert list(module.quiz.questions[1].choices) == ["A Result", "A Result", "A panic", "Nothing"]
    [finding] = module.findings
    assert (finding.check, finding.part, finding.repaired) == ("distinct_choices", "quiz.questions[1]", False)
    assert course.documents


async def test_offline_courses_pass_the_checks_without_a_repair(stack: CourseStack) -> None:
    await stack.start_workers()
    created = await stack.create(modules=3)
    assert types(await stack.events(created.job.id))[-1] == "SUCCEEDED"
    course = await stack.store.get_course(created.course.id)
    assert course is not None and all(not module.findings for module in course.modules)
