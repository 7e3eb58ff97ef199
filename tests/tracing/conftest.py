"""Spans of the in-process gateway and workers, kept in memory: the process's tracer provider exports to an
InMemorySpanExporter (a provider is set once per process), emptied before each test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from syllabus.config import TracingConfig
from syllabus.tracing.setup import tracer_provider
from tests.course import conftest as course_fixtures
from tests.pipeline import conftest as pipeline_fixtures
from tests.rest import conftest as rest_fixtures

pipeline = pipeline_fixtures.pipeline
start_worker = pipeline_fixtures.start_worker
rest = rest_fixtures.rest
stack = course_fixtures.stack

_exporter = InMemorySpanExporter()


def _install() -> None:
    current = trace.get_tracer_provider()
    processor = SimpleSpanProcessor(_exporter)
    if isinstance(current, TracerProvider):
        current.add_span_processor(processor)
        return
    provider = tracer_provider(TracingConfig(), "test", processor)
    assert provider is not None
    trace.set_tracer_provider(provider)


_install()


class Spans:
    def finished(self) -> list[ReadableSpan]:
        return list(_exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.name == name]

    def of_trace(self, trace_id: int) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.context is not None and span.context.trace_id == trace_id]


@pytest.fixture
def spans() -> Iterator[Spans]:
    _exporter.clear()
    yield Spans()
    _exporter.clear()
