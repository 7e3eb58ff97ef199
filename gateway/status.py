"""Request validation and error mapping: every failure leaves the gateway as a google.rpc.Status.

Bad input is INVALID_ARGUMENT with google.rpc.BadRequest field violations (paths as the proto spells them,
e.g. `spec.summarize_text.text`), whether a protovalidate rule or a service rule caught it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple, NoReturn, TypeAlias, cast

import protovalidate
from google.protobuf import any_pb2, duration_pb2
from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from syllabus import outages
from syllabus.errors import (
    AlreadyExists,
    BrokerUnavailable,
    Conflict,
    InvalidFields,
    InvalidRequest,
    JobNotFound,
    LimitReached,
    LimitsUnavailable,
    NotFound,
    QueueFull,
    StoreUnavailable,
    WatchFellBehind,
)
from syllabus.redaction import redact
from syllabus.store.base import InvalidPageToken

_validator = protovalidate.Validator()
_TIME_TYPES = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration"})
# 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z; about 10,000 years either way; nanos within a second.
_TIMESTAMP_SECONDS = (-62135596800, 253402300799)
_DURATION_SECONDS = 315576000000
_NANOS = 1_000_000_000
# Per message type: the fields that can hold a Timestamp or Duration, however deep.
_TIMED_FIELDS: dict[str, tuple[_TimedField, ...]] = {}
# grpc ships no type information; this names what the servicer methods receive.
Context: TypeAlias = Any


def field_path(violation: protovalidate.Violation) -> str:
    """`requests[1].options.labels["BAD"]`: the path as grpc-gateway and AIP-193 spell field violations."""
    parts: list[str] = []
    field = violation.proto.field
    for element in field.elements if field is not None else ():
        name = str(element.field_name)
        subscript = element.subscript
        if subscript is not None:
            name += f"[{subscript.value}]" if subscript.field == "index" else f'["{subscript.value}"]'
        parts.append(name)
    return ".".join(parts)


class _TimedField(NamedTuple):
    """A field that can hold a Timestamp or Duration: its name, how it holds values, whether they are times."""

    name: str
    kind: str  # "one", "list" or "map"
    times: bool


def _timed_fields(descriptor: Descriptor, visiting: frozenset[str] = frozenset()) -> tuple[_TimedField, ...]:
    name = descriptor.full_name
    known = _TIMED_FIELDS.get(name)
    if known is not None:
        return known
    inside = visiting | {name}
    fields = []
    for field in descriptor.fields:
        held = field.message_type
        if held is None:
            continue
        kind = "one"
        if held.GetOptions().map_entry:
            kind, held = "map", held.fields_by_name["value"].message_type
            if held is None:
                continue
        elif field.is_repeated:
            kind = "list"
        times = held.full_name in _TIME_TYPES
        # A message type that holds itself, however indirectly, is visited whether or not it holds a time.
        if times or held.full_name in inside or _timed_fields(held, inside):
            fields.append(_TimedField(field.name, kind, times))
    _TIMED_FIELDS[name] = tuple(fields)
    return _TIMED_FIELDS[name]


# One step of a field path: the field's name, and the map key or list index within it (None for neither).
Step: TypeAlias = tuple[str, str | int | None]


def _spelled(path: Iterable[Step]) -> str:
    parts = []
    for name, at in path:
        parts.append(name if at is None else f"{name}[{at}]" if isinstance(at, int) else f'{name}["{at}"]')
    return ".".join(parts)


def _malformed_times(
    message: Message, path: tuple[Step, ...] = (), found: list[tuple[str, str]] | None = None
) -> list[tuple[str, str]]:
    """Timestamps and Durations outside what they can mean (nanos past a second, seconds past year 9999, mixed
    signs): protovalidate has no rule for that, and protojson cannot write them, so a job holding one could never
    be read over REST. Only fields that can hold one are visited, and a path is spelt only for a problem."""
    found = [] if found is None else found
    for field in _timed_fields(cast(Descriptor, message.DESCRIPTOR)):
        value = getattr(message, field.name)
        if field.kind == "map":
            items: Iterable[tuple[str | int | None, Any]] = value.items()
        elif field.kind == "list":
            items = enumerate(value)
        elif message.HasField(field.name):
            items = ((None, value),)
        else:
            continue
        for at, item in items:
            if not field.times:
                _malformed_times(item, (*path, (field.name, at)), found)
            elif not _in_range(item):
                # protobuf has the last word, and says what is wrong: the check above only saves its formatting.
                try:
                    item.ToJsonString()
                except ValueError as exc:
                    found.append((_spelled((*path, (field.name, at))), str(exc)))
    return found


def _in_range(item: Any) -> bool:
    """The ranges google/protobuf/timestamp.proto and duration.proto give."""
    seconds: int = item.seconds
    nanos: int = item.nanos
    if item.DESCRIPTOR.full_name == "google.protobuf.Timestamp":
        return _TIMESTAMP_SECONDS[0] <= seconds <= _TIMESTAMP_SECONDS[1] and 0 <= nanos < _NANOS
    same_sign = seconds == 0 or nanos == 0 or (seconds < 0) == (nanos < 0)
    return -_DURATION_SECONDS <= seconds <= _DURATION_SECONDS and -_NANOS < nanos < _NANOS and same_sign


def violations_of(request: Message) -> list[tuple[str, str]]:
    malformed = _malformed_times(request)
    if malformed:
        # Rules on a malformed value say nothing useful (or fail), so these come alone.
        return malformed
    return [(field_path(v), v.proto.message) for v in _validator.collect_violations(request)]


def safe_text(text: str) -> str:
    """text, with what UTF-8 cannot hold (lone surrogates from JSON escapes or undecodable headers) written as
    backslash escapes: a protobuf string refuses it, and client input ends up in error messages."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return text.encode(errors="backslashreplace").decode()
    return text


def bad_request(violations: list[tuple[str, str]]) -> status_pb2.Status:
    details = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=safe_text(path), description=safe_text(text))
            for path, text in violations
        ]
    )
    summary = "; ".join(f"{path}: {text}" for path, text in violations[:5])
    return build_status(code_pb2.INVALID_ARGUMENT, f"invalid request: {summary}", details)


def build_status(code: int, message: str, *details: Message) -> status_pb2.Status:
    """A google.rpc.Status with its typed details packed; no configured secret in its message."""
    packed = []
    for detail in details:
        wrapped = any_pb2.Any()
        wrapped.Pack(detail)
        packed.append(wrapped)
    return status_pb2.Status(code=code, message=redact(safe_text(message)), details=packed)


def status_for(exc: Exception) -> status_pb2.Status | None:
    """The Status a known failure maps to; None for bugs (reported as INTERNAL without details)."""
    if isinstance(exc, QueueFull):
        delay = duration_pb2.Duration(seconds=int(exc.retry_after))
        return build_status(code_pb2.RESOURCE_EXHAUSTED, str(exc), error_details_pb2.RetryInfo(retry_delay=delay))
    if isinstance(exc, LimitReached):
        violation = error_details_pb2.QuotaFailure.Violation(subject=exc.subject, description=str(exc))
        details: list[Message] = [error_details_pb2.QuotaFailure(violations=[violation])]
        if exc.retry_after is not None:
            wait = duration_pb2.Duration()
            wait.FromNanoseconds(int(exc.retry_after * 1e9))
            details.append(error_details_pb2.RetryInfo(retry_delay=wait))
        return build_status(code_pb2.RESOURCE_EXHAUSTED, str(exc), *details)
    if isinstance(exc, LimitsUnavailable):
        return build_status(code_pb2.UNAVAILABLE, str(exc))
    if isinstance(exc, WatchFellBehind):
        return build_status(code_pb2.RESOURCE_EXHAUSTED, str(exc))
    if isinstance(exc, BrokerUnavailable):
        return build_status(code_pb2.UNAVAILABLE, str(exc))
    if isinstance(exc, JobNotFound):
        info = error_details_pb2.ResourceInfo(resource_type="syllabus.v1.Job", resource_name=exc.job_id)
        return build_status(code_pb2.NOT_FOUND, str(exc), info)
    if isinstance(exc, NotFound):
        info = error_details_pb2.ResourceInfo(resource_type=exc.resource_type, resource_name=exc.name)
        return build_status(code_pb2.NOT_FOUND, str(exc), info)
    if isinstance(exc, AlreadyExists):
        return build_status(code_pb2.ALREADY_EXISTS, str(exc))
    if isinstance(exc, InvalidRequest):
        return bad_request([(exc.field, exc.description)])
    if isinstance(exc, InvalidFields):
        return bad_request(exc.violations)
    if isinstance(exc, InvalidPageToken):
        return bad_request([("page_token", "not a token this server issued")])
    if isinstance(exc, Conflict):
        return build_status(code_pb2.FAILED_PRECONDITION, str(exc))
    if isinstance(exc, StoreUnavailable):
        return build_status(code_pb2.UNAVAILABLE, f"the store is unavailable ({exc}); try again shortly")
    if (dependency := outages.unreachable(exc)) is not None:
        return build_status(code_pb2.UNAVAILABLE, f"{dependency} is unreachable; try again shortly")
    return None


async def abort(context: Context, status: status_pb2.Status) -> NoReturn:
    await context.abort_with_status(rpc_status.to_status(status))
    raise AssertionError("abort_with_status returned")  # it always raises
