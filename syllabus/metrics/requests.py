"""The gateway's request instruments: gRPC calls by method and status code, HTTP requests of the REST shim by
route template and status, and the jobs it accepted.

gRPC calls are measured by wrapping each method's behavior once, where gateway.handlers wraps it anyway (not by a
server interceptor, whose Python code on every call costs far more). Durations are observed for unary methods
only: a stream lasts as long as its client wants. REST calls reach the gRPC server over loopback, so they are
counted in both families.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

import grpc
from prometheus_client import Counter, Histogram

from syllabus.v1 import job_pb2

# Seconds, for calls that answer in a millisecond as for those that wait on the store or JetStream.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

GRPC_REQUESTS = Counter(
    "syllabus_grpc_requests", "gRPC calls that ended, by method and status code.", ["method", "code"]
)
GRPC_DURATION = Histogram(
    "syllabus_grpc_request_duration_seconds",
    "How long unary gRPC calls took to answer, by method.",
    ["method"],
    buckets=LATENCY_BUCKETS,
)
HTTP_REQUESTS = Counter(
    "syllabus_http_requests",
    "HTTP requests the REST shim answered, by route template, HTTP method and status code.",
    ["route", "method", "code"],
)
HTTP_DURATION = Histogram(
    "syllabus_http_request_duration_seconds",
    "How long the REST shim took to answer (a stream: until it ended), by route template and HTTP method.",
    ["route", "method"],
    buckets=LATENCY_BUCKETS,
)
SUBMITTED = Counter(
    "syllabus_jobs_submitted", "Jobs the gateway accepted (not an idempotent repeat), by kind.", ["kind"]
)

# The route label of a path no route matches: one value, whatever was asked.
UNMATCHED = "unmatched"
_HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_submitted: dict[str, Counter] = {}


def count_submitted(jobs: Iterable[tuple[job_pb2.Job, bool]]) -> None:
    """Count the jobs (job, created) a submission stored; those it found already there are not new."""
    for job, created in jobs:
        if created:
            counter = _submitted.get(job.kind)
            if counter is None:
                counter = _submitted[job.kind] = SUBMITTED.labels(job.kind)
            counter.inc()


class _Method:
    """One gRPC method's bound instruments."""

    __slots__ = ("codes", "duration", "name")

    def __init__(self, method: str) -> None:
        self.name = method.lstrip("/")
        self.duration = GRPC_DURATION.labels(self.name)
        self.codes: dict[str, Counter] = {}

    def ended(self, code: str) -> None:
        counter = self.codes.get(code)
        if counter is None:
            counter = self.codes[code] = GRPC_REQUESTS.labels(self.name, code)
        counter.inc()


def _code(exc: BaseException, context: Any) -> str:
    """The status a call that raised `exc` ends with."""
    if isinstance(exc, grpc.aio.AbortError):
        code = context.code()
        return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
    if isinstance(exc, asyncio.CancelledError):
        remaining = context.time_remaining()
        return "DEADLINE_EXCEEDED" if remaining is not None and remaining <= 0 else "CANCELLED"
    return "UNKNOWN"


Behavior = Callable[..., Any]


def measured(behavior: Behavior, method: str, *, timed: bool) -> Behavior:
    """`behavior` of `method`, counted by the status it ends with and, when `timed` (unary methods), timed. A
    plain function (grpc runs it on a thread: only the stubs of methods left out) is left as it is."""
    if inspect.isasyncgenfunction(behavior):
        return _measured_stream(behavior, _Method(method))
    if inspect.iscoroutinefunction(behavior):
        return _measured_call(behavior, _Method(method), timed)
    return behavior


def _measured_call(behavior: Behavior, instruments: _Method, timed: bool) -> Behavior:
    clock = time.perf_counter

    async def call(request: Any, context: Any) -> Any:
        started = clock()
        code = "OK"
        try:
            return await behavior(request, context)
        except BaseException as exc:
            code = _code(exc, context)
            raise
        finally:
            if timed:
                instruments.duration.observe(clock() - started)
            instruments.ended(code)

    return call


def _measured_stream(behavior: Behavior, instruments: _Method) -> Behavior:
    async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
        try:
            # Closed here, when the call ends early (the client went away), not whenever it is collected.
            async with contextlib.aclosing(behavior(request, context)) as items:
                async for item in items:
                    yield item
        except BaseException as exc:
            instruments.ended(_code(exc, context))
            raise
        instruments.ended("OK")

    return stream


class HttpInstruments:
    """The REST shim's: bound per (route template, method, code) as they occur, all of them few."""

    def __init__(self) -> None:
        self._durations: dict[tuple[str, str], Histogram] = {}
        self._counts: dict[tuple[str, str, int], Counter] = {}

    def answered(self, route: str, method: str, status: int, seconds: float) -> None:
        if method not in _HTTP_METHODS:
            method = "other"
        duration = self._durations.get((route, method))
        if duration is None:
            duration = self._durations[(route, method)] = HTTP_DURATION.labels(route, method)
        duration.observe(seconds)
        counter = self._counts.get((route, method, status))
        if counter is None:
            counter = self._counts[(route, method, status)] = HTTP_REQUESTS.labels(route, method, str(status))
        counter.inc()
