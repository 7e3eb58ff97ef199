"""How server-streaming RPCs go out: newline-delimited JSON (grpc-gateway's format) or Server-Sent Events.

NDJSON: one `{"result": <message>}` line per message, and `{"error": <Status>}` as the last line if the stream
fails after it started. SSE (when the client sends `Accept: text/event-stream`): one event per message with the
message as its data and, for messages that carry a `sequence` (JobEvent), that sequence as the event id;
`event: error` with the Status if the stream fails, and `event: end` when it is over, so a browser's EventSource
can close instead of reconnecting. On reconnect, `Last-Event-ID` becomes the request's `after_sequence`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import status_pb2

from gateway.rest import errors, protojson

SSE_CONTENT_TYPE = "text/event-stream"
NDJSON_CONTENT_TYPE = "application/json"
SEQUENCE_FIELD = "sequence"
RESUME_FIELD = "after_sequence"
# The largest value of each integer type a sequence may have.
_INTEGER_TYPES = {
    FieldDescriptor.TYPE_UINT64: (1 << 64) - 1,
    FieldDescriptor.TYPE_INT64: (1 << 63) - 1,
    FieldDescriptor.TYPE_UINT32: (1 << 32) - 1,
    FieldDescriptor.TYPE_INT32: (1 << 31) - 1,
    FieldDescriptor.TYPE_FIXED64: (1 << 64) - 1,
}
_DIGITS = re.compile(r"[0-9]{1,20}")


def wants_sse(accept: str) -> bool:
    return any(part.split(";")[0].strip().lower() == SSE_CONTENT_TYPE for part in accept.split(","))


def sequence_path(descriptor: Descriptor, depth: int = 3) -> tuple[str, ...] | None:
    """Where a message keeps its event sequence: the nearest integer field named `sequence`, looking through
    singular message fields (WatchJobResponse -> event.sequence)."""
    level: list[tuple[Descriptor, tuple[str, ...]]] = [(descriptor, ())]
    for _ in range(depth):
        following: list[tuple[Descriptor, tuple[str, ...]]] = []
        for message, path in level:
            field = message.fields_by_name.get(SEQUENCE_FIELD)
            if field is not None and field.type in _INTEGER_TYPES and not field.is_repeated:
                return (*path, field.name)
            following += [
                (f.message_type, (*path, f.name)) for f in message.fields if f.message_type and not f.is_repeated
            ]
        level = following
    return None


def resume_field(descriptor: Descriptor) -> FieldDescriptor | None:
    field = descriptor.fields_by_name.get(RESUME_FIELD)
    if field is None or field.type not in _INTEGER_TYPES or field.is_repeated:
        return None
    return field


def sequence_number(field: FieldDescriptor, text: str) -> int:
    """The sequence a Last-Event-ID names, for field (the request's resume field); ValueError saying why not."""
    if not _DIGITS.fullmatch(text.strip()):
        raise ValueError("is not a sequence number")
    number = int(text)
    if number > _INTEGER_TYPES[field.type]:
        raise ValueError("is past the last sequence number there can be")
    return number


def value_at(message: Message, path: Sequence[str]) -> Any:
    value: Any = message
    for name in path:
        value = getattr(value, name)
    return value


def ndjson_result(message: Message) -> bytes:
    return protojson.dumps({"result": protojson.to_dict(message)}) + b"\n"


def ndjson_error(value: status_pb2.Status) -> bytes:
    return protojson.dumps(errors.stream_chunk(value)) + b"\n"


def sse_event(data: Any, *, event: str = "", event_id: str = "") -> bytes:
    lines = []
    if event_id:
        lines.append(f"id: {event_id}")
    if event:
        lines.append(f"event: {event}")
    # Compact JSON holds no newline, so the data is one line.
    lines.append("data: " + protojson.dumps(data).decode())
    return ("\n".join(lines) + "\n\n").encode()


def sse_result(message: Message, sequence: tuple[str, ...] | None) -> bytes:
    # A message without a sequence (RunJob's answer, an event rebuilt from the job's record) is no place to
    # resume after: it gets no id, and a browser keeps the last one it had.
    position = value_at(message, sequence) if sequence else 0
    return sse_event(protojson.to_dict(message), event_id=str(position) if position else "")


def sse_error(value: status_pb2.Status) -> bytes:
    return sse_event(protojson.to_dict(value), event="error")


def sse_end() -> bytes:
    return sse_event({}, event="end")
