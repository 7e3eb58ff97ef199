"""HTTP request -> gRPC request message, in grpc-gateway's order: body, then path variables, then query.

The body fills the whole request (`body: "*"`) or one top-level field; path variables then set their fields
(over what the body said); query parameters fill what neither bound (`body: "*"` takes none). A query key is a
field path in proto or JSON spelling (`page_size`, `pageSize`, `options.priority`); repeated fields take the key
several times; `labels[key]=value` sets a map entry; enums come by name or number. A key that names no field, or
any key when the body takes the whole request, is INVALID_ARGUMENT (grpc-gateway ignores both): a misspelt filter
must not quietly list something else.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from gateway.rest import errors, protojson
from gateway.rest.routes import Route

_MAP_KEY = re.compile(r"^(.*)\[(.*)\]$")
_INTEGER = re.compile(r"[+-]?[0-9]+")
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_STRING_FORMS = frozenset({"google.protobuf.Timestamp", "google.protobuf.Duration"})
_WRAPPER_SUFFIX = "Value"


class BadInput(errors.ClientError):
    """The HTTP request cannot become the gRPC request (INVALID_ARGUMENT)."""


def _invalid(path: str, description: str, summary: str = "") -> BadInput:
    message = summary or f"invalid request: {path}: {description}"
    return BadInput(errors.bad_request(message, [(path, description)]))


def _lookup(message: Message, path: Sequence[str]) -> tuple[Message, FieldDescriptor, str]:
    """The message holding the last field of path (created along the way), that field, and its proto path.

    Names may be proto or JSON spellings; BadInput names the first one that is no field.
    """
    holder = message
    proto_path: list[str] = []
    for depth, name in enumerate(path):
        descriptor = protojson.descriptor_of(holder)
        field = protojson.field_named(descriptor, name)
        if field is None:
            raise _invalid(".".join([*proto_path, name]), protojson.unknown_field(descriptor, name))
        proto_path.append(field.name)
        if depth == len(path) - 1:
            return holder, field, ".".join(proto_path)
        if field.message_type is None or field.is_repeated:
            raise _invalid(".".join(proto_path), f"{field.name} is not a message, so it has no field {path[depth + 1]}")
        holder = getattr(holder, field.name)
    raise _invalid("", "empty query parameter name")


def _text_to_json(field: FieldDescriptor, text: str) -> Any:
    """A path or query value, as the JSON value protojson would take for field. ValueError if it cannot be."""
    message = field.message_type
    if message is not None:
        name = message.full_name
        if name in _STRING_FORMS:
            return text
        if name == "google.protobuf.FieldMask":
            return ",".join(part for part in text.split(",") if part)
        if name.startswith("google.protobuf.") and name.endswith(_WRAPPER_SUFFIX) and "value" in message.fields_by_name:
            return _text_to_json(message.fields_by_name["value"], text)
        raise ValueError(f"a {name} cannot be given as a query parameter")
    kind = field.type
    if kind == FieldDescriptor.TYPE_BOOL:
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError(f"{text!r} is not a boolean")
    enum = field.enum_type
    if enum is not None:
        if text.isascii() and text in enum.values_by_name:
            return text
        if _INTEGER.fullmatch(text) and int(text) in enum.values_by_number:
            return int(text)
        raise ValueError(f"{text!r} is not a valid {enum.full_name}")
    if kind in (FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE):
        number = float(text)
        return {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}.get(str(number), number)
    if kind in (FieldDescriptor.TYPE_STRING, FieldDescriptor.TYPE_BYTES):
        return text
    if not _INTEGER.fullmatch(text):
        raise ValueError(f"{text!r} is not an integer")
    return str(int(text))


def _set(message: Message, path: Sequence[str], values: Sequence[str], *, map_key: str | None = None) -> None:
    holder, field, proto_path = _lookup(message, path)
    oneof = field.containing_oneof
    if oneof is not None:
        current = holder.WhichOneof(oneof.name)
        if current is not None and current != field.name:
            raise _invalid(proto_path, f"{current} of the same oneof {oneof.name} is already set")
    is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
    try:
        if is_map:
            if map_key is None or len(values) != 1:
                raise ValueError(f"set map entries as {field.name}[key]=value, one value per key")
            entry = field.message_type
            assert entry is not None
            value_field, key_field = entry.fields_by_name["value"], entry.fields_by_name["key"]
            json_value: Any = {str(_text_to_json(key_field, map_key)): _text_to_json(value_field, values[0])}
        elif field.is_repeated:
            json_value = [_text_to_json(field, value) for value in values]
        else:
            if len(values) != 1:
                raise ValueError(f"too many values: {', '.join(values)}")
            json_value = _text_to_json(field, values[0])
    except ValueError as exc:
        raise _invalid(proto_path, str(exc)) from None
    parent, _, _ = proto_path.rpartition(".")
    try:
        protojson.merge_json({field.name: json_value}, holder, parent)
    except protojson.FieldProblem as exc:
        raise _invalid(exc.path, exc.description) from None


def _bound_by(route: Route) -> list[tuple[str, ...]]:
    bound = [tuple(path) for path in route.path_fields]
    if route.body not in ("", "*"):
        bound.append((route.body,))
    return bound


def _normalized(message: Message, path: Sequence[str]) -> tuple[str, ...]:
    """Proto names for as much of path as names fields, for comparing with the bound fields."""
    names: list[str] = []
    descriptor: Descriptor | None = protojson.descriptor_of(message)
    for name in path:
        field = protojson.field_named(descriptor, name) if descriptor is not None else None
        names.append(field.name if field is not None else name)
        descriptor = field.message_type if field is not None else None
    return tuple(names)


def build_request(
    route: Route,
    message: Message,
    params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    body: bytes,
) -> Message:
    if route.body:
        _fill_body(route, message, body)
    for name, value in params.items():
        _set(message, name.split("."), [value])
    grouped: dict[str, list[str]] = {}
    for key, value in query:
        grouped.setdefault(key, []).append(value)
    if route.body == "*":
        if grouped:
            name = next(iter(grouped))
            raise _invalid(name, "this method takes no query parameters: its body is the whole request")
        return message
    bound = _bound_by(route)
    for key, values in grouped.items():
        map_key = None
        match = _MAP_KEY.match(key)
        if match:
            key, map_key = match.group(1), match.group(2)
        path = key.split(".")
        normalized = _normalized(message, path)
        if any(normalized[: len(prefix)] == prefix for prefix in bound):
            continue
        _set(message, path, values, map_key=map_key)
    return message


def _fill_body(route: Route, message: Message, body: bytes) -> None:
    if not body.strip():
        # An empty body is an empty message, as grpc-gateway treats io.EOF from its decoder.
        return
    try:
        value = protojson.loads(body)
    except protojson.MalformedJson as exc:
        raise BadInput(errors.bad_request(f"malformed JSON in the request body: {exc}")) from None
    try:
        if route.body == "*":
            protojson.merge_json(value, message)
        else:
            protojson.merge_json({route.body: value}, message)
    except protojson.FieldProblem as exc:
        raise _invalid(exc.path, exc.description, f"invalid request body: {exc}") from None
