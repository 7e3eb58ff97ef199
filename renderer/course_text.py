"""What every document says about a course, whatever its format: labels, anchors, the offline-draft notice, in the
course's language (renderer.phrases)."""

from __future__ import annotations

import string

from renderer.phrases import Phrases, phrases
from syllabus.v1 import course_pb2

__all__ = [
    "anchor",
    "choice_label",
    "course_phrases",
    "lesson_heading",
    "meta_line",
    "module_heading",
    "quiz_heading",
    "written_by",
]


def course_phrases(course: course_pb2.Course) -> Phrases:
    return phrases(course.language)


def choice_label(index: int) -> str:
    return string.ascii_uppercase[index] if index < 26 else str(index + 1)


def module_heading(module: course_pb2.Module, words: Phrases) -> str:
    return words.module.format(number=module.index + 1, title=module.title)


def lesson_heading(module: course_pb2.Module, words: Phrases) -> str:
    return module.lesson.title or words.lesson.format(number=module.index + 1)


def quiz_heading(module: course_pb2.Module, words: Phrases) -> str:
    return words.quiz_title.format(title=module.title)


def anchor(kind: str, module: course_pb2.Module) -> str:
    return f"{kind}-{module.index + 1}"


def _level(level: course_pb2.CourseLevel, words: Phrases) -> str:
    names = {
        course_pb2.COURSE_LEVEL_BEGINNER: words.beginner,
        course_pb2.COURSE_LEVEL_INTERMEDIATE: words.intermediate,
        course_pb2.COURSE_LEVEL_ADVANCED: words.advanced,
    }
    return names.get(level, "")


def meta_line(course: course_pb2.Course, words: Phrases) -> str:
    parts = []
    if course.audience:
        parts.append(words.for_audience.format(audience=course.audience))
    if level := _level(course.level, words):
        parts.append(words.level.format(level=level))
    parts.append(words.modules.format(count=len(course.modules)))
    if course.language:
        parts.append(words.language_line.format(language=course.language))
    return " | ".join(parts)


def written_by(course: course_pb2.Course, words: Phrases) -> str:
    if course.offline_draft:
        return words.written_offline
    cost = words.cost.format(cost=f"{course.estimated_cost_usd:.4f}") if course.estimated_cost_usd else ""
    tokens = course.input_tokens + course.output_tokens
    return words.written_by.format(provider=course.provider, model=course.model, tokens=f"{tokens:,}", cost=cost)


def citation_text(citation: course_pb2.Citation) -> str:
    """Where a cited passage is, as a reader finds it: "handbook.pdf, page 12"."""
    return ", ".join(part for part in (citation.source_name or citation.source_id, citation.locator) if part)


def lesson_sources(module: course_pb2.Module) -> list[str]:
    """The places its lesson cites, each once, in the order cited."""
    return list(dict.fromkeys(citation_text(citation) for citation in module.lesson.citations))


def with_source(explanation: str, question: course_pb2.Question, words: Phrases) -> str:
    """A question's explanation, followed by the passage it was written from when it has one."""
    if not question.HasField("citation"):
        return explanation
    return f"{explanation} ({words.source.format(place=citation_text(question.citation))})"


def source_entry(source: course_pb2.Source, words: Phrases) -> str:
    """A course's source as the documents list it: "handbook.pdf (30 pages)"."""
    if not source.pages:
        return source.name
    unit = words.source_pages if source.content_type == "application/pdf" else words.source_sections
    return f"{source.name} ({unit.format(count=source.pages)})"
