"""The offline provider: deterministic drafts written from templates, with no network and no account.

It is what runs when no model is configured, so the whole pipeline works on a laptop out of the box. Everything
it writes says that it is an offline draft; the course is flagged (Course.offline_draft) as well.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from generator.providers.base import ModelReply, ModelRequest
from generator.tasks import (
    CHOICES_PER_QUESTION,
    Grounding,
    LessonTask,
    ModuleContext,
    OutlineTask,
    QuizTask,
    SummaryTask,
)

NAME = "offline"
MODEL = "offline-draft-1"
DRAFT_NOTE = (
    "This is an offline draft, written from templates without a language model. Configure a model "
    "(GEMINI_API_KEY, or SYLLABUS_OPENAI_BASE_URL for an OpenAI-compatible server) for real course material."
)
# Module stages in the order a course usually takes them; a course with more modules than stages numbers them.
_STAGES = (
    ("Getting started", "what {topic} is, why it matters and how to set up a first working example"),
    ("Core concepts", "the central ideas of {topic} and the vocabulary used to talk about them"),
    ("Essential tools", "the everyday tools and workflows for {topic}"),
    ("Working with data", "how {topic} represents, reads and changes information"),
    ("Structuring larger work", "how to organise bigger pieces of {topic} so they stay understandable"),
    ("Testing and debugging", "how to check {topic} work and find out why something goes wrong"),
    ("Patterns and idioms", "the approaches experienced practitioners of {topic} reach for first"),
    ("Common pitfalls", "the mistakes people make with {topic} and how to avoid them"),
    ("Performance and scale", "what makes {topic} fast or slow and how to measure it"),
    ("A complete project", "putting the pieces of {topic} together in one realistic project"),
    ("Going further", "where to go next with {topic}: deeper topics, communities and resources"),
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def topic_of(prompt: str) -> str:
    """The subject in the user's words, short enough for titles."""
    topic = " ".join(prompt.split()).strip(" .!?")
    return topic if len(topic) <= 60 else topic[:57].rstrip() + "..."


def subject_of(prompt: str) -> str:
    """The topic as it reads inside a sentence: "Intro to Rust" is about "Rust"."""
    topic = topic_of(prompt)
    lowered = topic.lower()
    for lead in ("an introduction to ", "introduction to ", "intro to ", "learn ", "learning "):
        if lowered.startswith(lead) and len(topic) > len(lead):
            return topic[len(lead) :]
    return topic


def _stage(index: int) -> tuple[str, str]:
    title, about = _STAGES[index % len(_STAGES)]
    if index >= len(_STAGES):
        title = f"{title} ({index // len(_STAGES) + 1})"
    return title, about


def write_outline(task: OutlineTask) -> dict[str, Any]:
    course_title = topic_of(task.prompt_text)
    topic = subject_of(task.prompt_text)
    audience = f", written for {task.audience}" if task.audience else ""
    modules = []
    for i in range(task.modules):
        title, about = _stage(i)
        about = about.format(topic=topic)
        modules.append(
            {
                "title": title,
                "summary": f"This module covers {about}.",
                "objectives": [
                    f"Explain {about}",
                    f"Apply the ideas of '{title.lower()}' to a small {topic} example",
                    f"Recognise when '{title.lower()}' matters in practice",
                ],
            }
        )
    return {
        "title": f"{course_title[:1].upper()}{course_title[1:]}",
        "description": f"A {task.level} course on {topic}{audience}, in {task.modules} modules. {DRAFT_NOTE}",
        "modules": modules,
    }


# Enough prose per objective that a draft lesson has the length the quality checks ask of a lesson.
_PRACTICE = (
    "Start from a question you can already answer in one sentence. Then ask how this objective changes the "
    "answer. Write one short example, try it out if you can, and note what surprised you. Keep that note close: "
    "the exercise at the end of this lesson builds on it, and so do the modules that follow."
)


def _lesson_title(module: ModuleContext) -> str:
    return f"{module.title}: {module.course_title}"


def write_lesson(task: LessonTask) -> dict[str, Any]:
    module = task.module
    objectives = "\n".join(f"- {objective}" for objective in module.objectives)
    steps = "\n\n".join(f"### {objective}\n\n{_PRACTICE}" for objective in module.objectives)
    previous = module.titles[module.index - 1] if module.index > 0 else ""
    following = module.titles[module.index + 1] if module.index + 1 < len(module.titles) else ""
    bridge = f"It builds on *{previous}*." if previous else "It is where the course begins."
    onward = f"Next comes *{following}*." if following else "It closes the course."
    body = f"""> **Offline draft.** {DRAFT_NOTE}
{_revised_note(task.instruction)}
{module.summary} {bridge}

## What you will learn

{objectives}

## The idea

Every topic in **{module.course_title}** becomes easier once you can name its parts. In this module, start by
writing down, in your own words, what *{module.title.lower()}* means for you and where you have met it before.
Then compare your notes with the objectives above.

## Objective by objective

{steps}

## Worked example

1. Pick a small, concrete problem that involves {module.title.lower()}.
2. Solve it the simplest way you can, and write down each step.
3. Look for the step that felt hardest: that is where the objectives of this module help most.

```text
problem  -> simplest solution -> hardest step -> what to learn next
```

## Try it yourself

Explain one objective of this module to a colleague in two minutes, without notes. {onward}
{_from_sources(task.grounding)}"""
    reply: dict[str, Any] = {
        "title": _lesson_title(module),
        "body_markdown": body,
        "key_points": [f"{objective}." for objective in module.objectives] + ["This lesson is an offline draft."],
    }
    if task.grounding:
        reply["citations"] = [g.citation.passage_id for g in task.grounding]
    return reply


def _from_sources(grounding: Sequence[Grounding]) -> str:
    """The passages a grounded draft is written from, quoted (their first sentences) with where they are."""
    if not grounding:
        return ""
    quotes = "\n\n".join(
        f"> {_opening(g.text, 3)}\n>\n> ({g.citation.source_name}, {g.citation.locator})" for g in grounding
    )
    return f"\n## From your sources\n\n{quotes}\n"


def _opening(text: str, sentences: int) -> str:
    return " ".join(_SENTENCE.split(" ".join(text.split()))[:sentences])


def _revised_note(instruction: str) -> str:
    # A model would follow the instruction; the draft shows that it reached the writer.
    return f"\n> **Written again as asked:** {instruction}\n" if instruction else ""


# One wording per question, so no two questions of a quiz are the same (generator.quality's twin check).
_ASKS = (
    "Which of these is a goal of the module '{title}'?",
    "What should you be able to do after the module '{title}'?",
    "Which statement describes what '{title}' teaches?",
    "Which of these does the module '{title}' set out to achieve?",
    "Which objective is part of '{title}' rather than of another module?",
)
# Distractors for a course with fewer than three other modules to borrow from.
_FILLERS = (
    "Memorise every detail before trying anything",
    "Skip the examples and read only the summary",
    "Nothing: the module has no stated goals",
)


def write_quiz(task: QuizTask) -> dict[str, Any]:
    if task.grounding:
        return _grounded_quiz(task)
    module = task.module
    others = [f"It belongs to '{title}' instead" for i, title in enumerate(module.titles) if i != module.index]
    questions = []
    for q in range(task.questions):
        objective = module.objectives[q % len(module.objectives)] if module.objectives else module.summary
        answer = (module.index + q) % CHOICES_PER_QUESTION
        rotated = others[q % len(others) :] + others[: q % len(others)] if others else []
        distractors = [*rotated, *_FILLERS][: CHOICES_PER_QUESTION - 1]
        choices = [*distractors[:answer], objective, *distractors[answer:]]
        ask = _ASKS[q % len(_ASKS)].format(title=module.title)
        revised = f", written again as asked: {task.instruction}" if task.instruction else ""
        questions.append(
            {
                "text": f"(Offline draft, question {q + 1}{revised}) {ask}",
                "choices": choices,
                "answer_index": answer,
                "explanation": f"'{objective}' is one of the stated objectives of '{module.title}'.",
            }
        )
    return {"questions": questions}


def _grounded_quiz(task: QuizTask) -> dict[str, Any]:
    """Questions on the passages: which statement does this page or section make? The distractors are sentences of
    passages from other places (or fillers), so each choice is real text and exactly one is from the place asked
    about."""
    module = task.module
    openings = [_opening(g.text, 1) for g in task.grounding]
    questions = []
    for q in range(task.questions):
        which = q % len(task.grounding)
        where = task.grounding[which].citation
        objective = module.objectives[q % len(module.objectives)] if module.objectives else module.summary
        # Not from the same page or section: the question asks which statement that place makes.
        others = [
            opening
            for g, opening in zip(task.grounding, openings, strict=True)
            if (g.citation.source_id, g.citation.locator) != (where.source_id, where.locator)
            and opening != openings[which]
        ]
        distractors = [*dict.fromkeys(others), *_FILLERS][: CHOICES_PER_QUESTION - 1]
        answer = (module.index + q) % CHOICES_PER_QUESTION
        choices = [*distractors[:answer], openings[which], *distractors[answer:]]
        questions.append(
            {
                "text": f"(Offline draft, question {q + 1} of '{module.title}') Which statement is made in "
                f"{where.source_name}, {where.locator}?",
                "choices": choices,
                "answer_index": answer,
                "explanation": f"{where.source_name}, {where.locator} says so; it is material for the objective "
                f"'{objective}'.",
                "passage_id": where.passage_id,
            }
        )
    return {"questions": questions}


def offline_summary(text: str, max_words: int) -> str:
    """Deterministic extract: whole leading sentences while they fit, else the first max_words words."""
    words_left = max_words
    chosen: list[str] = []
    for sentence in _SENTENCE.split(" ".join(text.split())):
        count = len(sentence.split())
        if count > words_left:
            break
        chosen.append(sentence)
        words_left -= count
    if chosen:
        return " ".join(chosen)
    return " ".join(text.split()[:max_words])


def write_summary(task: SummaryTask) -> dict[str, Any]:
    return {"summary": offline_summary(task.text, task.max_words)}


_WRITERS: dict[type, Callable[[Any], dict[str, Any]]] = {
    OutlineTask: write_outline,
    LessonTask: write_lesson,
    QuizTask: write_quiz,
    SummaryTask: write_summary,
}


def _tokens(text: str) -> int:
    # The usual rule of thumb, ~4 characters a token: the figures are estimates and cost nothing.
    return max(1, len(text) // 4)


class OfflineProvider:
    name = NAME
    model = MODEL
    billed = False

    async def generate(self, request: ModelRequest) -> ModelReply:
        writer = _WRITERS.get(type(request.task))
        if writer is None:
            raise TypeError(f"the offline provider cannot write a {type(request.task).__name__}")
        text = json.dumps(writer(request.task), ensure_ascii=False)
        return ModelReply(text=text, input_tokens=_tokens(request.system + request.prompt), output_tokens=_tokens(text))

    async def aclose(self) -> None:
        return None
