"""The renderers on their own: lesson Markdown as CommonMark, HTML, Markdown, PDF (with and without Unicode fonts,
contents of one page and of two), determinism; and the generator's and renderer's configuration."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from renderer.commonmark import parse_inline
from renderer.html import render_html
from renderer.markdown import render_markdown
from renderer.pdf import find_font_dir, render_pdf
from renderer.pdf_fonts import FALLBACK_FONTS, PLACEHOLDER, fallback_fonts, to_core_text
from renderer.pdf_text import Run, inline_runs
from syllabus.config import ConfigError, GeneratorConfig, RendererConfig
from tests.course.offline_course import offline_course, pdf_text

LESSON = (
    "## Why\n\nFirst line\ncontinues **here**.\n\n- one\n- two\n  wrapped\n\n1. a\n2) b\n\n"
    "```rust\nfn main() {}\n```\n\n> quoted\n> text\n"
)


def test_lesson_markdown_is_commonmark() -> None:
    course = offline_course("Bread baking", modules=1)
    course.modules[0].lesson.body_markdown = LESSON
    page = render_html(course).decode()
    # Lesson headings sit two levels below the lesson's own (h3).
    assert "<h4>Why</h4>" in page
    assert "<p>First line\ncontinues <strong>here</strong>.</p>" in page
    assert "<ul>\n<li>one</li>\n<li>two\nwrapped</li>\n</ul>" in page
    # In CommonMark a list whose delimiter changes ("." to ")") is a new list, numbered on.
    assert '<ol>\n<li>a</li>\n</ol>\n<ol start="2">\n<li>b</li>\n</ol>' in page
    assert '<pre><code class="language-rust">fn main() {}\n</code></pre>' in page
    assert "<blockquote>\n<p>quoted\ntext</p>\n</blockquote>" in page


def test_inline_markdown_becomes_styled_runs_for_the_pdf() -> None:
    assert inline_runs(parse_inline("a **b** *c* `d` [e](http://x) snake_case_name ~~f~~ ***g***")) == [
        Run("a "),
        Run("b", "B"),
        Run(" "),
        Run("c", "I"),
        Run(" "),
        Run("d", code=True),
        Run(" "),
        Run("e", url="http://x"),
        Run(" snake_case_name "),
        Run("f", "S"),
        Run(" "),
        Run("g", "BI"),
    ]
    assert inline_runs(parse_inline("line  \nbreak ![a cat](http://x/cat.png) [bad](javascript:alert(1))")) == [
        Run("line\nbreak [image: a cat] [bad](javascript:alert(1))")
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
    course = offline_course("Bread baking")
    course.modules[0].title = "Two\nlines"
    # A line break in a title would end the heading and leave the rest as a paragraph.
    assert "## Module 1: Two lines\n" in render_markdown(course).decode()


def test_pdf_has_contents_page_numbers_and_every_lesson(tmp_path: Path) -> None:
    course = offline_course("Bread baking", modules=3)
    text = pdf_text(render_pdf(course, find_font_dir("")), tmp_path)
    assert "Contents" in text and "Answer key" in text and "page 3" in text
    for module in course.modules:
        assert module.lesson.title in text and f"Quiz: {module.title}" in text


def test_pdf_rendering_is_deterministic() -> None:
    # Other scripts too: fallback fonts are chosen and subset the same way every time.
    course = offline_course("Bread baking: パン作り 🍞")
    assert render_pdf(course, None) == render_pdf(course, None)
    if find_font_dir(""):
        assert render_pdf(course, find_font_dir("")) == render_pdf(course, find_font_dir(""))


def pdf_pages(data: bytes, tmp_path: Path) -> list[str]:
    path = tmp_path / "pages.pdf"
    path.write_bytes(data)
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return [" ".join(page.split()) for page in text.split("\f")]


# An A4 contents page holds 37 lines: 12 modules (3 lines each) and the answer key fill it exactly, 13 need two.
@pytest.mark.parametrize(("modules", "contents_pages"), [(12, 1), (13, 2)])
@pytest.mark.parametrize("fonts", ["dejavu", "core"])
def test_the_contents_fill_exactly_the_pages_reserved(
    modules: int, contents_pages: int, fonts: str, tmp_path: Path
) -> None:
    font_dir = find_font_dir("") if fonts == "dejavu" else None
    if fonts == "dejavu" and font_dir is None:
        pytest.skip("DejaVu fonts (fonts-dejavu-core) are not installed")
    course = offline_course("Bread baking", modules)
    pages = pdf_pages(render_pdf(course, font_dir), tmp_path)
    first_chapter = 1 + contents_pages  # page indexes from 0: the title page, then the contents
    assert all(page.startswith("Contents") for page in pages[1:2])
    contents = " ".join(pages[1:first_chapter])
    assert pages[first_chapter].startswith("Module 1: Getting started")
    # Every entry, and nothing else, is on the contents pages, and each points at the page its chapter begins on.
    entries = re.findall(r"((?:Module \d+: \w+[\w ()]*?)|Answer key) \.+ (\d+)", contents)
    assert len(entries) == modules + 1
    for title, number in entries:
        assert pages[int(number) - 1].startswith(title), (title, number)
    assert f"page {first_chapter + 1}" in pages[first_chapter]


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


FALLBACKS = fallback_fonts(find_font_dir(""))


@pytest.mark.skipif(
    len(FALLBACKS) < len(FALLBACK_FONTS), reason="fallback fonts (fonts-droid-fallback, fonts-symbola) not installed"
)
def test_pdf_draws_what_dejavu_lacks_with_the_fallback_fonts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    course = offline_course("日本語で学ぶ Rust 🚀 🦀")
    course.modules[0].lesson.body_markdown += "\n\n```\n中文代码 = 1  # 👍\n```\n\n**粗体** *斜体* 한국어"
    text = pdf_text(render_pdf(course, find_font_dir("")), tmp_path)
    assert "日本語で学ぶ Rust 🚀 🦀" in text and "中文代码 = 1 # 👍" in text and "粗体 斜体" in text
    assert "missing" not in caplog.text


@pytest.mark.skipif(find_font_dir("") is None, reason="DejaVu fonts (fonts-dejavu-core) are not installed")
def test_pdf_marks_characters_no_font_draws(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    # Adlam is in none of the fonts; without fallbacks, neither is Japanese. Zero-width marks no font has go.
    course = offline_course("Intro 𞤀𞤁 日本 e\u0591\U000e0001 ok")
    with_fallbacks = pdf_text(render_pdf(course, find_font_dir("")), tmp_path)
    without = pdf_text(render_pdf(course, find_font_dir(""), fallbacks=()), tmp_path)
    assert f"Intro {PLACEHOLDER * 2} 日本 e ok" in with_fallbacks or not FALLBACKS
    assert f"Intro {PLACEHOLDER * 2} {PLACEHOLDER * 2} e ok" in without
    # fpdf2 had nothing to draw without a glyph: the marks stand in for what no font has.
    assert "missing" not in caplog.text


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
