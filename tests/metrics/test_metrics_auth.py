"""/metrics with authentication on is for admins, through the same gate as every method; off, it is open."""

from __future__ import annotations

import httpx

from tests.metrics.conftest import Gateway, token
from tests.metrics.scrape import Page


async def test_metrics_need_an_admin_credential_when_authentication_is_on(secured_gateway: Gateway) -> None:
    url = secured_gateway.metrics_url
    async with httpx.AsyncClient(timeout=30) as client:
        anonymous = await client.get(url)
        assert anonymous.status_code == 401
        assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
        assert "syllabus_" not in anonymous.text
        forged = await client.get(url, headers={"Authorization": "Bearer not-a-token"})
        assert forged.status_code == 401
        reader = await client.get(url, headers={"Authorization": f"Bearer {token('read write')}"})
        assert reader.status_code == 403
        assert "admin" in reader.json()["message"]
        admin = await client.get(url, headers={"Authorization": f"Bearer {token('admin')}"})
    assert admin.status_code == 200
    assert admin.headers["content-type"].startswith("text/plain")
    page = Page(admin.text)
    assert "syllabus_queue_jobs" in page.names()


async def test_metrics_are_open_when_authentication_is_off(gateway: Gateway) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        answer = await client.get(gateway.metrics_url)
        assert answer.status_code == 200
        # Prometheus asks for OpenMetrics first: prometheus_client answers in it.
        openmetrics = await client.get(
            gateway.metrics_url, headers={"Accept": "application/openmetrics-text; version=1.0.0"}
        )
    assert openmetrics.status_code == 200
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n")
