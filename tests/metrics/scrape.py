"""A /metrics page read over HTTP and parsed by prometheus_client's own parser."""

from __future__ import annotations

from collections.abc import Mapping

import httpx
from prometheus_client.parser import text_string_to_metric_families

Key = tuple[str, frozenset[tuple[str, str]]]


class Page:
    def __init__(self, text: str) -> None:
        self.samples: dict[Key, float] = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                self.samples[(sample.name, frozenset(sample.labels.items()))] = sample.value

    def value(self, name: str, **labels: str) -> float:
        """The sample's value; 0 for one not (yet) exported, as a counter that never moved."""
        return self.samples.get((name, frozenset(labels.items())), 0.0)

    def names(self) -> set[str]:
        return {name for name, _ in self.samples}

    def labelled(self, name: str) -> list[Mapping[str, str]]:
        return [dict(labels) for sample, labels in self.samples if sample == name]

    def moved(self, before: Page, name: str, **labels: str) -> float:
        return self.value(name, **labels) - before.value(name, **labels)


async def scrape(url: str, headers: Mapping[str, str] | None = None) -> Page:
    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.get(url, headers=dict(headers or {}))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    return Page(response.text)
