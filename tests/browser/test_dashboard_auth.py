"""The dashboard against a gateway that requires credentials: it asks for a token, keeps it for the tab only, and
shows the caller's tenant alone (an admin may pick another)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import jwt
import pytest
import pytest_asyncio
from playwright.async_api import Browser, expect

from tests.browser.conftest import Dashboard, new_tab
from tests.e2e.conftest import running_stack

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

SECRET = "browser-secret-for-hs256-tokens-of-32-bytes-and-more"


def token(tenant: str, scopes: str = "read write") -> str:
    return jwt.encode({"tenant": tenant, "scope": scopes, "exp": time.time() + 3600}, SECRET)


@pytest_asyncio.fixture(scope="module")
async def guarded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Dashboard]:
    base = tmp_path_factory.mktemp("dashboard-auth")
    async with running_stack(base, {"SYLLABUS_AUTH_JWT_SECRET": SECRET, "SYLLABUS_SERVICES": "gateway"}) as stack:
        yield Dashboard(stack, f"http://{stack.env['SYLLABUS_HTTP_ADDR']}", "", base)


async def test_the_page_asks_for_a_token_and_shows_only_the_callers_tenant(
    guarded: Dashboard, browser: Browser
) -> None:
    # No worker runs: the jobs stay queued, which is all the list needs.
    body = {"spec": {"summarizeText": {"text": "a text"}}, "options": {"labels": {"owner": "acme"}}}
    ours = (await guarded.call("POST", "/v1/jobs", body, token("acme")))["job"]["id"]
    body["options"] = {"labels": {"owner": "globex"}}
    theirs = (await guarded.call("POST", "/v1/jobs", body, token("globex")))["job"]["id"]

    tab = await new_tab(browser, guarded.base)
    page = tab.page
    await tab.open("/jobs")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    await tab.shot("sign-in")
    await page.get_by_label("Token or API key").fill("not-a-token")
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("alert")).to_contain_text("token")
    await expect(page.get_by_role("heading", name="Sign in")).to_be_visible()

    acme = token("acme")
    await page.get_by_label("Token or API key").fill(acme)
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    await expect(page.locator(f'tr[data-job="{ours}"]')).to_be_visible()
    await expect(page.locator(f'tr[data-job="{theirs}"]')).to_have_count(0)
    # Not an admin: the admin pages are not offered, and the overview leads to the jobs.
    await expect(page.get_by_role("link", name="Workers")).to_be_hidden()
    await tab.open("/")
    await expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    await tab.shot("jobs-signed-in")
    assert await page.evaluate("sessionStorage.getItem('syllabus.token')") == acme
    assert await tab.context.cookies() == []

    # A new tab of the same browser has no token: sessionStorage is per tab.
    other = await tab.context.new_page()
    await other.goto(f"{guarded.base}/#/jobs")
    await expect(other.get_by_role("heading", name="Sign in")).to_be_visible()
    assert tab.errors == []


async def test_an_admin_picks_the_tenant_to_show(guarded: Dashboard, browser: Browser) -> None:
    body = {"spec": {"summarizeText": {"text": "another text"}}}
    theirs = (await guarded.call("POST", "/v1/jobs", body, token("initech")))["job"]["id"]
    tab = await new_tab(browser, guarded.base)
    page = tab.page
    await tab.open("/jobs")
    await page.get_by_label("Token or API key").fill(token("ops", "read write admin"))
    await page.get_by_role("button", name="Sign in").click()
    await expect(page.get_by_role("link", name="Workers")).to_be_visible()
    await tab.open("/jobs")
    await expect(page.locator("#jobs-total")).to_be_visible()
    await expect(page.locator(f'tr[data-job="{theirs}"]')).to_have_count(0)
    await page.get_by_label("Tenant").fill("initech")
    await page.get_by_role("button", name="Show").click()
    await expect(page.locator(f'tr[data-job="{theirs}"]')).to_be_visible()
    await tab.shot("jobs-admin-tenant")
    assert tab.errors == []
