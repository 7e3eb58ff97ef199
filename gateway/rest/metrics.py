"""GET /metrics on the gateway's HTTP port: the process's Prometheus metrics and the queues' gauges.

With authentication on, the page is for admins: the same gate as every method (Prometheus sends
`Authorization: Bearer` from its `authorization.credentials_file`), asked for the admin scope. Off, it is open,
as every method is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiohttp import web

from gateway.auth.gate import Gate, Refused
from gateway.rest import errors
from gateway.status import status_for
from syllabus.metrics.exposition import render
from syllabus.status import Scrape

SCOPE = "admin"


class _Credentials:
    """The request's credentials as the gate reads a call's metadata."""

    def __init__(self, request: web.BaseRequest) -> None:
        self._authorization = request.headers.get("Authorization", "")

    def invocation_metadata(self) -> Sequence[tuple[str, Any]]:
        return (("authorization", self._authorization),) if self._authorization else ()


class MetricsPage:
    """The page the status server shows too (`scrape`), behind the gate."""

    def __init__(self, gate: Gate, scrape: Scrape) -> None:
        self._gate = gate
        self._scrape = scrape

    async def answer(self, request: web.BaseRequest) -> web.Response:
        try:
            await self._gate.admit(_Credentials(request), SCOPE)
        except Refused as refused:
            return errors.response(refused.status)
        except Exception as exc:
            # A rate limit reached, or one that cannot be checked: its status, as for any call.
            status = status_for(exc)
            if status is None:
                raise
            return errors.response(status)
        if self._scrape.before is not None:
            await self._scrape.before()
        body, content_type = render(request.headers.get("Accept", ""), self._scrape.registry)
        return web.Response(body=body, headers={"Content-Type": content_type})
