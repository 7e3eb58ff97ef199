"""Courses written by the offline provider, without NATS: input for the renderers' tests; the text of a PDF, and
what the PDF's fonts can show."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import TypeVar

from generator.providers.base import ModelRequest
from generator.providers.offline import OfflineProvider
from generator.tasks import LessonTask, ModuleContext, OutlineTask, QuizTask, Task, parse_reply
from renderer.pdf_fonts import CORE_FONTS, Fonts, coverage_of, fallback_fonts, font_files
from syllabus.v1 import course_pb2

T = TypeVar("T")


async def _write(task: Task[T]) -> T:
    reply = await OfflineProvider().generate(
        ModelRequest(task=task, system=task.system(), prompt=task.prompt(), schema=task.schema())
    )
    return parse_reply(task, reply.text)


def offline_course(prompt: str, modules: int = 2, questions: int = 3) -> course_pb2.Course:
    async def build() -> course_pb2.Course:
        course = course_pb2.Course(
            id="c1", prompt=prompt, audience="everyone", level=course_pb2.COURSE_LEVEL_BEGINNER, language="en"
        )
        course.create_time.FromSeconds(1_700_000_000)
        outline = await _write(OutlineTask(prompt, modules, "everyone", "beginner", "en"))
        course.title, course.description = outline.title, outline.description
        course.modules.extend(outline.modules)
        course.offline_draft = True
        for i in range(modules):
            context = ModuleContext.of(course, i)
            course.modules[i].lesson.CopyFrom(await _write(LessonTask(context)))
            course.modules[i].quiz.CopyFrom(await _write(QuizTask(context, questions)))
        return course

    return asyncio.run(build())


def pdf_text(data: bytes, tmp_path: Path) -> str:
    """The PDF's text as pdftotext reads it, runs of white space made one space."""
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    return " ".join(
        subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout.split()
    )


def pdf_fonts(course: course_pb2.Course, font_dir: Path | None) -> Fonts:
    """The fonts the PDF of the course has for its titles: what they draw, the titles show."""
    if font_dir is None:
        return CORE_FONTS
    titles = {char for text in [course.title, *(module.title for module in course.modules)] for char in text}
    coverage = coverage_of(font_files(font_dir, fallback_fonts(font_dir), titles))
    return Fonts(body="dejavu", mono="dejavumono", unicode=True, coverage=coverage)
