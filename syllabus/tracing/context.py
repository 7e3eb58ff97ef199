"""A job's place in its trace: the W3C traceparent of the span that submitted it, kept on its record.

A job is built inside the span that submits it (a gateway call, or the attempt of the parent job that fans it
out): `stamp` writes that span's context on the record, and every attempt reads it back (`parent_of`), so
retries, redeliveries, delayed jobs and dead-letter retries, which all start from the record, stay in the trace.
"""

from __future__ import annotations

import random

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from syllabus.v1 import job_pb2

# The NATS header a job message carries its traceparent in, as W3C trace context names it for HTTP.
TRACEPARENT = "traceparent"


def traceparent(span_context: SpanContext) -> str:
    return f"00-{span_context.trace_id:032x}-{span_context.span_id:016x}-{span_context.trace_flags:02x}"


def current() -> str:
    """The current span's traceparent; "" outside any span."""
    span_context = trace.get_current_span().get_span_context()
    return traceparent(span_context) if span_context.is_valid else ""


def stamp(job: job_pb2.Job) -> None:
    """Record the current span's context on `job` (nothing outside any span: a job with no trace)."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        job.trace_id = f"{span_context.trace_id:032x}"
        job.trace_parent = traceparent(span_context)


def carried(parent: Context | None) -> Context:
    """A context for a call that makes no span: the caller's trace with a span id of its own, or a new trace.
    What the SDK's id generator does (random bits), without a span object."""
    caller = trace.get_current_span(parent).get_span_context() if parent is not None else None
    if caller is not None and caller.is_valid:
        trace_id, flags = caller.trace_id, caller.trace_flags
    else:
        trace_id, flags = random.getrandbits(128), TraceFlags(TraceFlags.DEFAULT)
    span_context = SpanContext(trace_id, random.getrandbits(64), False, flags)
    return trace.set_span_in_context(NonRecordingSpan(span_context))


def parent_of(job: job_pb2.Job) -> Context | None:
    """The context an attempt's span is a child of: the submitting span's, as stamped. None for a job with no
    trace (its attempts then start traces of their own)."""
    if not job.trace_parent:
        return None
    # Written by `stamp` (version 00, lower-case hex): read without the propagator's validation.
    try:
        _, trace_id, span_id, flags = job.trace_parent.split("-")
        span_context = SpanContext(int(trace_id, 16), int(span_id, 16), True, TraceFlags(int(flags, 16)))
    except ValueError:
        return None
    return trace.set_span_in_context(NonRecordingSpan(span_context))
