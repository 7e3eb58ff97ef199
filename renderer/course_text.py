"""What every document says about a course, whatever its format: labels, anchors, the offline-draft notice."""

from __future__ import annotations

import string

from syllabus.v1 import course_pb2

LEVELS = {
    course_pb2.COURSE_LEVEL_BEGINNER: "Beginner",
    course_pb2.COURSE_LEVEL_INTERMEDIATE: "Intermediate",
    course_pb2.COURSE_LEVEL_ADVANCED: "Advanced",
}
OFFLINE_NOTICE = (
    "Offline draft: this course was written from templates, without a language model. "
    "Configure a model provider to generate real course material."
)


def choice_label(index: int) -> str:
    return string.ascii_uppercase[index] if index < 26 else str(index + 1)


def module_heading(module: course_pb2.Module) -> str:
    return f"Module {module.index + 1}: {module.title}"


def lesson_heading(module: course_pb2.Module) -> str:
    return module.lesson.title or f"Lesson {module.index + 1}"


def anchor(kind: str, module: course_pb2.Module) -> str:
    return f"{kind}-{module.index + 1}"


def meta_line(course: course_pb2.Course) -> str:
    parts = []
    if course.audience:
        parts.append(f"For {course.audience}")
    if course.level in LEVELS:
        parts.append(f"Level: {LEVELS[course.level]}")
    parts.append(f"{len(course.modules)} modules")
    if course.language:
        parts.append(f"Language: {course.language}")
    return " | ".join(parts)


def written_by(course: course_pb2.Course) -> str:
    if course.offline_draft:
        return "Written offline (no language model)."
    cost = f", about ${course.estimated_cost_usd:.4f}" if course.estimated_cost_usd else ""
    tokens = course.input_tokens + course.output_tokens
    return f"Written by {course.provider} {course.model} ({tokens:,} tokens{cost})."


def citation_text(citation: course_pb2.Citation) -> str:
    """Where a cited passage is, as a reader finds it: "handbook.pdf, page 12"."""
    return ", ".join(part for part in (citation.source_name or citation.source_id, citation.locator) if part)


def lesson_sources(module: course_pb2.Module) -> list[str]:
    """The places its lesson cites, each once, in the order cited."""
    return list(dict.fromkeys(citation_text(citation) for citation in module.lesson.citations))


def with_source(explanation: str, question: course_pb2.Question) -> str:
    """A question's explanation, followed by the passage it was written from when it has one."""
    if not question.HasField("citation"):
        return explanation
    return f"{explanation} (Source: {citation_text(question.citation)})"


def source_entry(source: course_pb2.Source) -> str:
    """A course's source as the documents list it: "handbook.pdf (30 pages)"."""
    unit = "page" if source.content_type == "application/pdf" else "section"
    count = f" ({source.pages} {unit}{'' if source.pages == 1 else 's'})" if source.pages else ""
    return f"{source.name}{count}"
