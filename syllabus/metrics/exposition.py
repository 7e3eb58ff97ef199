"""The /metrics page: prometheus_client's text (or OpenMetrics, when the scraper asks for it) of this process's
registry, and the small aiohttp server that serves it on SYLLABUS_METRICS_ADDR in worker processes and the
scheduler. The gateway serves the same page on its HTTP port (gateway.rest.metrics)."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager

from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from syllabus.config import MetricsConfig

log = logging.getLogger(__name__)
PATH = "/metrics"
# The URL this process's metrics server answers on, once it listens; "" while it has none. Workers advertise it
# in their presence entry (syllabus.presence).
_advertised = ""


def advertised_url() -> str:
    return _advertised


class Joined(Collector):
    """Several collectors as one registry: the process's own, and the gateway's queue gauges."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self._collectors = tuple(collectors)

    def collect(self) -> Iterator[Metric]:
        for collector in self._collectors:
            yield from collector.collect()


def render(accept: str, registry: Collector = REGISTRY) -> tuple[bytes, str]:
    """The page and its content type, in the format the scraper's Accept header asks for."""
    encoder, content_type = choose_encoder(accept)
    return encoder(registry), content_type


def _url(host: str, port: int) -> str:
    # A wildcard address is reached by the machine's name.
    shown = socket.gethostname() if host in ("", "0.0.0.0", "::", "[::]") else host
    return f"http://{shown}:{port}{PATH}"


@asynccontextmanager
async def metrics_server(config: MetricsConfig) -> AsyncIterator[str]:
    """Serve /metrics on `config.addr` for the block; yields its URL ("" when no address is set)."""
    global _advertised
    if not config.addr:
        yield ""
        return
    from aiohttp import web  # only a process with a metrics port pays for the import

    async def page(request: web.BaseRequest) -> web.StreamResponse:
        if request.path != PATH or request.method not in ("GET", "HEAD"):
            return web.Response(status=404, text="only GET /metrics is served here\n")
        body, content_type = render(request.headers.get("Accept", ""))
        return web.Response(body=body, headers={"Content-Type": content_type})

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
    log.info("metrics at %s", url)
    try:
        yield url
    finally:
        _advertised = ""
        await runner.cleanup()
