"""What the generator asks a model for: each task renders its prompt and declares the shape of the answer
once (generator.shapes), from which come both the JSON schema sent to the model and the reading of the answer
into protobuf messages.

A model's reply is untrusted input: anything that does not fit (bad JSON, a missing field, an answer index
outside the choices, the wrong number of modules) raises InvalidOutput with a message precise enough to send
back to the model in a repair request.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from generator.quality import band
from generator.shapes import Integer, InvalidOutput, Items, Record, Shape, Text, Texts, field_path
from syllabus.coursecontract import DEFAULT_LANGUAGE
from syllabus.v1 import course_pb2

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")

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


def quality_repair_prompt(task: Task[Any], reply: str, problems: Sequence[str]) -> str:
    """The second (and last) request after a reply that fit but failed quality checks (generator.quality)."""
    listed = "\n".join(f"- {problem}" for problem in problems)
    return (
        f"{task.prompt()}\n\nYour previous answer failed these quality checks:\n{listed}\n"
        f"Previous answer (possibly truncated):\n{reply[:4000]}\n\n"
        "Answer again with one complete JSON object matching the schema, with every problem above fixed."
    )


def repair_prompt(task: Task[Any], reply: str, problem: str) -> str:
    """The second (and last) request after a reply that did not fit."""
    return (
        f"{task.prompt()}\n\nYour previous answer could not be used: {problem}.\n"
        f"Previous answer (possibly truncated):\n{reply[:4000]}\n\n"
        "Answer again with one complete JSON object matching the schema."
    )


class Replied(ABC, Generic[T]):
    """A task whose schema and parsing both come from the one shape of its reply."""

    @abstractmethod
    def reply(self) -> Shape[T]: ...

    def schema(self) -> dict[str, Any]:
        return self.reply().schema()

    def parse(self, data: Any) -> T:
        return self.reply().read(data, "")


def _audience_line(audience: str, level: str, language: str) -> str:
    who = audience or "curious learners"
    return (
        f"Audience: {who}. Level: {level}. Write every text of your reply (titles, summaries, objectives, lessons, "
        f"key points, questions, choices, explanations) in the language with BCP 47 tag {language!r}; code and "
        "its identifiers stay as they are."
    )


# --- the tasks ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outline:
    title: str
    description: str
    modules: tuple[course_pb2.Module, ...]


@dataclass(frozen=True)
class OutlineTask(Replied[Outline]):
    prompt_text: str
    modules: int
    audience: str
    level: str
    language: str
    # A grounded course's sources, one line per page or section: where it is and how it opens
    # (generator.grounding.outline_material). Empty: not grounded.
    material: tuple[str, ...] = ()

    kind = "outline"

    def system(self) -> str:
        return _SYSTEM

    def prompt(self) -> str:
        grounded = ""
        if self.material:
            listed = "\n".join(f"- {line}" for line in self.material)
            grounded = (
                "\nThe course is taught from the teacher's own sources: follow their material and order, so every "
                f"module can be written from them. What they hold (the opening of each page or section):\n{listed}"
            )
        return (
            f"Design a course from this request: {self.prompt_text!r}.\n"
            f"{_audience_line(self.audience, self.level, self.language)}\n"
            f"Give the course a title and a two or three sentence description, and exactly {self.modules} modules "
            "that build on each other. For each module give a short title, a one or two sentence summary and "
            f"three to five concrete learning objectives that start with a verb.{grounded}"
        )

    def reply(self) -> Shape[Outline]:
        module = Record(course_pb2.Module, {"title": Text(), "summary": Text(), "objectives": Texts()})
        return Record(
            _outline,
            {"title": Text(), "description": Text(), "modules": Items(module, self.modules)},
            check=_titles_differ,
        )


def _outline(title: str, description: str, modules: list[course_pb2.Module]) -> Outline:
    for index, module in enumerate(modules):
        module.index = index
    return Outline(title, description, tuple(modules))


def _titles_differ(values: Mapping[str, Any], path: str) -> None:
    titles: set[str] = set()
    for i, module in enumerate(values["modules"]):
        if module.title.casefold() in titles:
            where = field_path(path, f"modules[{i}].title")
            raise InvalidOutput(f"{where} repeats an earlier module title ({module.title!r})")
        titles.add(module.title.casefold())


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
            language=course.language or DEFAULT_LANGUAGE,
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


def _revision_line(instruction: str) -> str:
    """The teacher's instruction for a part written again (CourseService.RegenerateCoursePart)."""
    if not instruction:
        return ""
    return f"\n\nThis part is being written again. The teacher asks for this change: {instruction!r}."


@dataclass(frozen=True)
class Grounding:
    """A passage of the course's sources given to a lesson or quiz writer: where it is, and its text."""

    citation: course_pb2.Citation
    text: str


def _grounding_text(grounding: Sequence[Grounding], cite: str) -> str:
    if not grounding:
        return ""
    listed = "\n".join(
        f"[{g.citation.passage_id}] ({g.citation.source_name}, {g.citation.locator}): {g.text}" for g in grounding
    )
    return (
        "\n\nBase it on these passages from the teacher's own sources: prefer their facts and terms to your own, "
        f"and do not contradict them. {cite}\n{listed}"
    )


def _cited(grounding: Sequence[Grounding], passage_id: str) -> course_pb2.Citation:
    """The citation of a passage the writer named; one it was not given keeps only the id (and fails the
    citations quality check)."""
    for g in grounding:
        if g.citation.passage_id == passage_id:
            return g.citation
    return course_pb2.Citation(passage_id=passage_id)


@dataclass(frozen=True)
class LessonTask(Replied[course_pb2.Lesson]):
    module: ModuleContext
    # A teacher's instruction when the lesson is written again ("simpler"), else "".
    instruction: str = ""
    # The passages of the course's sources to write from (generator.grounding); empty: not grounded.
    grounding: tuple[Grounding, ...] = ()

    kind = "lesson"

    def system(self) -> str:
        return _SYSTEM

    def prompt(self) -> str:
        low, high = band(self.module.level).words
        return (
            f"{self.module.describe()}\n\n"
            f"Write this module's lesson: a title, a body in Markdown ({low} to {high} words, covering every "
            "objective; use ## subheadings, short paragraphs, bullet lists and fenced code blocks where they help; "
            "do not repeat the title as a heading) and three to six key points a learner should remember."
            + _revision_line(self.instruction)
            + _grounding_text(self.grounding, "List the ids of the passages you used in citations.")
        )

    def reply(self) -> Shape[course_pb2.Lesson]:
        fields: dict[str, Shape[Any]] = {"title": Text(), "body_markdown": Text(), "key_points": Texts()}
        if not self.grounding:
            return Record(course_pb2.Lesson, fields)
        return Record(self._grounded_lesson, {**fields, "citations": Texts()})

    def _grounded_lesson(
        self, title: str, body_markdown: str, key_points: list[str], citations: list[str]
    ) -> course_pb2.Lesson:
        cited = [_cited(self.grounding, passage_id) for passage_id in dict.fromkeys(citations)]
        return course_pb2.Lesson(title=title, body_markdown=body_markdown, key_points=key_points, citations=cited)


@dataclass(frozen=True)
class QuizTask(Replied[course_pb2.Quiz]):
    module: ModuleContext
    questions: int
    # As LessonTask.instruction.
    instruction: str = ""
    # As LessonTask's.
    grounding: tuple[Grounding, ...] = ()

    kind = "quiz"

    def system(self) -> str:
        return _SYSTEM

    def prompt(self) -> str:
        return (
            f"{self.module.describe()}\n\n"
            f"Write a quiz of exactly {self.questions} multiple-choice questions that check this module's "
            f"objectives. Each question has {CHOICES_PER_QUESTION} different choices, exactly one of them correct "
            "(no 'all of the above'); no two questions ask the same thing; answer_index is the zero-based index of "
            "the correct choice; the explanation says why it is correct."
            + _revision_line(self.instruction)
            + _grounding_text(self.grounding, "Give each question the id of the passage it checks in passage_id.")
        )

    def reply(self) -> Shape[course_pb2.Quiz]:
        fields: dict[str, Shape[Any]] = {
            "text": Text(),
            "choices": Texts(2),
            "answer_index": Integer(0),
            "explanation": Text(),
        }
        question: Shape[course_pb2.Question]
        if self.grounding:
            question = Record(self._grounded_question, {**fields, "passage_id": Text()}, check=_answer_among_choices)
        else:
            question = Record(course_pb2.Question, fields, check=_answer_among_choices)
        return Record(course_pb2.Quiz, {"questions": Items(question, self.questions)})

    def _grounded_question(
        self, text: str, choices: list[str], answer_index: int, explanation: str, passage_id: str
    ) -> course_pb2.Question:
        return course_pb2.Question(
            text=text,
            choices=choices,
            answer_index=answer_index,
            explanation=explanation,
            citation=_cited(self.grounding, passage_id),
        )


def _answer_among_choices(values: Mapping[str, Any], path: str) -> None:
    last = len(values["choices"]) - 1
    if values["answer_index"] > last:
        raise InvalidOutput(f"{field_path(path, 'answer_index')} must be an integer from 0 to {last}")


@dataclass(frozen=True)
class SummaryTask(Replied[str]):
    text: str
    max_words: int

    kind = "summary"

    def system(self) -> str:
        return "You summarize texts faithfully and concisely. Answer with one JSON object matching the schema."

    def prompt(self) -> str:
        return f"Summarize the following text in at most {self.max_words} words.\n\n---\n{self.text}"

    def reply(self) -> Shape[str]:
        return Record(_summary, {"summary": Text()}, check=self._within_words)

    def _within_words(self, values: Mapping[str, Any], path: str) -> None:
        words = len(values["summary"].split())
        if words > self.max_words * 1.2:
            raise InvalidOutput(f"{field_path(path, 'summary')} must have at most {self.max_words} words (got {words})")


def _summary(summary: str) -> str:
    return summary
