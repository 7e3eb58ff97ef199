"""The dashboard in a real headless Chromium (Debian's, driven by Playwright) against `syllabus up` as a real process.

Screenshots go to test-artifacts/screenshots/ (kept by CI, ignored by git). Without Chromium the tests are skipped,
saying so; Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from tests.e2e.conftest import ROOT, STEP_DEADLINE, Stack, running_stack
from tests.e2e.test_tasks_e2e import build_acme, declared

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# Generous for a loaded machine; a healthy run takes a fraction of it.
UI_TIMEOUT = 60_000
# Where the dashboard is told to link traces (SYLLABUS_DASHBOARD_TRACE_URL): never opened.
TRACE_URL = "http://traces.invalid/trace/{trace_id}"
expect.set_options(timeout=UI_TIMEOUT)


def chromium() -> str:
    for candidate in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("no Chromium: install Debian's `chromium` (./scripts/test does) to run the dashboard's browser tests")


@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Tab:
    """A page in a fresh browser context (its own sessionStorage), and the errors its scripts raised."""

    context: BrowserContext
    page: Page
    base: str
    errors: list[str] = field(default_factory=list)

    async def open(self, route: str) -> None:
        await self.page.goto(f"{self.base}/#{route}")

    async def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True)


async def new_tab(browser: Browser, base: str, viewport: dict[str, int] = DESKTOP) -> Tab:
    context = await browser.new_context(viewport={"width": viewport["width"], "height": viewport["height"]})
    context.set_default_timeout(UI_TIMEOUT)
    page = await context.new_page()
    tab = Tab(context, page, base)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    return tab


@dataclass
class Dashboard:
    stack: Stack
    base: str
    nats_url: str
    acme: Path

    async def call(self, method: str, path: str, body: Any = None, token: str = "") -> Any:
        """The REST API as any client calls it; the answer's JSON (an error status fails the test)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.base + path, json=body, headers=headers) as answer,
        ):
            payload = await answer.json(content_type=None)
            assert answer.status == 200, (method, path, answer.status, payload)
            return payload

    async def worker(self, log: Path) -> asyncio.subprocess.Process:
        """Another process of the acme task pool (`syllabus worker acme.tasks:app`)."""
        env = self.stack.env | {"SYLLABUS_NATS_URL": self.nats_url}
        with log.open("ab") as sink:
            return await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "syllabus",
                "worker",
                "acme.tasks:app",
                cwd=self.acme,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )


@pytest_asyncio.fixture(scope="module")
async def dashboard(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dashboard]:
    """`syllabus up` (offline model provider) and one process of the acme task pool beside it."""
    base = tmp_path_factory.mktemp("dashboard")
    acme = base / "acme-project"
    descriptor_set = build_acme(acme)
    extra = {
        "SYLLABUS_DESCRIPTOR_SETS": str(descriptor_set),
        "SYLLABUS_LLM_PROVIDER": "offline",
        "SYLLABUS_DASHBOARD_TRACE_URL": TRACE_URL,
    }
    async with running_stack(base, extra) as stack:
        found = re.search(r"nats-server started \(pid \d+\) at (nats://\S+)", stack.log.read_text())
        assert found is not None, stack.log_tail()
        running = Dashboard(stack, f"http://{stack.env['SYLLABUS_HTTP_ADDR']}", found.group(1), acme)
        pool = await running.worker(base / "worker.log")
        try:
            await declared(running.nats_url, "clock.wait")
            yield running
        finally:
            pool.terminate()
            assert await asyncio.wait_for(pool.wait(), STEP_DEADLINE) == 0
