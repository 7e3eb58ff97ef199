"""A course as one Markdown document: outline, lessons, quizzes, and the answer key at the end."""

from __future__ import annotations

from renderer.commonmark import embed
from renderer.course_text import (
    anchor,
    choice_label,
    course_phrases,
    lesson_heading,
    lesson_sources,
    meta_line,
    module_heading,
    source_entry,
    with_source,
    written_by,
)
from renderer.phrases import Phrases
from syllabus.v1 import course_pb2


def render_markdown(course: course_pb2.Course) -> bytes:
    words = course_phrases(course)
    out: list[str] = [f"# {_one_line(course.title or course.prompt)}", ""]
    if course.offline_draft:
        out += [f"> **{words.offline_notice}**", ""]
    out += [course.description, "", f"*{meta_line(course, words)}*", ""]
    if course.sources:
        entries = [f"- {_one_line(source_entry(source, words))}" for source in course.sources]
        out += [f"**{words.sources}**", "", *entries, ""]
    out += [f"## {words.contents}", ""]
    for module in course.modules:
        out.append(f"{module.index + 1}. [{_one_line(module_heading(module, words))}](#{anchor('module', module)})")
    out += [f"{len(course.modules) + 1}. [{words.answer_key}](#answer-key)", ""]
    for module in course.modules:
        out += _module(module, words)
    out += ['<a id="answer-key"></a>', "", f"## {words.answer_key}", ""]
    for module in course.modules:
        out += [f"### {_one_line(module_heading(module, words))}", ""]
        for number, question in enumerate(module.quiz.questions, 1):
            answer = question.choices[question.answer_index] if question.answer_index < len(question.choices) else ""
            explanation = with_source(question.explanation, question, words)
            out.append(f"{number}. **{choice_label(question.answer_index)}** {answer}. {explanation}")
        out.append("")
    out += ["---", "", f"*{written_by(course, words)}*", ""]
    return "\n".join(out).encode()


def _module(module: course_pb2.Module, words: Phrases) -> list[str]:
    out = [
        f'<a id="{anchor("module", module)}"></a>',
        "",
        f"## {_one_line(module_heading(module, words))}",
        "",
        module.summary,
        "",
    ]
    if module.objectives:
        out += [f"**{words.objectives}**", ""] + [f"- {objective}" for objective in module.objectives] + [""]
    heading = _one_line(lesson_heading(module, words))
    out += [f"### {heading}", "", embed(module.lesson.body_markdown.strip(), 2), ""]
    if module.lesson.key_points:
        out += [f"**{words.key_points}**", ""] + [f"- {point}" for point in module.lesson.key_points] + [""]
    if module.lesson.citations:
        out += [f"**{words.sources}**", ""] + [f"- {_one_line(cited)}" for cited in lesson_sources(module)] + [""]
    out += [f"### {words.quiz}", ""]
    for number, question in enumerate(module.quiz.questions, 1):
        out.append(f"{number}. {question.text}")
        out += [f"   - {choice_label(i)}) {choice}" for i, choice in enumerate(question.choices)]
        out.append("")
    return out


def _one_line(text: str) -> str:
    # A heading or a contents line ends at a line break: a title must not carry one into the document.
    return " ".join(text.split())
