"""The /metrics page: prometheus_client's text (or OpenMetrics, when the scraper asks for it) of this process's
registry. Every service serves it on its status server (syllabus.status); the gateway also on its HTTP port
(gateway.rest.metrics)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector


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
