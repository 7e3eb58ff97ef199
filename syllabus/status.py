"""Every service's status server on SYLLABUS_METRICS_ADDR: /metrics for Prometheus, /healthz and /readyz for
the probes of an orchestrator (Kubernetes, Docker's HEALTHCHECK through `syllabus probe`).

/healthz answers 200 while the process's event loop does (the server runs on that loop, so a loop stuck in a
blocking call fails it). /readyz answers 200 only when every check of the process passes (connected to NATS, its
worker consuming), else 503 with the first reason; it turns 503 as soon as a stop signal arrives, so that
traffic moves elsewhere while the process drains. The server starts before the connections are opened: a
service that waits for NATS is alive and says why it is not ready.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from nats.aio.client import Client
from prometheus_client import REGISTRY
from prometheus_client.registry import Collector

from syllabus.config import MetricsConfig
from syllabus.metrics.exposition import render

log = logging.getLogger(__name__)
METRICS, LIVE, READY = "/metrics", "/healthz", "/readyz"
# A check returns why the process is not ready, or None when its part is.
Check = Callable[[], str | None]
# The URL this process's metrics page answers on, once it listens; "" while it has none. Workers advertise it
# in their presence entry (syllabus.presence).
_advertised = ""


def advertised_url() -> str:
    return _advertised


class Health:
    """What /readyz asks: the process's checks, or the phase it is in before it has any and after it stops."""

    def __init__(self, phase: str = "starting: connecting to NATS and the store") -> None:
        self._phase: str | None = phase
        self._checks: tuple[Check, ...] = ()

    def ready_when(self, *checks: Check) -> None:
        """The process is set up: from now on it is ready whenever every check passes."""
        self._checks = checks
        self._phase = None

    def stopping(self) -> None:
        self._phase = "stopping: draining"

    def unready(self) -> str | None:
        """The first reason the process is not ready, or None."""
        if self._phase is not None:
            return self._phase
        for check in self._checks:
            if (reason := check()) is not None:
                return reason
        return None


@dataclass
class Scrape:
    """What /metrics shows: a registry, and what brings its gauges up to date first. The gateway, once connected,
    joins its queue gauges to the process's registry."""

    registry: Collector = REGISTRY
    before: Callable[[], Awaitable[None]] | None = None


def nats_connected(nc: Client) -> Check:
    return lambda: None if nc.is_connected else "NATS connection lost: reconnecting"


def _url(host: str, port: int) -> str:
    # A wildcard address is reached by the machine's name.
    shown = socket.gethostname() if host in ("", "0.0.0.0", "::", "[::]") else host
    return f"http://{shown}:{port}{METRICS}"


@asynccontextmanager
async def status_server(config: MetricsConfig, health: Health, scrape: Scrape | None = None) -> AsyncIterator[str]:
    """Serve the status pages on `config.addr` for the block; yields the metrics URL ("" when no address is set)."""
    global _advertised
    if not config.addr:
        yield ""
        return
    from aiohttp import web  # only a process with a status port pays for the import

    shown = scrape or Scrape()

    async def page(request: web.BaseRequest) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return web.Response(status=405, text="only GET is served here\n", headers={"Allow": "GET, HEAD"})
        if request.path == LIVE:
            return web.Response(text="ok\n")
        if request.path == READY:
            reason = health.unready()
            return web.Response(text="ready\n") if reason is None else web.Response(status=503, text=f"{reason}\n")
        if request.path == METRICS:
            if shown.before is not None:
                await shown.before()
            body, content_type = render(request.headers.get("Accept", ""), shown.registry)
            return web.Response(body=body, headers={"Content-Type": content_type})
        return web.Response(status=404, text=f"served here: {METRICS}, {LIVE}, {READY}\n")

    runner = web.ServerRunner(web.Server(page, access_log=None))
    await runner.setup()
    host, _, port = config.addr.rpartition(":")
    try:
        site = web.TCPSite(runner, host.strip("[]"), int(port))
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise OSError(f"SYLLABUS_METRICS_ADDR={config.addr}: cannot listen there ({exc.strerror})") from exc
    url = _url(host, runner.addresses[0][1])
    _advertised = url
    log.info("metrics at %s (and %s, %s)", url, LIVE, READY)
    try:
        yield url
    finally:
        _advertised = ""
        await runner.cleanup()
