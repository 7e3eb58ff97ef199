"""The dashboard's files as the REST shim serves them (no browser needed): where they are, their headers, and
rules the scripts keep."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from gateway.dashboard.assets import STATIC
from gateway.rest.server import RestGateway, services_named
from gateway.services import SERVICE_NAMES

SCRIPTS = sorted(STATIC.rglob("*.js"))
IMPORT = re.compile(r"""(?:from|import)\s*\(?\s*['"`](\.{1,2}/[^'"`$]+)['"`]""")


@pytest_asyncio.fixture
async def shim() -> AsyncIterator[httpx.AsyncClient]:
    # Nothing listens at the gRPC target: static files never reach it.
    gateway = RestGateway(services_named(SERVICE_NAMES), "127.0.0.1:9")
    address = await gateway.start("127.0.0.1:0")
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}") as client:
            yield client
    finally:
        await gateway.stop()


async def test_the_page_and_its_files_are_served_with_a_locked_down_policy(shim: httpx.AsyncClient) -> None:
    page = await shim.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"] == "text/html; charset=utf-8"
    policy = page.headers["content-security-policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "style-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy and "unsafe" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert page.headers["referrer-policy"] == "no-referrer"
    assert "set-cookie" not in page.headers
    for path in re.findall(r'(?:src|href)="(/dashboard/[^"]+)"', page.text):
        answer = await shim.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["x-content-type-options"] == "nosniff"
    script = await shim.get("/dashboard/app.js")
    assert script.headers["content-type"] == "text/javascript; charset=utf-8"


async def test_every_module_a_script_imports_is_served(shim: httpx.AsyncClient) -> None:
    for script in SCRIPTS:
        for target in IMPORT.findall(script.read_text()):
            path = (script.parent / target).resolve().relative_to(STATIC)
            answer = await shim.get(f"/dashboard/{path.as_posix()}")
            assert answer.status_code == 200, f"{script.name} imports {target}, which is not served"
    # Pages are imported by name from the routes: each must exist.
    routes = re.findall(r"\[/\^[^,]+, '(\w+)'", (STATIC / "app.js").read_text())
    assert routes
    for name in routes:
        assert (await shim.get(f"/dashboard/pages/{name}.js")).status_code == 200, name


async def test_a_path_under_the_dashboard_without_a_file_is_a_404_status(shim: httpx.AsyncClient) -> None:
    for path in ("/dashboard/nothing.js", "/dashboard/../pyproject.toml", "/dashboard/", "/dashboard/assets.py"):
        answer = await shim.get(path)
        assert answer.status_code == 404, path
        assert answer.json()["code"] == 5


async def test_another_host_gets_nothing(shim: httpx.AsyncClient) -> None:
    answer = await shim.get("/", headers={"Host": "attacker.example"})
    assert answer.status_code == 421


def test_no_script_builds_the_page_from_html_strings() -> None:
    for script in SCRIPTS:
        text = script.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{script.name} uses {sink}"


async def test_the_pages_are_told_where_traces_are_shown(shim: httpx.AsyncClient) -> None:
    unset = await shim.get("/dashboard/settings.json")
    assert unset.status_code == 200 and unset.headers["content-type"] == "application/json"
    assert unset.json() == {"traceUrl": ""}
    gateway = RestGateway(
        services_named(SERVICE_NAMES), "127.0.0.1:9", trace_url="https://jaeger.example/trace/{trace_id}"
    )
    address = await gateway.start("127.0.0.1:0")
    try:
        async with httpx.AsyncClient(base_url=f"http://{address}") as client:
            told = await client.get("/dashboard/settings.json")
    finally:
        await gateway.stop()
    assert told.json() == {"traceUrl": "https://jaeger.example/trace/{trace_id}"}
