"""An Arabic course in a real headless Chromium: the HTML document reads right to left (its text starts at the
right), and its SCORM quiz grades and reports the score in Arabic. The page goes to
test-artifacts/screenshots/course-ar-html.png for a person to look at."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from playwright.async_api import Browser, expect

from renderer.html import render_html
from renderer.phrases import phrases
from renderer.scorm import render_scorm_12
from tests.browser.conftest import new_tab
from tests.browser.test_scorm import served  # noqa: F401 (the fixture)
from tests.course.language_samples import SAMPLES, sample_course

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# Where a block's text starts and ends on the page, and the block's own edges.
TEXT_BOX = """element => {
  const range = document.createRange();
  range.selectNodeContents(element);
  const text = range.getBoundingClientRect(), box = element.getBoundingClientRect();
  return {textLeft: text.left, textRight: text.right, left: box.left, right: box.right};
}"""


async def test_an_arabic_course_reads_right_to_left(browser: Browser, served: tuple[Path, str]) -> None:  # noqa: F811
    directory, base = served
    course = sample_course(SAMPLES["ar"])
    words = phrases("ar")
    (directory / "course.html").write_bytes(render_html(course))
    with zipfile.ZipFile(io.BytesIO(render_scorm_12(course))) as package:
        package.extractall(directory)
    tab = await new_tab(browser, base)
    try:
        await tab.page.goto(f"{base}/course.html")
        assert await tab.page.evaluate("getComputedStyle(document.body).direction") == "rtl"
        summary = await tab.page.locator("section p").first.evaluate(TEXT_BOX)
        # A line shorter than the column sits at its right edge.
        assert summary["textRight"] == pytest.approx(summary["right"], abs=2)
        assert summary["textLeft"] > summary["left"] + 100
        await expect(tab.page.locator("nav.toc h2")).to_have_text(words.contents)
        await tab.shot("course-ar-html")
        # The quiz page without an LMS around it: it still grades, in Arabic.
        await tab.page.goto(f"{base}/quiz-1.html")
        await tab.page.locator('#question-1 input[value="0"]').check()
        await tab.page.get_by_role("button", name=words.submit).click()
        score = words.score.format(correct=1, total=1)
        await expect(tab.page.locator("#result")).to_contain_text(f"{score} ({words.passed})")
    finally:
        await tab.context.close()
    assert tab.errors == []
