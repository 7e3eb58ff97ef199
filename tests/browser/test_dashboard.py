"""The dashboard used as a person would, in headless Chromium, against `syllabus up` and an acme task pool."""

from __future__ import annotations

import asyncio
import json
import re
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from tests.browser.conftest import PHONE, TRACE_URL, Dashboard, new_tab
from tests.e2e.conftest import STEP_DEADLINE

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

MARKUP = '<script>window.pwned = 1</script><img src="x" onerror="window.pwned = 2">'


async def watched(dashboard: Dashboard, job_id: str) -> dict[str, Any]:
    """The job's last event, once it has ended (its watch ends then)."""
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{dashboard.base}/v1/jobs/{job_id}:watch", timeout=aiohttp.ClientTimeout(STEP_DEADLINE)) as answer,
    ):
        lines = (await answer.text()).splitlines()
    event: dict[str, Any] = json.loads(lines[-1])["result"]["event"]
    return event


def task(name: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"task": {"name": name, "json": data}}}


@dataclass
class Populated:
    course_id: str
    dead_job: str
    markup_job: str


@pytest_asyncio.fixture(scope="module")
async def populated(dashboard: Dashboard) -> Populated:
    """Something on every page: a course written, a dead letter, a job whose input holds markup, a schedule."""
    course = {"course": {"prompt": "Message queues in practice", "modules": 2}}
    created = await dashboard.call("POST", "/v1/courses", course)
    dead = (await dashboard.call("POST", "/v1/jobs", task("text.reverse", {"words": "no text"})))["job"]["id"]
    spec = {"summarizeText": {"text": f"A text with markup in it: {MARKUP}"}}
    markup = (await dashboard.call("POST", "/v1/jobs", {"spec": spec, "options": {"labels": {"team": "docs"}}}))["job"]
    schedule = {"id": "hourly-summary", "interval": "3600s", "description": "a summary every hour", "spec": spec}
    await dashboard.call("POST", "/v1/schedules", schedule)
    triggered = await dashboard.call("POST", "/v1/schedules/hourly-summary:trigger", {})
    for job_id, state in (
        (created["job"]["id"], "JOB_STATE_SUCCEEDED"),
        (dead, "JOB_STATE_FAILED"),
        (markup["id"], "JOB_STATE_SUCCEEDED"),
        (triggered["job"]["id"], "JOB_STATE_SUCCEEDED"),
    ):
        assert (await watched(dashboard, job_id))["state"] == state
    return Populated(created["course"]["id"], dead, markup["id"])


@pytest_asyncio.fixture
async def paused_generator(dashboard: Dashboard) -> AsyncIterator[None]:
    await dashboard.call("POST", "/v1/admin/queues/generator:pause", {})
    try:
        yield
    finally:
        await dashboard.call("POST", "/v1/admin/queues/generator:resume", {})


async def test_a_course_from_the_form_is_followed_live_to_the_end_then_read_and_downloaded(
    dashboard: Dashboard, browser: Browser, paused_generator: None, tmp_path: Path
) -> None:
    tab = await new_tab(browser, dashboard.base)
    page = tab.page
    await tab.open("/courses")
    await page.get_by_label("What the course is about").fill("Message queues for Python developers")
    await page.get_by_label("Modules").fill("2")
    await page.get_by_label("Audience").fill("Python developers")
    await page.get_by_label("Level").select_option("COURSE_LEVEL_BEGINNER")
    await page.get_by_label("Provider").select_option("offline")
    await page.get_by_role("button", name="Write the course").click()
    await expect(page).to_have_url(re.compile(r"#/courses/\w+$"))
    # The generator's queue is paused: the course waits, and the page says so, until it is resumed elsewhere.
    await expect(page.locator("#course-state")).to_have_text("QUEUED")
    await expect(page.locator("#course-steps li[aria-current=step]")).to_have_text("Outline")
    await tab.shot("course-waiting")
    await dashboard.call("POST", "/v1/admin/queues/generator:resume", {})
    await expect(page.locator("#course-state")).to_have_text("SUCCEEDED")
    await expect(page.locator("#course-steps li.done")).to_have_count(5)
    await expect(page.locator("section.module")).to_have_count(2)
    # Underscores inside a word are text, not emphasis.
    await expect(page.locator("section.module").first).to_contain_text("GEMINI_API_KEY")

    answer = page.locator("section.module").first.locator("details.answer").first
    await expect(answer.locator(".revealed")).to_be_hidden()
    await answer.locator("summary").click()
    await expect(answer.locator(".revealed")).to_be_visible()
    await expect(answer.locator(".revealed")).to_contain_text("Answer: ")
    await expect(page.get_by_role("row", name="Total")).to_be_visible()
    await tab.shot("course")

    title = (await page.locator(".lesson-title").first.inner_text()).strip()
    async with page.expect_download() as started:
        await page.get_by_role("button", name="Download PDF").click()
    pdf = tmp_path / "course.pdf"
    await (await started.value).save_as(pdf)
    assert pdf.read_bytes().startswith(b"%PDF")
    text = await asyncio.create_subprocess_exec("pdftotext", str(pdf), "-", stdout=asyncio.subprocess.PIPE)
    out, _ = await text.communicate()
    assert title in " ".join(out.decode().split()), (title, out[:500])
    assert tab.errors == []


async def test_a_dead_letter_edited_and_retried_from_its_page_succeeds(dashboard: Dashboard, browser: Browser) -> None:
    tab = await new_tab(browser, dashboard.base)
    page = tab.page
    await tab.open("/deadletters")
    await expect(page.get_by_role("heading", name="Dead letters")).to_be_visible()
    # Live: the page follows the jobs from here on.
    await expect(page.locator(".live")).to_have_attribute("data-live", "on")
    job_id = (await dashboard.call("POST", "/v1/jobs", task("text.reverse", {"words": "no text here"})))["job"]["id"]
    row = page.locator(f'tr[data-job="{job_id}"]')
    # The list follows the jobs' events: the new dead letter shows up without a reload.
    await expect(row).to_contain_text("NoText")
    await tab.shot("deadletters")
    await row.get_by_role("link", name=f"Inspect or edit {job_id}").click()
    await expect(page.get_by_role("heading", name=f"Dead letter {job_id}")).to_be_visible()
    spec = json.loads(await page.get_by_label("Spec (JSON)").input_value())
    assert spec == {"task": {"name": "text.reverse", "json": {"words": "no text here"}}}
    edited = {"task": {"name": "text.reverse", "json": {"text": "stressed"}}}
    await page.get_by_label("Spec (JSON)").fill(json.dumps(edited))
    await tab.shot("deadletter")
    await page.get_by_role("button", name="Retry with these edits").click()
    await expect(page).to_have_url(re.compile(f"#/jobs/{job_id}$"))
    await expect(page.locator("#job-state")).to_have_text("SUCCEEDED")
    await expect(page.locator("#job-result")).to_contain_text('"reversed": "desserts"')
    await expect(page.locator("#timeline li[data-event=succeeded]")).to_have_count(1)
    # The job links to its trace (the W3C trace id every job carries) where the gateway says traces are shown.
    await expect(page.locator("#trace-id")).to_have_text(re.compile(r"^[0-9a-f]{32}$"))
    trace_id = await page.locator("#trace-id").inner_text()
    link = page.locator("#trace-id a")
    await expect(link).to_have_attribute("href", TRACE_URL.replace("{trace_id}", trace_id))
    await tab.shot("job")
    assert tab.errors == []


async def test_a_worker_process_appears_in_the_list_and_leaves_it_when_stopped(
    dashboard: Dashboard, browser: Browser, tmp_path: Path
) -> None:
    tab = await new_tab(browser, dashboard.base)
    page = tab.page
    await tab.open("/workers")
    await expect(page.locator('tr[data-worker] td:text-is("generator")')).to_have_count(1)
    worker = await dashboard.worker(tmp_path / "worker.log")
    try:
        row = page.locator(f'tr[data-pid="{worker.pid}"]')
        await expect(row).to_be_visible()
        await expect(row).to_contain_text("task pool acme")
        await tab.shot("workers")
        worker.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(worker.wait(), STEP_DEADLINE) == 0
        await expect(row).to_have_count(0)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert tab.errors == []


async def test_a_worker_process_killed_outright_leaves_the_list_once_its_heartbeat_is_old(
    dashboard: Dashboard, browser: Browser, tmp_path: Path
) -> None:
    tab = await new_tab(browser, dashboard.base)
    page = tab.page
    await tab.open("/workers")
    worker = await dashboard.worker(tmp_path / "worker.log")
    try:
        row = page.locator(f'tr[data-pid="{worker.pid}"]')
        await expect(row).to_be_visible()
        worker.kill()
        await worker.wait()
        # Its entry stays until its time to live runs out (15 s); then the worker stream drops it.
        await expect(row).to_have_count(0)
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
    assert tab.errors == []


async def test_a_queue_paused_from_the_overview_holds_its_jobs_until_resumed(
    dashboard: Dashboard, browser: Browser
) -> None:
    tab = await new_tab(browser, dashboard.base)
    page = tab.page
    await tab.open("/")
    queue = page.locator('tr[data-queue="pool-acme"]')
    try:
        await queue.get_by_role("button", name="Pause queue pool-acme").click()
        await expect(queue.locator(".badge")).to_have_text("paused")
        jobs = [
            (await dashboard.call("POST", "/v1/jobs", task("text.reverse", {"text": f"held {n}"})))["job"]["id"]
            for n in range(3)
        ]
        # The counts move live (the queue stats stream), and the jobs wait.
        await expect(queue.locator('[data-field="waiting"]')).to_have_text("3")
        await tab.shot("overview")
        listing = await tab.context.new_page()
        await listing.goto(f"{dashboard.base}/#/jobs?kind=text.reverse&labels=")
        for job_id in jobs:
            await expect(listing.locator(f'tr[data-job="{job_id}"]')).to_have_attribute("data-state", "QUEUED")
        await queue.get_by_role("button", name="Resume queue pool-acme").click()
        await expect(queue.locator(".badge")).to_have_text("serving")
        # The list, open in another tab, follows the jobs to their end without a reload.
        for job_id in jobs:
            await expect(listing.locator(f'tr[data-job="{job_id}"]')).to_have_attribute("data-state", "SUCCEEDED")
        await expect(queue.locator('[data-field="waiting"]')).to_have_text("0")
    finally:
        await dashboard.call("POST", "/v1/admin/queues/pool-acme:resume", {})
    assert tab.errors == []


async def test_a_job_input_holding_markup_is_shown_as_text_on_a_locked_down_page(
    dashboard: Dashboard, browser: Browser, populated: Populated
) -> None:
    tab = await new_tab(browser, dashboard.base)
    page = tab.page
    answer = await page.goto(f"{dashboard.base}/#/jobs/{populated.markup_job}")
    assert answer is not None
    headers = answer.headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert (headers["x-content-type-options"], headers["referrer-policy"]) == ("nosniff", "no-referrer")
    await expect(page.locator("#job-input")).to_contain_text(MARKUP.replace('"', '\\"'))
    await expect(page.locator("#job-state")).to_have_text("SUCCEEDED")
    assert await page.evaluate("window.pwned") is None
    assert await page.locator("main script, main img").count() == 0
    assert tab.errors == []


PAGES = {
    "overview": "/",
    "jobs": "/jobs",
    "workers": "/workers",
    "deadletters": "/deadletters",
    "courses": "/courses",
    "schedules": "/schedules",
}


async def test_every_page_populated_fits_a_phone_screen(
    dashboard: Dashboard, browser: Browser, populated: Populated
) -> None:
    pages = PAGES | {
        "job": f"/jobs/{populated.markup_job}",
        "deadletter": f"/deadletters/{populated.dead_job}",
        "course": f"/courses/{populated.course_id}",
    }
    phone = await new_tab(browser, dashboard.base, PHONE)
    desktop = await new_tab(browser, dashboard.base)
    for name, route in pages.items():
        for tab, suffix in ((phone, "-phone"), (desktop, "-desktop")):
            await tab.open(route)
            await expect(tab.page.locator("main h1")).to_be_visible()
            await expect(tab.page.locator("main")).not_to_contain_text("Loading…")
            await expect(tab.page.locator("main table, main section.module").first).to_be_visible()
            overflow = await tab.page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if tab is phone:
                assert overflow <= 0, f"{name} is {overflow}px wider than a phone's screen"
            await tab.shot(f"{name}{suffix}")
    assert phone.errors == desktop.errors == []


async def test_the_navigation_is_reached_and_followed_with_the_keyboard(dashboard: Dashboard, browser: Browser) -> None:
    tab = await new_tab(browser, dashboard.base)
    page = tab.page
    await tab.open("/")
    await expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    # From the top of the page forward; after a link is followed, focus is on the page's content, so back.
    for target, key in (("Jobs", "Tab"), ("Courses", "Shift+Tab"), ("Workers", "Shift+Tab")):
        for _ in range(40):
            await page.keyboard.press(key)
            focused = await page.evaluate(
                "[document.activeElement.textContent, document.activeElement.matches(':focus-visible')]"
            )
            if focused[0] == target:
                break
        assert focused == [target, True], f"{target} was never focused (visibly) with {key}"
        await page.keyboard.press("Enter")
        await expect(page.locator("main h1")).to_have_text(target)
        await expect(page.get_by_role("link", name=target, exact=True)).to_have_attribute("aria-current", "page")
        await expect(page.locator("#view")).to_be_focused()
    assert tab.errors == []


async def test_a_schedule_made_with_the_form_is_paused_resumed_run_and_deleted(
    dashboard: Dashboard, browser: Browser
) -> None:
    tab = await new_tab(browser, dashboard.base)
    page = tab.page
    await tab.open("/schedules")
    await page.get_by_label("Id").fill("from-the-page")
    await page.get_by_label("Interval or cron").fill("2h")
    await page.get_by_label("Description").fill("made in the dashboard")
    await page.get_by_role("button", name="Create the schedule").click()
    row = page.locator('tr[data-schedule="from-the-page"]')
    await expect(row).to_contain_text("every 7200s")
    await expect(row).to_contain_text("never")
    await row.get_by_role("button", name="Pause schedule from-the-page").click()
    await expect(row.locator(".badge.paused")).to_have_count(1)
    await row.get_by_role("button", name="Resume schedule from-the-page").click()
    await expect(row.locator(".badge.paused")).to_have_count(0)
    await row.get_by_role("button", name="Run schedule from-the-page now").click()
    # The run's job ends on its own; the row follows it.
    await expect(row.get_by_role("link")).to_have_text("SUCCEEDED")
    await tab.shot("schedules")
    delete = row.get_by_role("button", name="Delete schedule from-the-page")
    await delete.click()
    await expect(delete).to_have_text("Press again to delete")
    await delete.click()
    await expect(row).to_have_count(0)
    left = (await dashboard.call("GET", "/v1/schedules")).get("schedules", [])
    assert "from-the-page" not in [schedule["id"] for schedule in left]
    assert tab.errors == []
