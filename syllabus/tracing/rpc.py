"""The gateway's span for a call: a child of the caller's trace context (W3C `traceparent` and `tracestate`
metadata; the REST shim passes the HTTP headers of those names on as such), current while the method runs, so
that the jobs it builds carry it (syllabus.tracing.context.stamp).

Every unary method of the Syllabus services gets one when spans are recorded (an exporter is set), and so does
RunJob (a stream that submits: its span lasts until the job ends); without, the call only carries the caller's
trace on, or starts one, with no span object (syllabus.tracing.setup). Watches (WatchJob, the workers' Work) get
none: a span as long as a watch tells nothing.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from syllabus.tracing.context import carried
from syllabus.tracing.setup import recording

Behavior = Callable[..., Any]

_tracer = trace.get_tracer("syllabus.gateway")
_propagator = TraceContextTextMapPropagator()
_CONTEXT_KEYS = frozenset(_propagator.fields)


def traced(behavior: Behavior, method: str) -> Behavior:
    """`behavior` of the single-request `method` ("/syllabus.v1.JobService/SubmitJob") in a span of its own. A plain
    function (the UNIMPLEMENTED stub of a method a servicer leaves out) keeps its kind: grpc runs it on a thread."""
    if not method.startswith("/syllabus.") or not inspect.iscoroutinefunction(behavior):
        return behavior
    name = method[1:]
    service, _, rpc = name.partition("/")
    attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": rpc}

    async def call(request: Any, context: Any) -> Any:
        carrier = {key: value for key, value in context.invocation_metadata() or () if key in _CONTEXT_KEYS}
        parent = _propagator.extract(carrier) if carrier else None
        if not recording():
            token = otel_context.attach(carried(parent))
            try:
                return await behavior(request, context)
            finally:
                otel_context.detach(token)
        with _tracer.start_as_current_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes):
            return await behavior(request, context)

    return call
