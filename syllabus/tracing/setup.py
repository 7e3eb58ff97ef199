"""The process's tracer provider, as TracingConfig says.

Without an exporter no span is made at all, and the SDK is not even imported: the gateway's calls and the
workers' attempts only carry the trace context on (syllabus.tracing.context), so trace ids still travel with
every job (its record, its messages, its log lines) for a fraction of what even unsampled spans cost per job.
The OTLP exporter's package is imported only when an endpoint is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry import trace

from syllabus.config import TracingConfig

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler


def sampler(config: TracingConfig) -> Sampler:
    from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON, ParentBased, TraceIdRatioBased

    name = config.sampler
    root: Sampler
    if name.endswith("traceidratio"):
        root = TraceIdRatioBased(config.sampler_ratio)
    else:
        root = ALWAYS_OFF if name.endswith("always_off") else ALWAYS_ON
    return ParentBased(root) if name.startswith("parentbased_") else root


def tracer_provider(config: TracingConfig, process: str, processor: SpanProcessor | None = None) -> TracerProvider:
    """The provider for `process`, exporting to `processor` if given (tests), else to the configured OTLP
    endpoint."""
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider

    resource = Resource.create({SERVICE_NAME: config.service_name or f"syllabus-{process}"})
    if processor is None:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=config.endpoint))
    # The provider flushes its spans when the process exits.
    provider = TracerProvider(sampler=sampler(config), resource=resource)
    provider.add_span_processor(processor)
    return provider


# Whether this process makes spans: so it does until setup_tracing finds no exporter (a test that installs a
# provider of its own, with an in-memory exporter, keeps them).
_recording = True


def recording() -> bool:
    return _recording


def setup_tracing(config: TracingConfig, process: str) -> None:
    global _recording
    _recording = bool(config.enabled and config.endpoint)
    if _recording:
        trace.set_tracer_provider(tracer_provider(config, process))
