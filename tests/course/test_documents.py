"""The renderers on their own: Markdown blocks, HTML, PDF (with and without Unicode fonts), determinism; and the
generator's and renderer's configuration."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import TypeVar

import pytest

from generator.providers.base import ModelRequest
from generator.providers.offline import OfflineProvider
from generator.tasks import LessonTask, ModuleContext, OutlineTask, QuizTask, Task, parse_reply
from renderer.blocks import Bullets, Code, Heading, Numbered, Paragraph, Quote, Run, parse_blocks, parse_inline
from renderer.html import render_html
from renderer.markdown import render_markdown
from renderer.pdf import find_font_dir, render_pdf, to_core_text
from syllabus.config import ConfigError, GeneratorConfig, RendererConfig
from syllabus.v1 import course_pb2

T = TypeVar("T")


async def _write(task: Task[T]) -> T:
    reply = await OfflineProvider().generate(
        ModelRequest(task=task, system=task.system(), prompt=task.prompt(), schema=task.schema())
    )
    return parse_reply(task, reply.text)


def offline_course(prompt: str, modules: int = 2) -> course_pb2.Course:
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
            course.modules[i].quiz.CopyFrom(await _write(QuizTask(context, 3)))
        return course

    return asyncio.run(build())


def pdf_text(data: bytes, tmp_path: Path) -> str:
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    return " ".join(
        subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout.split()
    )


def test_markdown_blocks_and_inline_runs() -> None:
    blocks = parse_blocks(
        "## Why\n\nFirst line\ncontinues **here**.\n\n- one\n- two\n  wrapped\n\n1. a\n2) b\n\n"
        "```rust\nfn main() {}\n```\n\n> quoted\n> text\n"
    )
    assert blocks == [
        Heading(2, "Why"),
        Paragraph("First line continues **here**."),
        Bullets(("one", "two wrapped")),
        Numbered(("a", "b")),
        Code("fn main() {}", "rust"),
        Quote("quoted text"),
    ]
    assert parse_inline("a **b** *c* `d` [e](http://x) snake_case_name") == [
        Run("a "),
        Run("b", "B"),
        Run(" "),
        Run("c", "I"),
        Run(" "),
        Run("d", "code"),
        Run(" "),
        Run("e", "", "http://x"),
        Run(" snake_case_name"),
    ]


def test_html_is_standalone_with_contents_lessons_quizzes_and_answer_key() -> None:
    course = offline_course("Cooking <with> & fire")
    course.modules[0].lesson.body_markdown += "\n\n<script>alert(1)</script>"
    page = render_html(course).decode()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "<link" not in page
    assert "Cooking &lt;with&gt; &amp; fire" in page and "<script>" not in page
    assert page.count('<ol class="quiz">') == 2 and 'id="answer-key"' in page
    assert all(f'href="#module-{i}"' in page for i in (1, 2))
    assert "Offline draft" in page


def test_markdown_document_has_every_part() -> None:
    text = render_markdown(offline_course("Bread baking")).decode()
    assert text.startswith("# Bread baking")
    assert "## Contents" in text and "## Module 2: Core concepts" in text and "### Quiz" in text
    assert text.index("## Answer key") > text.index("### Quiz")
    # The lessons' own headings sit below the module's.
    assert "#### What you will learn" in text


def test_pdf_has_contents_page_numbers_and_every_lesson(tmp_path: Path) -> None:
    course = offline_course("Bread baking", modules=3)
    text = pdf_text(render_pdf(course, find_font_dir("")), tmp_path)
    assert "Contents" in text and "Answer key" in text and "page 3" in text
    for module in course.modules:
        assert module.lesson.title in text and f"Quiz: {module.title}" in text


def test_pdf_rendering_is_deterministic() -> None:
    course = offline_course("Bread baking")
    assert render_pdf(course, None) == render_pdf(course, None)


def test_pdf_without_unicode_fonts_approximates_other_scripts(tmp_path: Path) -> None:
    course = offline_course("Введение в Rust — für Anfänger ✓ 日本")
    text = pdf_text(render_pdf(course, None), tmp_path)
    assert "Vvedenie v Rust — für Anfänger v ??" in text
    assert to_core_text("Ωmega → ½ café") == "?mega -> ½ café"


@pytest.mark.skipif(find_font_dir("") is None, reason="DejaVu fonts (fonts-dejavu-core) are not installed")
def test_pdf_with_dejavu_keeps_other_scripts(tmp_path: Path) -> None:
    course = offline_course("Введение в Rust — für Anfänger")
    text = pdf_text(render_pdf(course, find_font_dir("")), tmp_path)
    assert "Введение в Rust — für Anfänger" in text


def test_generator_config_picks_the_provider_from_what_is_configured() -> None:
    assert GeneratorConfig.from_env({}).provider == "offline"
    gemini = GeneratorConfig.from_env({"GEMINI_API_KEY": "secret-key"})
    assert (gemini.provider, gemini.gemini_model) == ("gemini", "gemini-2.5-flash")
    assert "secret-key" not in repr(gemini)
    assert GeneratorConfig.from_env({"SYLLABUS_GEMINI_API_KEY": "k"}).provider == "gemini"
    openai = {"SYLLABUS_OPENAI_BASE_URL": "http://127.0.0.1:11434", "SYLLABUS_OPENAI_MODEL": "llama3.1"}
    assert GeneratorConfig.from_env(openai).provider == "openai"
    assert GeneratorConfig.from_env({**openai, "GEMINI_API_KEY": "k", "SYLLABUS_LLM_PROVIDER": "OpenAI"}).provider == (
        "openai"
    )
    assert GeneratorConfig.from_env({"GEMINI_API_KEY": "k", "SYLLABUS_LLM_PROVIDER": "offline"}).provider == "offline"
    tuned = GeneratorConfig.from_env(
        {
            "SYLLABUS_LLM_TIMEOUT": "30",
            "SYLLABUS_LLM_CACHE_TTL": "0",
            "SYLLABUS_LLM_BREAKER_THRESHOLD": "3",
            "SYLLABUS_LLM_BREAKER_COOLDOWN": "10",
        }
    )
    assert (tuned.timeout, tuned.cache_ttl, tuned.breaker_threshold, tuned.breaker_cooldown) == (30, 0, 3, 10)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"SYLLABUS_LLM_PROVIDER": "claude"}, "SYLLABUS_LLM_PROVIDER"),
        ({"SYLLABUS_LLM_PROVIDER": "gemini"}, "GEMINI_API_KEY"),
        ({"SYLLABUS_OPENAI_BASE_URL": "http://h:1"}, "SYLLABUS_OPENAI_MODEL"),
        ({"SYLLABUS_OPENAI_BASE_URL": "ftp://h"}, "SYLLABUS_OPENAI_BASE_URL"),
        ({"SYLLABUS_LLM_TIMEOUT": "0"}, "SYLLABUS_LLM_TIMEOUT"),
        ({"SYLLABUS_LLM_BREAKER_THRESHOLD": "0"}, "SYLLABUS_LLM_BREAKER_THRESHOLD"),
        ({"SYLLABUS_GEMINI_BASE_URL": "nope"}, "SYLLABUS_GEMINI_BASE_URL"),
    ],
)
def test_generator_config_errors_name_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        GeneratorConfig.from_env(env)


def test_renderer_config(tmp_path: Path) -> None:
    assert RendererConfig.from_env({}) == RendererConfig(font_dir="", page_size="A4")
    assert RendererConfig.from_env({"SYLLABUS_RENDERER_PAGE_SIZE": "Letter"}).page_size == "letter"
    with pytest.raises(ConfigError, match="SYLLABUS_RENDERER_FONT_DIR"):
        RendererConfig.from_env({"SYLLABUS_RENDERER_FONT_DIR": str(tmp_path)})
    assert find_font_dir(str(tmp_path)) is None
