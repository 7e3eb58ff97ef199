"""What the generator asks a model for: each task renders its prompt, names the JSON shape of the answer, and
parses and validates the answer into protobuf messages.

A model's reply is untrusted input: anything that does not fit (bad JSON, a missing field, an answer index
outside the choices, the wrong number of modules) raises InvalidOutput with a message precise enough to send
back to the model in a repair request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from syllabus.v1 import course_pb2

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")

DEFAULT_MODULES = 6
DEFAULT_QUESTIONS = 5
DEFAULT_SUMMARY_WORDS = 120
CHOICES_PER_QUESTION = 4

LEVELS = {
    course_pb2.COURSE_LEVEL_UNSPECIFIED: "general",
    course_pb2.COURSE_LEVEL_BEGINNER: "beginner",
    course_pb2.COURSE_LEVEL_INTERMEDIATE: "intermediate",
    course_pb2.COURSE_LEVEL_ADVANCED: "advanced",
}

_SYSTEM = (
    "You are an experienced instructional designer and teacher. You write accurate, concrete, well-structured "
    "course material. Answer with one JSON object that matches the given JSON schema exactly, and nothing else."
)


class InvalidOutput(ValueError):
    """The model's reply does not fit the task (the message says how, for a repair request)."""


class Task(Protocol[T_co]):
    """One model call's worth of work. `kind` names it in costs and logs."""

    @property
    def kind(self) -> str: ...

    def system(self) -> str: ...

    def prompt(self) -> str: ...

    def schema(self) -> dict[str, Any]: ...

    def parse(self, data: Any) -> T_co: ...


def parse_reply(task: Task[T], text: str) -> T:
    """The reply text as the task's result, or InvalidOutput."""
    try:
        data = json.loads(_strip_fence(text))
    except json.JSONDecodeError as exc:
        raise InvalidOutput(f"the reply is not valid JSON ({exc.msg} at character {exc.pos})") from None
    return task.parse(data)


def _strip_fence(text: str) -> str:
    # Chat models asked for JSON sometimes wrap it in a ```json fence anyway.
    stripped = text.strip()
    if stripped.startswith("```") and stripped.endswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        stripped = stripped.rsplit("```", 1)[0]
    return stripped


def repair_prompt(task: Task[Any], reply: str, problem: str) -> str:
    """The second (and last) request after a reply that did not fit."""
    return (
        f"{task.prompt()}\n\nYour previous answer could not be used: {problem}.\n"
        f"Previous answer (possibly truncated):\n{reply[:4000]}\n\n"
        "Answer again with one complete JSON object matching the schema."
    )


# --- validation helpers ------------------------------------------------------------------------------------------


def _object(data: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(data, dict):
        raise InvalidOutput(f"{path or 'the answer'} must be a JSON object")
    return data


def _text(data: Mapping[str, Any], key: str, path: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        raise InvalidOutput(f"{path}{key} must be a non-empty string")
    return value.strip()


def _texts(data: Mapping[str, Any], key: str, path: str, minimum: int = 1) -> list[str]:
    value = data.get(key)
    if not isinstance(value, list) or len(value) < minimum:
        raise InvalidOutput(f"{path}{key} must be a list of at least {minimum} strings")
    items = []
    for i, item in enumerate(value):
        if not isinstance(item, str) or not item.strip():
            raise InvalidOutput(f"{path}{key}[{i}] must be a non-empty string")
        items.append(item.strip())
    return items


def _list(data: Mapping[str, Any], key: str, path: str, count: int) -> list[Any]:
    value = data.get(key)
    if not isinstance(value, list) or len(value) != count:
        got = len(value) if isinstance(value, list) else "none"
        raise InvalidOutput(f"{path}{key} must be a list of exactly {count} items (got {got})")
    return value


def _string_schema() -> dict[str, Any]:
    return {"type": "string"}


def _strings_schema(minimum: int = 1) -> dict[str, Any]:
    return {"type": "array", "items": {"type": "string"}, "minItems": minimum}


def _audience_line(audience: str, level: str, language: str) -> str:
    who = audience or "curious learners"
    return f"Audience: {who}. Level: {level}. Write in the language with BCP 47 tag {language!r}."


# --- the tasks ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outline:
    title: str
    description: str
    modules: tuple[course_pb2.Module, ...]


@dataclass(frozen=True)
class OutlineTask:
    prompt_text: str
    modules: int
    audience: str
    level: str
    language: str

    kind = "outline"

    def system(self) -> str:
        return _SYSTEM

    def prompt(self) -> str:
        return (
            f"Design a course from this request: {self.prompt_text!r}.\n"
            f"{_audience_line(self.audience, self.level, self.language)}\n"
            f"Give the course a title and a two or three sentence description, and exactly {self.modules} modules "
            "that build on each other. For each module give a short title, a one or two sentence summary and "
            "three to five concrete learning objectives that start with a verb."
        )

    def schema(self) -> dict[str, Any]:
        module = {
            "type": "object",
            "properties": {"title": _string_schema(), "summary": _string_schema(), "objectives": _strings_schema()},
            "required": ["title", "summary", "objectives"],
        }
        return {
            "type": "object",
            "properties": {
                "title": _string_schema(),
                "description": _string_schema(),
                "modules": {"type": "array", "items": module, "minItems": self.modules, "maxItems": self.modules},
            },
            "required": ["title", "description", "modules"],
        }

    def parse(self, data: Any) -> Outline:
        top = _object(data, "")
        modules = []
        titles: set[str] = set()
        for i, item in enumerate(_list(top, "modules", "", self.modules)):
            path = f"modules[{i}]."
            entry = _object(item, path.rstrip("."))
            title = _text(entry, "title", path)
            if title.casefold() in titles:
                raise InvalidOutput(f"{path}title repeats an earlier module title ({title!r})")
            titles.add(title.casefold())
            modules.append(
                course_pb2.Module(
                    index=i,
                    title=title,
                    summary=_text(entry, "summary", path),
                    objectives=_texts(entry, "objectives", path),
                )
            )
        return Outline(_text(top, "title", ""), _text(top, "description", ""), tuple(modules))


@dataclass(frozen=True)
class ModuleContext:
    """What a lesson or quiz writer knows about the course around its module."""

    course_title: str
    course_description: str
    audience: str
    level: str
    language: str
    index: int
    titles: tuple[str, ...]
    title: str
    summary: str
    objectives: tuple[str, ...]

    @classmethod
    def of(cls, course: course_pb2.Course, index: int) -> ModuleContext:
        module = course.modules[index]
        return cls(
            course_title=course.title,
            course_description=course.description,
            audience=course.audience,
            level=LEVELS.get(course.level, "general"),
            language=course.language or "en",
            index=index,
            titles=tuple(m.title for m in course.modules),
            title=module.title,
            summary=module.summary,
            objectives=tuple(module.objectives),
        )

    def describe(self) -> str:
        outline = "\n".join(f"  {i + 1}. {title}" for i, title in enumerate(self.titles))
        objectives = "\n".join(f"  - {objective}" for objective in self.objectives)
        return (
            f"Course: {self.course_title} - {self.course_description}\n"
            f"{_audience_line(self.audience, self.level, self.language)}\n"
            f"Course outline:\n{outline}\n"
            f"This is module {self.index + 1} of {len(self.titles)}: {self.title}. {self.summary}\n"
            f"Its objectives:\n{objectives}"
        )


@dataclass(frozen=True)
class LessonTask:
    module: ModuleContext

    kind = "lesson"

    def system(self) -> str:
        return _SYSTEM

    def prompt(self) -> str:
        return (
            f"{self.module.describe()}\n\n"
            "Write this module's lesson: a title, a body in Markdown (600 to 1200 words; use ## subheadings, short "
            "paragraphs, bullet lists and fenced code blocks where they help; do not repeat the title as a heading) "
            "and three to six key points a learner should remember."
        )

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {
                "title": _string_schema(),
                "body_markdown": _string_schema(),
                "key_points": _strings_schema(),
            },
            "required": ["title", "body_markdown", "key_points"],
        }

    def parse(self, data: Any) -> course_pb2.Lesson:
        top = _object(data, "")
        return course_pb2.Lesson(
            title=_text(top, "title", ""),
            body_markdown=_text(top, "body_markdown", ""),
            key_points=_texts(top, "key_points", ""),
        )


@dataclass(frozen=True)
class QuizTask:
    module: ModuleContext
    questions: int

    kind = "quiz"

    def system(self) -> str:
        return _SYSTEM

    def prompt(self) -> str:
        return (
            f"{self.module.describe()}\n\n"
            f"Write a quiz of exactly {self.questions} multiple-choice questions that check this module's "
            f"objectives. Each question has {CHOICES_PER_QUESTION} choices, exactly one of them correct; "
            "answer_index is the zero-based index of the correct choice; the explanation says why it is correct."
        )

    def schema(self) -> dict[str, Any]:
        question = {
            "type": "object",
            "properties": {
                "text": _string_schema(),
                "choices": _strings_schema(2),
                "answer_index": {"type": "integer", "minimum": 0},
                "explanation": _string_schema(),
            },
            "required": ["text", "choices", "answer_index", "explanation"],
        }
        return {
            "type": "object",
            "properties": {
                "questions": {
                    "type": "array",
                    "items": question,
                    "minItems": self.questions,
                    "maxItems": self.questions,
                }
            },
            "required": ["questions"],
        }

    def parse(self, data: Any) -> course_pb2.Quiz:
        top = _object(data, "")
        quiz = course_pb2.Quiz()
        for i, item in enumerate(_list(top, "questions", "", self.questions)):
            path = f"questions[{i}]."
            entry = _object(item, path.rstrip("."))
            choices = _texts(entry, "choices", path, minimum=2)
            answer = entry.get("answer_index")
            if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
                raise InvalidOutput(f"{path}answer_index must be an integer from 0 to {len(choices) - 1}")
            quiz.questions.append(
                course_pb2.Question(
                    text=_text(entry, "text", path),
                    choices=choices,
                    answer_index=answer,
                    explanation=_text(entry, "explanation", path),
                )
            )
        return quiz


@dataclass(frozen=True)
class SummaryTask:
    text: str
    max_words: int

    kind = "summary"

    def system(self) -> str:
        return "You summarize texts faithfully and concisely. Answer with one JSON object matching the schema."

    def prompt(self) -> str:
        return f"Summarize the following text in at most {self.max_words} words.\n\n---\n{self.text}"

    def schema(self) -> dict[str, Any]:
        return {"type": "object", "properties": {"summary": _string_schema()}, "required": ["summary"]}

    def parse(self, data: Any) -> str:
        summary = _text(_object(data, ""), "summary", "")
        if len(summary.split()) > self.max_words * 1.2:
            raise InvalidOutput(f"summary must have at most {self.max_words} words (got {len(summary.split())})")
        return summary
