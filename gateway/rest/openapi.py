"""An OpenAPI 3 document generated from the same descriptors the routes come from.

Schemas describe the JSON the shim reads and writes (protojson: lowerCamelCase names, 64-bit integers as
strings, enums by name, Timestamp and Duration as strings). Field behaviour (OUTPUT_ONLY -> readOnly) and the
simple protovalidate rules (required, lengths, ranges, patterns, item counts) become schema keywords, so the
document tells a client what the gateway will accept. Operation ids follow grpc-gateway's openapiv2 plugin:
`<Service>_<Method>`, with a number for additional bindings.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.api import field_behavior_pb2
from google.protobuf.descriptor import Descriptor, EnumDescriptor, FieldDescriptor

from buf.validate import validate_pb2
from gateway.rest.routes import HTTP_BODY, Route

Schema = dict[str, Any]
STATUS = "google.rpc.Status"
ANY = "google.protobuf.Any"
_INT32 = {FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32}
_UINT32 = {FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32}
_INT64 = {FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64}
_UINT64 = {FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64}
_WELL_KNOWN: dict[str, Schema] = {
    "google.protobuf.Timestamp": {"type": "string", "format": "date-time"},
    "google.protobuf.Duration": {"type": "string", "pattern": "^-?[0-9]+(\\.[0-9]{1,9})?s$", "example": "30s"},
    "google.protobuf.FieldMask": {"type": "string", "description": "Comma-separated field paths."},
    "google.protobuf.Struct": {"type": "object", "additionalProperties": True},
    "google.protobuf.Value": {},
    "google.protobuf.ListValue": {"type": "array", "items": {}},
    "google.protobuf.Empty": {"type": "object"},
    "google.protobuf.DoubleValue": {"type": "number", "format": "double"},
    "google.protobuf.FloatValue": {"type": "number", "format": "float"},
    "google.protobuf.Int64Value": {"type": "string", "format": "int64"},
    "google.protobuf.UInt64Value": {"type": "string", "format": "uint64"},
    "google.protobuf.Int32Value": {"type": "integer", "format": "int32"},
    "google.protobuf.UInt32Value": {"type": "integer", "format": "int64", "minimum": 0},
    "google.protobuf.BoolValue": {"type": "boolean"},
    "google.protobuf.StringValue": {"type": "string"},
    "google.protobuf.BytesValue": {"type": "string", "format": "byte"},
}
# Message fields flattened into query parameters go this deep (grpc-gateway stops at recursion too).
_QUERY_DEPTH = 4


def rules_of(field: FieldDescriptor) -> validate_pb2.FieldRules:
    """The field's protovalidate rules (empty when it has none)."""
    # The generated stub types the extension as a plain FieldDescriptor.
    rules: validate_pb2.FieldRules = field.GetOptions().Extensions[validate_pb2.field]  # type: ignore[index]
    return rules


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


class _Builder:
    def __init__(self) -> None:
        self.schemas: dict[str, Schema] = {}

    def enum(self, enum: EnumDescriptor) -> Schema:
        if enum.full_name not in self.schemas:
            self.schemas[enum.full_name] = {"type": "string", "enum": [value.name for value in enum.values]}
        return _ref(enum.full_name)

    def message(self, message: Descriptor, *, exclude: Sequence[str] = ()) -> Schema:
        """The message's schema: a $ref, or inline without the excluded (path-bound) fields."""
        if message.full_name in _WELL_KNOWN:
            return dict(_WELL_KNOWN[message.full_name])
        if message.full_name == ANY:
            return self.any()
        if not exclude:
            if message.full_name not in self.schemas:
                self.schemas[message.full_name] = {}  # placeholder: recursive messages refer to themselves
                self.schemas[message.full_name] = self._object(message, ())
            return _ref(message.full_name)
        return self._object(message, exclude)

    def any(self) -> Schema:
        if ANY not in self.schemas:
            self.schemas[ANY] = {
                "type": "object",
                "properties": {"@type": {"type": "string"}},
                "additionalProperties": True,
                "description": "A message of the type the @type URL names, with its fields beside @type.",
            }
        return _ref(ANY)

    def status(self) -> Schema:
        if STATUS not in self.schemas:
            self.schemas[STATUS] = {
                "type": "object",
                "description": "The error model of gRPC and of this REST API (google.rpc.Status).",
                "properties": {
                    "code": {"type": "integer", "format": "int32", "description": "A google.rpc.Code value."},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": self.any()},
                },
            }
        return _ref(STATUS)

    def _object(self, message: Descriptor, exclude: Sequence[str]) -> Schema:
        properties: dict[str, Schema] = {}
        required: list[str] = []
        for field in message.fields:
            if field.name in exclude:
                continue
            schema = self.field(field)
            behaviors = set(field.GetOptions().Extensions[field_behavior_pb2.field_behavior])
            rules = rules_of(field)
            if field_behavior_pb2.OUTPUT_ONLY in behaviors:
                schema = _with(schema, readOnly=True)
            if field_behavior_pb2.REQUIRED in behaviors or rules.required:
                required.append(field.json_name)
            properties[field.json_name] = schema
        result: Schema = {"type": "object", "properties": properties}
        if required:
            result["required"] = required
        return result

    def field(self, field: FieldDescriptor) -> Schema:
        rules = rules_of(field)
        if field.message_type is not None and field.message_type.GetOptions().map_entry:
            value = field.message_type.fields_by_name["value"]
            schema: Schema = {"type": "object", "additionalProperties": self.single(value, rules.map.values)}
            if rules.map.max_pairs:
                schema["maxProperties"] = rules.map.max_pairs
            return schema
        if field.is_repeated:
            schema = {"type": "array", "items": self.single(field, rules.repeated.items)}
            if rules.repeated.min_items:
                schema["minItems"] = rules.repeated.min_items
            if rules.repeated.HasField("max_items"):
                schema["maxItems"] = rules.repeated.max_items
            return schema
        return self.single(field, rules)

    def single(self, field: FieldDescriptor, rules: validate_pb2.FieldRules) -> Schema:
        if field.message_type is not None:
            return self.message(field.message_type)
        if field.enum_type is not None:
            return self.enum(field.enum_type)
        schema = scalar(field)
        kind = rules.WhichOneof("type")
        if kind == "string":
            text = rules.string
            if text.HasField("min_len"):
                schema["minLength"] = text.min_len
            if text.HasField("max_len"):
                schema["maxLength"] = text.max_len
            if text.pattern:
                schema["pattern"] = text.pattern
            if getattr(text, "in"):
                schema["enum"] = list(getattr(text, "in"))
        elif kind in ("int32", "uint32", "sint32"):
            number = getattr(rules, kind)
            if number.HasField("gte"):
                schema["minimum"] = number.gte
            if number.HasField("lte"):
                schema["maximum"] = number.lte
        return schema


def _with(schema: Schema, **extra: Any) -> Schema:
    # A $ref cannot carry siblings in OpenAPI 3.0, so it is wrapped in allOf.
    if "$ref" in schema:
        return {"allOf": [schema], **extra}
    return {**schema, **extra}


def scalar(field: FieldDescriptor) -> Schema:
    kind = field.type
    if kind in _INT32:
        return {"type": "integer", "format": "int32"}
    if kind in _UINT32:
        return {"type": "integer", "format": "int64", "minimum": 0, "maximum": 2**32 - 1}
    if kind in _INT64:
        return {"type": "string", "format": "int64"}
    if kind in _UINT64:
        return {"type": "string", "format": "uint64"}
    if kind == FieldDescriptor.TYPE_DOUBLE:
        return {"type": "number", "format": "double"}
    if kind == FieldDescriptor.TYPE_FLOAT:
        return {"type": "number", "format": "float"}
    if kind == FieldDescriptor.TYPE_BOOL:
        return {"type": "boolean"}
    if kind == FieldDescriptor.TYPE_BYTES:
        return {"type": "string", "format": "byte"}
    return {"type": "string"}


def _query_parameters(
    builder: _Builder,
    message: Descriptor,
    bound: set[tuple[str, ...]],
    prefix: tuple[tuple[str, str], ...],
    seen: frozenset[str],
) -> list[Schema]:
    """Every field a query parameter can set: scalars, enums, repeated scalars and well-known string types,
    nested message fields flattened to dotted JSON names (grpc-gateway's openapiv2 does the same)."""
    parameters: list[Schema] = []
    for field in message.fields:
        names = (*prefix, (field.name, field.json_name))
        path = tuple(proto for proto, _ in names)
        if any(path[: len(b)] == b for b in bound):
            continue
        target = field.message_type
        if target is not None and target.GetOptions().map_entry:
            continue
        if target is not None and target.full_name not in _WELL_KNOWN:
            if not field.is_repeated and target.full_name not in seen and len(path) < _QUERY_DEPTH:
                parameters += _query_parameters(builder, target, bound, names, seen | {target.full_name})
            continue
        name = ".".join(json for _, json in names)
        parameter: Schema = {"name": name, "in": "query", "required": False, "schema": builder.field(field)}
        if field.is_repeated:
            parameter |= {"style": "form", "explode": True}
        parameters.append(parameter)
    return parameters


def _operation(builder: _Builder, route: Route) -> Schema:
    method = route.method
    service = method.containing_service.name
    suffix = str(route.binding + 1) if route.binding else ""
    request = method.input_type
    path_fields = {tuple(path) for path in route.path_fields}
    parameters: list[Schema] = []
    for variable in route.template.variables:
        field = request
        descriptor: FieldDescriptor | None = None
        for name in variable.field_path:
            descriptor = field.fields_by_name[name]
            field = descriptor.message_type or field
        assert descriptor is not None
        schema = builder.single(descriptor, rules_of(descriptor))
        pattern = route.template.variable_pattern(variable)
        parameter: Schema = {"name": variable.name, "in": "path", "required": True, "schema": schema}
        if pattern != "*":
            parameter["description"] = f"Matches the path pattern {pattern}."
        parameters.append(parameter)
    operation: Schema = {
        "operationId": f"{service}_{method.name}{suffix}",
        "tags": [service],
        "summary": method.name,
        "responses": {
            "200": _success(builder, route),
            "default": {
                "description": "An error: a google.rpc.Status, as grpc-gateway writes it.",
                "content": {"application/json": {"schema": builder.status()}},
            },
        },
    }
    if route.body == "*":
        top_level = [path[0] for path in path_fields if len(path) == 1]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": builder.message(request, exclude=top_level)}},
        }
    elif route.body:
        body_field = request.fields_by_name[route.body]
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": builder.field(body_field)}},
        }
    if route.body != "*":
        bound = set(path_fields) | ({(route.body,)} if route.body else set())
        parameters += _query_parameters(builder, request, bound, (), frozenset({request.full_name}))
    if route.server_streaming:
        parameters.append(
            {
                "name": "Last-Event-ID",
                "in": "header",
                "required": False,
                "description": "With Accept: text/event-stream, resume after this event (sets after_sequence).",
                "schema": {"type": "string", "pattern": "^[0-9]+$"},
            }
        )
    if parameters:
        operation["parameters"] = parameters
    return operation


def _success(builder: _Builder, route: Route) -> Schema:
    output = route.method.output_type
    if route.http_body_response:
        return {
            "description": "The body as the method returns it (google.api.HttpBody), with its content type.",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        }
    if route.response_body:
        schema = builder.field(output.fields_by_name[route.response_body])
    else:
        schema = builder.message(output)
    if route.server_streaming:
        return {
            "description": (
                f'A stream of {output.name}: newline-delimited JSON, one {{"result": ...}} per message and '
                '{"error": ...} if the stream fails; with Accept: text/event-stream, Server-Sent Events.'
            ),
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "title": f"Stream result of {output.full_name}",
                        "properties": {"result": schema, "error": builder.status()},
                    }
                },
                "text/event-stream": {"schema": {"type": "string"}},
            },
        }
    return {"description": "A successful response.", "content": {"application/json": {"schema": schema}}}


def build(routes: Sequence[Route], *, title: str, messages: Sequence[Descriptor] = ()) -> dict[str, Any]:
    """`messages`: types outside the API that its Any fields carry (typed task inputs and results)."""
    builder = _Builder()
    builder.status()
    for message in messages:
        builder.message(message)
        builder.schemas[message.full_name]["description"] = (
            f"A type of your own protos, carried in google.protobuf.Any fields (a task's input or result) with "
            f'"@type": "type.googleapis.com/{message.full_name}" beside its fields.'
        )
    paths: dict[str, dict[str, Schema]] = {}
    tags: dict[str, str] = {}
    for route in routes:
        if route.http_method.lower() not in ("get", "put", "post", "delete", "patch", "head", "options", "trace"):
            continue
        item = paths.setdefault(route.template.openapi_path(), {})
        # Two templates can read the same in OpenAPI ({name} hides its pattern); the first one is described.
        item.setdefault(route.http_method.lower(), _operation(builder, route))
        service = route.method.containing_service
        tags.setdefault(service.name, service.full_name)
    versions = sorted({r.method.containing_service.file.package.rpartition(".")[2] for r in routes})
    if HTTP_BODY in builder.schemas:
        del builder.schemas[HTTP_BODY]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": title,
            "version": ", ".join(versions) or "v1",
            "description": (
                "The gateway's gRPC API over HTTP/JSON, generated from the google.api.http options of its protos. "
                "Errors are google.rpc.Status objects with the HTTP status grpc-gateway gives their code."
            ),
        },
        "tags": [{"name": name, "description": f"gRPC service {full}"} for name, full in tags.items()],
        "paths": paths,
        "components": {"schemas": dict(sorted(builder.schemas.items()))},
    }
