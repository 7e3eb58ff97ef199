"""A course as one Markdown document: outline, lessons, quizzes, and the answer key at the end."""

from __future__ import annotations

from renderer.commonmark import embed
from renderer.course_text import (
    OFFLINE_NOTICE,
    anchor,
    choice_label,
    lesson_heading,
    lesson_sources,
    meta_line,
    module_heading,
    source_entry,
    with_source,
    written_by,
)
from syllabus.v1 import course_pb2


def render_markdown(course: course_pb2.Course) -> bytes:
    out: list[str] = [f"# {_one_line(course.title or course.prompt)}", ""]
    if course.offline_draft:
        out += [f"> **{OFFLINE_NOTICE}**", ""]
    out += [course.description, "", f"*{meta_line(course)}*", ""]
    if course.sources:
        out += ["**Sources**", ""] + [f"- {_one_line(source_entry(source))}" for source in course.sources] + [""]
    out += ["## Contents", ""]
    for module in course.modules:
        out.append(f"{module.index + 1}. [{_one_line(module_heading(module))}](#{anchor('module', module)})")
    out += [f"{len(course.modules) + 1}. [Answer key](#answer-key)", ""]
    for module in course.modules:
        out += _module(module)
    out += ['<a id="answer-key"></a>', "", "## Answer key", ""]
    for module in course.modules:
        out += [f"### {_one_line(module_heading(module))}", ""]
        for number, question in enumerate(module.quiz.questions, 1):
            answer = question.choices[question.answer_index] if question.answer_index < len(question.choices) else ""
            explanation = with_source(question.explanation, question)
            out.append(f"{number}. **{choice_label(question.answer_index)}** {answer}. {explanation}")
        out.append("")
    out += ["---", "", f"*{written_by(course)}*", ""]
    return "\n".join(out).encode()


def _module(module: course_pb2.Module) -> list[str]:
    out = [
        f'<a id="{anchor("module", module)}"></a>',
        "",
        f"## {_one_line(module_heading(module))}",
        "",
        module.summary,
        "",
    ]
    if module.objectives:
        out += ["**Objectives**", ""] + [f"- {objective}" for objective in module.objectives] + [""]
    out += [f"### {_one_line(lesson_heading(module))}", "", embed(module.lesson.body_markdown.strip(), 2), ""]
    if module.lesson.key_points:
        out += ["**Key points**", ""] + [f"- {point}" for point in module.lesson.key_points] + [""]
    if module.lesson.citations:
        out += ["**Sources**", ""] + [f"- {_one_line(cited)}" for cited in lesson_sources(module)] + [""]
    out += ["### Quiz", ""]
    for number, question in enumerate(module.quiz.questions, 1):
        out.append(f"{number}. {question.text}")
        out += [f"   - {choice_label(i)}) {choice}" for i, choice in enumerate(question.choices)]
        out.append("")
    return out


def _one_line(text: str) -> str:
    # A heading or a contents line ends at a line break: a title must not carry one into the document.
    return " ".join(text.split())
