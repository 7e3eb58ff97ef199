"""Protobuf JSON (protojson) in and out, as grpc-gateway's default marshaler does it.

Out: lowerCamelCase names, fields without presence emitted even at their zero value. In: both name spellings.
Unknown fields and enum values that name no value are refused, deliberately unlike grpc-gateway's default
(which drops unknown fields): a misspelt option must not quietly submit a different job than the caller meant.
Python's json_format is more lenient than Go's protojson (it takes `[]` for a message, a field named twice, ...),
so a request body is first checked against the message descriptor; a mismatch becomes a FieldProblem naming the
field as the proto spells it, e.g. `requests[1].spec.summarize_text.text`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterator
from typing import Any, cast

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from syllabus import anyjson

_STRING_FORMS = {"google.protobuf.Timestamp", "google.protobuf.Duration", "google.protobuf.FieldMask"}
_WRAPPERS = {
    f"google.protobuf.{name}Value" for name in ("Double", "Float", "Int64", "UInt64", "Int32", "UInt32", "Bool")
} | {"google.protobuf.StringValue", "google.protobuf.BytesValue"}
_OBJECTS = {"google.protobuf.Struct", "google.protobuf.Any", "google.protobuf.Empty"}
_INTEGERS = {
    FieldDescriptor.TYPE_INT32,
    FieldDescriptor.TYPE_INT64,
    FieldDescriptor.TYPE_UINT32,
    FieldDescriptor.TYPE_UINT64,
    FieldDescriptor.TYPE_SINT32,
    FieldDescriptor.TYPE_SINT64,
    FieldDescriptor.TYPE_FIXED32,
    FieldDescriptor.TYPE_FIXED64,
    FieldDescriptor.TYPE_SFIXED32,
    FieldDescriptor.TYPE_SFIXED64,
}
_FLOATS = {FieldDescriptor.TYPE_FLOAT, FieldDescriptor.TYPE_DOUBLE}
# As deep as protobuf itself parses messages (json_format's and upb's default recursion limit).
MAX_DEPTH = 100


class MalformedJson(ValueError):
    """The body is not JSON at all (or names a key twice in one object)."""


class FieldProblem(ValueError):
    def __init__(self, path: str, description: str) -> None:
        super().__init__(f"{path or 'body'}: {description}")
        self.path = path
        self.description = description


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedJson(f"duplicate key {key!r}")
        result[key] = value
    return result


def loads(data: bytes) -> Any:
    try:
        return json.loads(data, object_pairs_hook=_no_duplicates, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise MalformedJson(f"{exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except UnicodeDecodeError:
        raise MalformedJson("the body is not UTF-8") from None
    except RecursionError:
        raise MalformedJson(f"nested too deeply (a request nests at most {MAX_DEPTH} levels)") from None


def _reject_constant(name: str) -> Any:
    raise MalformedJson(f"{name} is not JSON")


def to_dict(message: Message) -> dict[str, Any]:
    # A task's result may be of a type the gateway has no descriptor of: see syllabus.anyjson.
    return anyjson.to_dict(message, always_print_fields_with_no_presence=True)


def dumps(value: Any) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def descriptor_of(message: Message) -> Descriptor:
    # The stubs type DESCRIPTOR as the pure-Python or the upb class; both are the same API.
    return cast(Descriptor, message.DESCRIPTOR)


def message_class(descriptor: Descriptor) -> type[Message]:
    cls: type[Message] = GetMessageClass(descriptor)
    return cls


def merge_json(value: Any, message: Message, path: str = "") -> None:
    """Merge a decoded JSON value into message, or raise FieldProblem naming the offending field."""
    if not isinstance(value, dict):
        raise FieldProblem(path, f"expected a JSON object for {message.DESCRIPTOR.full_name}")
    problem = next(_problems(value, descriptor_of(message), path, convert=False), None)
    if problem is not None:
        raise problem
    parsed = type(message)()
    try:
        json_format.ParseDict(value, parsed)
    except json_format.ParseError as exc:
        # Find the very value json_format refused, converting leaf by leaf.
        problem = next(_problems(value, descriptor_of(message), path, convert=True), None)
        raise problem or FieldProblem(path, str(exc)) from None
    message.MergeFrom(parsed)


def field_named(descriptor: Descriptor, key: str) -> FieldDescriptor | None:
    """The field a key names, in proto or JSON spelling."""
    if not key.isascii():
        # Field names are ASCII, and upb's lookup fails on a string UTF-8 cannot hold.
        return None
    field = descriptor.fields_by_name.get(key)
    if field is None:
        field = next((f for f in descriptor.fields if f.json_name == key), None)
    return field


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def unknown_field(descriptor: Descriptor, key: str) -> str:
    names = [f.json_name for f in descriptor.fields]
    close = difflib.get_close_matches(key, [*names, *(f.name for f in descriptor.fields)], n=1)
    hint = f"; did you mean {close[0]}?" if close else f"; it has {', '.join(names)}" if names else ""
    return f"unknown field: {descriptor.full_name} has no field {key!r}{hint}"


def _problems(
    value: dict[str, Any], descriptor: Descriptor, path: str, *, convert: bool, depth: int = 0
) -> Iterator[FieldProblem]:
    if depth > MAX_DEPTH:
        yield FieldProblem(path, f"nested too deeply (a request nests at most {MAX_DEPTH} levels)")
        return
    seen: dict[str, str] = {}
    oneofs: dict[str, str] = {}
    for key, item in value.items():
        field = field_named(descriptor, key)
        if field is None:
            yield FieldProblem(_join(path, key), unknown_field(descriptor, key))
            return
        where = _join(path, field.name)
        if field.name in seen:
            yield FieldProblem(where, f"set twice (as {seen[field.name]!r} and {key!r})")
            return
        seen[field.name] = key
        if item is None:
            continue
        oneof = field.containing_oneof
        if oneof is not None:
            if oneof.name in oneofs:
                yield FieldProblem(where, f"only one of the {oneof.name} fields may be set (also {oneofs[oneof.name]})")
                return
            oneofs[oneof.name] = field.name
        yield from _field_problems(key, item, field, descriptor, where, convert=convert, depth=depth)


def _field_problems(
    key: str, item: Any, field: FieldDescriptor, container: Descriptor, where: str, *, convert: bool, depth: int
) -> Iterator[FieldProblem]:
    if field.message_type is not None and field.message_type.GetOptions().map_entry:
        if not isinstance(item, dict):
            yield FieldProblem(where, "expected a JSON object (a map)")
            return
        value_field = field.message_type.fields_by_name["value"]
        for map_key, map_value in item.items():
            probe: dict[str, Any] | None = {key: {map_key: map_value}} if convert else None
            yield from _value_problems(map_value, value_field, f'{where}["{map_key}"]', container, probe, depth)
        return
    if field.is_repeated:
        if not isinstance(item, list):
            yield FieldProblem(where, "expected a JSON array")
            return
        for index, element in enumerate(item):
            probe = {key: [element]} if convert else None
            yield from _value_problems(element, field, f"{where}[{index}]", container, probe, depth)
        return
    yield from _value_problems(item, field, where, container, {key: item} if convert else None, depth)


def _value_problems(
    item: Any, field: FieldDescriptor, where: str, container: Descriptor, probe: dict[str, Any] | None, depth: int
) -> Iterator[FieldProblem]:
    """Problems of one value of field. With a probe (convert mode), leaf values are converted too: the probe,
    a JSON object holding just this value, is parsed into a fresh container message."""
    if item is None:
        yield FieldProblem(where, "null is not allowed here")
        return
    message = field.message_type
    if message is not None and message.full_name not in _STRING_FORMS | _WRAPPERS:
        if message.full_name == "google.protobuf.Value":
            return
        if message.full_name == "google.protobuf.ListValue":
            if not isinstance(item, list):
                yield FieldProblem(where, "expected a JSON array")
                return
        elif not isinstance(item, dict):
            yield FieldProblem(where, f"expected a JSON object ({message.full_name})")
            return
        elif message.full_name not in _OBJECTS:
            yield from _problems(item, message, where, convert=probe is not None, depth=depth + 1)
            return
    elif not _type_ok(field, item):
        yield FieldProblem(where, f"expected {_json_kind(field)}, got {_kind_of(item)}")
        return
    elif field.enum_type is not None and not _enum_ok(field, item):
        yield FieldProblem(where, _enum_problem(field, item))
        return
    if probe is not None:
        try:
            json_format.ParseDict(probe, GetMessageClass(container)())
        except json_format.ParseError as exc:
            yield FieldProblem(where, _reason(str(exc)))


def _scalar_field(field: FieldDescriptor) -> FieldDescriptor:
    """The scalar a field holds: itself, or the `value` of a wrapper message."""
    message = field.message_type
    if message is not None and message.full_name in _WRAPPERS:
        inner: FieldDescriptor = message.fields_by_name["value"]
        return inner
    return field


def _type_ok(field: FieldDescriptor, item: Any) -> bool:
    message = field.message_type
    if message is not None and message.full_name in _STRING_FORMS:
        return isinstance(item, str)
    scalar = _scalar_field(field)
    kind = scalar.type
    if isinstance(item, bool):
        return kind == FieldDescriptor.TYPE_BOOL
    if kind == FieldDescriptor.TYPE_BOOL:
        return False
    if kind in _INTEGERS or kind in _FLOATS:
        return isinstance(item, int | float | str)
    if kind == FieldDescriptor.TYPE_ENUM:
        return isinstance(item, int | str)
    return isinstance(item, str)


def _enum_ok(field: FieldDescriptor, item: int | str) -> bool:
    """A name of a value, or its number: protojson's two spellings. A number no value has is refused too,
    as protovalidate's `defined_only` refuses it on gRPC."""
    enum = field.enum_type
    assert enum is not None
    if isinstance(item, int):
        return item in enum.values_by_number
    # Names are ASCII, and upb's lookup fails on a string UTF-8 cannot hold.
    return item.isascii() and item in enum.values_by_name


def _enum_problem(field: FieldDescriptor, item: int | str) -> str:
    enum = field.enum_type
    assert enum is not None
    names = ", ".join(value.name for value in enum.values)
    return f"{item!r} is not a value of {enum.full_name} (one of {names})"


def _json_kind(field: FieldDescriptor) -> str:
    message = field.message_type
    if message is not None and message.full_name in _STRING_FORMS:
        return f"a string ({message.name})"
    kind = _scalar_field(field).type
    if kind == FieldDescriptor.TYPE_BOOL:
        return "true or false"
    if kind in _INTEGERS:
        return "an integer"
    if kind in _FLOATS:
        return "a number"
    enum = _scalar_field(field).enum_type
    if kind == FieldDescriptor.TYPE_ENUM and enum is not None:
        return f"an enum name or number ({enum.full_name})"
    return "a string"


def _kind_of(item: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(type(item), "a number")


def _reason(message: str) -> str:
    """json_format's innermost explanation, without its "Failed to parse x field:" chain."""
    reason = message.rsplit("field: ", 1)[-1].strip()
    cut = reason.find(" at ")
    return (reason[:cut] if cut > 0 else reason).rstrip(".") or message
