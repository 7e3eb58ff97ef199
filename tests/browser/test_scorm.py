"""A SCORM package's quiz page in a real headless Chromium, inside a stub LMS page whose API object records every
call: the page must find the API up the frame chain, and report the score and pass or fail when submitted."""

from __future__ import annotations

import asyncio
import io
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from aiohttp import web
from playwright.async_api import Browser, expect

from renderer.scorm import SCORM_12, SCORM_2004, Edition, render_scorm
from tests.browser.conftest import UI_TIMEOUT
from tests.course.offline_course import offline_course

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

# The stub LMS: both editions' API objects, each call recorded as [name, ...arguments] and answered "true".
LMS_PAGE = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>Stub LMS</title><script>
window.calls = [];
function recorder(names) {
  var api = {};
  names.forEach(function (name) {
    api[name] = function () { window.calls.push([name].concat(Array.prototype.slice.call(arguments))); return 'true'; };
  });
  api.LMSGetLastError = api.GetLastError = function () { return '0'; };
  return api;
}
window.API = recorder(['LMSInitialize', 'LMSSetValue', 'LMSGetValue', 'LMSCommit', 'LMSFinish']);
window.API_1484_11 = recorder(['Initialize', 'SetValue', 'GetValue', 'Commit', 'Terminate']);
</script></head><body><iframe src="quiz-1.html" title="course" width="900" height="700"></iframe></body></html>"""


@pytest_asyncio.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[Path, str]]:
    """A directory served over real HTTP on a free port: the package is unpacked into it beside the LMS page."""
    app = web.Application()
    app.router.add_static("/", tmp_path)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield tmp_path, f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("edition", "wrong"),
    [(SCORM_12, 0), (SCORM_12, 1), (SCORM_2004, 0), (SCORM_2004, 1)],
    ids=["1.2-all-right", "1.2-one-wrong", "2004-all-right", "2004-one-wrong"],
)
async def test_the_quiz_reports_its_score_to_the_lms(
    browser: Browser, served: tuple[Path, str], edition: Edition, wrong: int
) -> None:
    directory, base = served
    course = await asyncio.to_thread(offline_course, "Bread baking", 1)
    with zipfile.ZipFile(io.BytesIO(render_scorm(course, edition))) as package:
        package.extractall(directory)
    (directory / "lms.html").write_text(LMS_PAGE)
    questions = course.modules[0].quiz.questions
    context = await browser.new_context()
    try:
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        await page.goto(f"{base}/lms.html")
        quiz = page.frame_locator("iframe")
        for number, question in enumerate(questions, 1):
            # The first `wrong` questions get a wrong choice, the rest the right one.
            choice = (question.answer_index + 1) % len(question.choices) if number <= wrong else question.answer_index
            await quiz.locator(f'#question-{number} input[value="{choice}"]').check(timeout=UI_TIMEOUT)
        await quiz.get_by_role("button", name="Submit answers").click()
        await expect(quiz.locator("#result")).to_contain_text(f"Score: {len(questions) - wrong} of {len(questions)}")
        calls = await page.evaluate("window.calls")
    finally:
        await context.close()
    assert errors == []
    right, total = len(questions) - wrong, len(questions)
    status = "passed" if right / total >= 0.7 else "failed"
    if edition is SCORM_12:
        assert calls == [
            ["LMSInitialize", ""],
            ["LMSSetValue", "cmi.core.score.raw", str(right)],
            ["LMSSetValue", "cmi.core.score.min", "0"],
            ["LMSSetValue", "cmi.core.score.max", str(total)],
            ["LMSSetValue", "cmi.core.lesson_status", status],
            ["LMSCommit", ""],
            ["LMSFinish", ""],
        ]
    else:
        assert calls[0] == ["Initialize", ""]
        assert calls[1][:2] == ["SetValue", "cmi.score.scaled"]
        assert float(calls[1][2]) == pytest.approx(right / total)
        assert calls[2:] == [
            ["SetValue", "cmi.score.raw", str(right)],
            ["SetValue", "cmi.score.min", "0"],
            ["SetValue", "cmi.score.max", str(total)],
            ["SetValue", "cmi.completion_status", "completed"],
            ["SetValue", "cmi.success_status", status],
            ["Commit", ""],
            ["Terminate", ""],
        ]
