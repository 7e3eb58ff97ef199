"""Property tests of the renderers: generated courses (1 to 20 modules, long titles, Latin, Cyrillic, Greek, CJK,
Arabic and emoji text) and generated lesson Markdown of the shapes models write (nested lists, tables, fences,
headings h1-h6, raw HTML, long words and lines, stray punctuation) render to PDF, HTML and Markdown: no exception,
a PDF that poppler reads, no live HTML from the input, and every module's title in every document."""

from __future__ import annotations

import re
import subprocess
import unicodedata
from html import escape
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from renderer.html import render_html
from renderer.markdown import render_markdown
from renderer.pdf import find_font_dir, render_pdf
from syllabus.v1 import course_pb2
from tests.course.offline_course import pdf_fonts

SCRIPTS = {
    "latin": "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789éüßçñøå",
    "cyrillic": "абвгдеёжзийклмнопрстуфхцчшщъыьэюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЭЮЯ",
    "greek": "αβγδεζηθικλμνξοπρστυφχψωΑΒΓΔΘΛΞΠΣΦΨΩάέή",
    "cjk": "日本語中文漢字学习编程入门かなカタカナ한국어",
    "arabic": "العربيةمرحبابكمفيالدرس",
    "emoji": "😀🚀✅👍💡🎉🦀🐍❤✨",
}
HTML_FRAGMENTS = (
    "<script>alert(1)</script>",
    "<SCRIPT src=//x.example/a.js></SCRIPT>",
    '<img src=x onerror="alert(1)">',
    "<div>",
    "</div>",
    "<b>bold</b>",
    "<!-- comment -->",
    '<a href="javascript:alert(1)">x</a>',
    "<br/>",
    "&amp; &lt; &#x27;",
)
PUNCTUATION = "*_`[]()<>#!|~-+=\\&;:\"'{}.,?/"

words = st.sampled_from(sorted(SCRIPTS.values())).flatmap(lambda alphabet: st.text(alphabet, min_size=1, max_size=14))
long_words = st.integers(60, 300).map(lambda n: "w" * n)
titles = st.lists(st.one_of(words, words, words, long_words), min_size=1, max_size=12).map(" ".join)
urls = st.sampled_from(["https://example.com/a_b", "javascript:alert(1)", "relative/x", "mailto:a@b.c", "data:x"])


@st.composite
def inline_markdown(draw: st.DrawFn) -> str:
    pieces = []
    for _ in range(draw(st.integers(1, 8))):
        word = draw(words)
        pieces.append(
            draw(
                st.sampled_from(
                    [
                        word,
                        f"**{word}**",
                        f"*{word}*",
                        f"~~{word}~~",
                        f"`{word}`",
                        f"[{word}]({draw(urls)})",
                        f"![{word}]({draw(urls)})",
                        draw(st.sampled_from(HTML_FRAGMENTS)),
                        draw(st.text(PUNCTUATION, min_size=1, max_size=6)),
                        draw(long_words),
                    ]
                )
            )
        )
    return " ".join(pieces)


@st.composite
def nested_list(draw: st.DrawFn, depth: int = 0) -> str:
    lines = []
    ordered = draw(st.booleans())
    for number in range(1, draw(st.integers(1, 4)) + 1):
        marker = f"{number}." if ordered else draw(st.sampled_from("-*+"))
        lines.append("  " * depth * 2 + f"{marker} {draw(inline_markdown())}")
        if depth < 5 and draw(st.integers(0, 3)) == 0:
            lines.append(draw(nested_list(depth + 1)))
    return "\n".join(lines)


@st.composite
def table(draw: st.DrawFn) -> str:
    columns = draw(st.integers(1, 12))
    cell = st.one_of(words, long_words, st.just(""), inline_markdown())
    head = [draw(cell).replace("|", "\\|") for _ in range(columns)]
    rows = [
        "| " + " | ".join(draw(cell).replace("|", "\\|") for _ in range(columns)) + " |"
        for _ in range(draw(st.integers(0, 4)))
    ]
    aligns = [draw(st.sampled_from(["---", ":--", ":-:", "--:"])) for _ in range(columns)]
    return "\n".join(["| " + " | ".join(head) + " |", "|" + "|".join(aligns) + "|", *rows])


@st.composite
def fence(draw: st.DrawFn) -> str:
    code = draw(st.lists(st.one_of(words, long_words, st.text(PUNCTUATION + " \t", max_size=200)), max_size=6))
    return draw(st.sampled_from(["```", "~~~", "```python"])) + "\n" + "\n".join(code) + "\n```"


blocks = st.one_of(
    inline_markdown(),
    st.builds(lambda level, text: "#" * level + " " + text, st.integers(1, 6), inline_markdown()),
    st.builds(lambda text, mark: f"{text}\n{mark * 3}", words, st.sampled_from("=-")),
    nested_list(),
    table(),
    fence(),
    st.builds(lambda text, depth: "> " * depth + text, inline_markdown(), st.integers(1, 6)),
    st.sampled_from(HTML_FRAGMENTS),
    st.just("---"),
    st.text(PUNCTUATION + " \n", min_size=1, max_size=40),
)
# Courses of many modules get short lessons, to keep the PDFs quick to lay out; long lessons have a test of their
# own.
short_lessons = st.lists(blocks, max_size=2).map("\n\n".join)
# A lesson that ends inside a code fence.
open_fences = short_lessons.map(lambda text: text + "\n\n```\nnever closed")
long_lessons = st.lists(blocks, min_size=4, max_size=16).map("\n\n".join)


@st.composite
def courses(draw: st.DrawFn, modules: st.SearchStrategy[int], lesson: st.SearchStrategy[str]) -> course_pb2.Course:
    course = course_pb2.Course(id="c1", prompt=draw(titles), title=draw(titles), description=draw(inline_markdown()))
    course.create_time.FromSeconds(1_700_000_000)
    for index in range(draw(modules)):
        module = course.modules.add(index=index, title=draw(titles), summary=draw(inline_markdown()))
        module.objectives.extend(draw(st.lists(words, max_size=3)))
        module.lesson.title = draw(titles)
        module.lesson.body_markdown = draw(lesson)
        module.lesson.key_points.extend(draw(st.lists(inline_markdown(), max_size=2)))
        for _ in range(draw(st.integers(1, 2))):
            choices = draw(st.lists(words, min_size=2, max_size=4))
            # An answer index outside the choices is bad stored data, and must render all the same.
            answer = draw(st.integers(0, len(choices)))
            module.quiz.questions.add(text=draw(inline_markdown()), choices=choices, answer_index=answer)
    return course


FONT_DIR = find_font_dir("")
# Few examples each: laying out a PDF takes a second or so. Each run draws new ones.
PROPERTIES = settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def pdf_text(data: bytes, tmp_path: Path) -> str:
    """The PDF's text without its page footers, which would split text that runs across a page break."""
    path = tmp_path / "course.pdf"
    path.write_bytes(data)
    text = subprocess.run(["pdftotext", str(path), "-"], check=True, capture_output=True, text=True).stdout
    pages = [page.strip().split("\n") for page in text.split("\f")]
    # The footer, on every page but the title page, is the page's last line.
    return "\n".join("\n".join(lines[:-1] if number else lines) for number, lines in enumerate(pages))


def comparable(text: str) -> str:
    # pdftotext breaks lines (and long words) where the layout did: compare without any white space.
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", text))


def right_to_left(text: str) -> bool:
    # Arabic is drawn unshaped, left to right, and poppler reorders it: pdftotext cannot give it back as written.
    return any(unicodedata.bidirectional(char) in ("R", "AL") for char in text)


def check_documents(course: course_pb2.Course, tmp_path: Path, font_dir: Path | None, page_size: str) -> None:
    pdf = render_pdf(course, font_dir, page_size)
    assert pdf.startswith(b"%PDF-")
    text = comparable(pdf_text(pdf, tmp_path))
    html = render_html(course).decode()
    assert not re.search(r"<\s*(script|img|iframe|object|embed|svg)", html, re.IGNORECASE)
    assert not re.search(r"\s(href|src)\s*=\s*\"\s*(javascript|data|vbscript):", html, re.IGNORECASE)
    assert not re.search(r"<[a-z]+[^>]*\son[a-z]+\s*=", html, re.IGNORECASE)
    markdown = render_markdown(course).decode()
    fonts = pdf_fonts(course, font_dir)
    for module in course.modules:
        heading = f"Module {module.index + 1}: {module.title}"
        if not right_to_left(heading):
            assert comparable(fonts.text(heading)) in text, heading
        assert f"<h2>{escape(heading)}</h2>" in html
        assert f"## {heading}" in markdown


many_modules = courses(st.integers(1, 20), st.one_of(short_lessons, open_fences))
page_sizes = st.sampled_from(["A4", "letter"])


@PROPERTIES
@given(course=many_modules, page_size=page_sizes)
def test_generated_courses_render_to_every_format(
    course: course_pb2.Course, page_size: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    check_documents(course, tmp_path_factory.mktemp("pdf"), FONT_DIR, page_size)


@settings(PROPERTIES, max_examples=3)
@given(course=many_modules, page_size=page_sizes)
def test_generated_courses_render_with_the_built_in_fonts(
    course: course_pb2.Course, page_size: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    check_documents(course, tmp_path_factory.mktemp("pdf"), None, page_size)


@PROPERTIES
@given(course=courses(st.just(1), long_lessons))
def test_generated_lesson_markdown_renders_to_every_format(
    course: course_pb2.Course, tmp_path_factory: pytest.TempPathFactory
) -> None:
    check_documents(course, tmp_path_factory.mktemp("pdf"), FONT_DIR, "A4")
