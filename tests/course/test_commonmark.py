"""Lesson Markdown: the shared CommonMark parser, its link policy, lessons embedded in the Markdown document, and
what reaches the HTML document (no raw HTML, no unsafe links, no remote images)."""

from __future__ import annotations

import pytest

from renderer.commonmark import embed, is_safe_link
from renderer.html import render_html
from renderer.markdown import render_markdown
from tests.course.offline_course import offline_course


def lesson_html(markdown: str) -> str:
    course = offline_course("Bread baking", modules=1)
    course.modules[0].lesson.body_markdown = markdown
    page = render_html(course).decode()
    return page[page.index("<h3 id=") : page.index('<div class="key-points">')]


@pytest.mark.parametrize(
    ("url", "safe"),
    [
        ("https://example.com/a?b=c", True),
        ("http://example.com", True),
        ("mailto:someone@example.com", True),
        ("relative/page.html", True),
        ("#section", True),
        ("javascript:alert(1)", False),
        ("JavaScript:alert(1)", False),
        ("vbscript:msgbox", False),
        ("data:text/html;base64,PHNjcmlwdD4=", False),
        ("file:///etc/passwd", False),
        ("ftp://example.com", False),
    ],
)
def test_only_http_https_mailto_and_relative_links_are_links(url: str, safe: bool) -> None:
    assert is_safe_link(url) is safe
    page = lesson_html(f"[here]({url})")
    assert ('<a href="' in page) is safe


def test_raw_html_in_a_lesson_is_shown_as_text() -> None:
    page = lesson_html(
        '<script>alert("x")</script>\n\n<div onclick="steal()">block</div>\n\ninline <img src=x onerror=alert(1)> '
        '<a href="javascript:alert(1)">link</a>\n\n<!-- comment -->'
    )
    assert "<script" not in page and "<img" not in page and "<div onclick" not in page and "<!--" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_images_become_links_to_them_and_are_never_loaded() -> None:
    page = lesson_html(
        "![A cat](https://example.com/cat.png) [![logo](https://example.com/l.png)](https://example.com)"
    )
    assert "<img" not in page
    assert '<a class="image" href="https://example.com/cat.png">[image: A cat]</a>' in page
    # An image inside a link is the link's text: links do not nest.
    assert '<a href="https://example.com">[image: logo]</a>' in page


def test_tables_strikethrough_nested_lists_and_deep_headings() -> None:
    page = lesson_html(
        "| a | b |\n|:--|--:|\n| 1 | **2** |\n\n~~old~~\n\n- one\n  - two\n    1. three\n\n#### four\n\n###### six"
    )
    assert (
        '<th style="text-align:left">a</th>' in page and '<td style="text-align:right"><strong>2</strong></td>' in page
    )
    assert "<s>old</s>" in page
    assert "<ul>\n<li>one\n<ul>\n<li>two\n<ol>\n<li>three</li>" in page
    # Two levels down, and never below h6.
    assert "<h6>four</h6>" in page and "<h6>six</h6>" in page


def test_embedded_lessons_move_headings_down_and_leave_code_alone() -> None:
    lesson = (
        "# One\n\n## Two ##\n\n```\n# not a heading\n```\n\n    # indented code\n\n"
        "> ### quoted\n\n- #### listed\n\nSetext\n===\n\nTwo lines\nof setext\n---\n\nC#\n==\n\n###### six"
    )
    assert embed(lesson, 2).split("\n") == [
        "### One",
        "",
        "#### Two ##",
        "",
        "```",
        "# not a heading",
        "```",
        "",
        "    # indented code",
        "",
        "> ##### quoted",
        "",
        "- ###### listed",
        "",
        "### Setext",
        "",
        "#### Two lines of setext",
        "",
        "### C# #",
        "",
        "###### six",
    ]


@pytest.mark.parametrize(("fence", "closing"), [("```", "```"), ("~~~~", "~~~~"), ("```python", "```")])
def test_an_unclosed_fence_is_closed_so_it_cannot_swallow_the_document(fence: str, closing: str) -> None:
    assert embed(f"text\n\n{fence}\ncode\n", 2) == f"text\n\n{fence}\ncode\n{closing}"
    assert embed(f"{fence}\ncode\n{closing}", 2) == f"{fence}\ncode\n{closing}"
    course = offline_course("Bread baking", modules=1)
    course.modules[0].lesson.body_markdown = f"Intro\n\n{fence}\nunclosed"
    document = render_markdown(course).decode()
    # What follows the lesson is outside the code block: the key points and the quiz are still Markdown.
    assert f"{fence}\nunclosed\n{closing}\n\n**Key points**" in document
