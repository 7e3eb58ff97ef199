"""/docs: the OpenAPI document as one static HTML page, rendered here so it needs no script and no CDN."""

from __future__ import annotations

from html import escape
from typing import Any

_STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; margin: 0 auto; max-width: 70rem; padding: 1rem 2rem; color: #1d1d1f; }
h1 { margin-bottom: 0.2rem; } h2 { border-bottom: 1px solid #ddd; margin-top: 2.5rem; }
h3 { margin: 2rem 0 0.5rem; font-size: 1.05rem; } code, .path { font-family: ui-monospace, monospace; }
.method { display: inline-block; min-width: 4.2rem; padding: 0.1rem 0.4rem; border-radius: 4px; color: #fff;
  font: bold 0.8rem ui-monospace, monospace; text-align: center; text-transform: uppercase; }
.get { background: #2f7d32; } .post { background: #1f5fbf; } .delete { background: #b3261e; }
.put, .patch { background: #8a5a00; }
table { border-collapse: collapse; margin: 0.4rem 0 1rem; width: 100%; }
th, td { border: 1px solid #ddd; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f5f5f7; } .muted { color: #6e6e73; } nav li { list-style: none; margin: 0.15rem 0; }
nav ul { padding-left: 0.5rem; }
"""


def _anchor(name: str) -> str:
    return "schema-" + name.replace(".", "-")


def _type(schema: dict[str, Any]) -> str:
    """A schema as a short, linked type name: `array of <a>syllabus.v1.Job</a>`."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f'<a href="#{_anchor(name)}">{escape(name)}</a>'
    if "allOf" in schema:
        return " ".join(_type(part) for part in schema["allOf"])
    kind = schema.get("type")
    if kind == "array":
        return "array of " + _type(schema.get("items", {}))
    if kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        return "map of string to " + _type(schema["additionalProperties"])
    if kind is None:
        return "any JSON value"
    label = escape(str(kind))
    if "format" in schema:
        label += f" ({escape(str(schema['format']))})"
    return label


def _notes(schema: dict[str, Any], required: bool = False) -> str:
    notes = []
    if required:
        notes.append("required")
    if schema.get("readOnly"):
        notes.append("output only")
    for key, label in (
        ("minLength", "min length"),
        ("maxLength", "max length"),
        ("minimum", "min"),
        ("maximum", "max"),
        ("minItems", "min items"),
        ("maxItems", "max items"),
        ("maxProperties", "max entries"),
    ):
        if key in schema:
            notes.append(f"{label} {schema[key]}")
    if "pattern" in schema:
        notes.append(f"pattern <code>{escape(schema['pattern'])}</code>")
    if "enum" in schema:
        notes.append("one of " + ", ".join(f"<code>{escape(str(v))}</code>" for v in schema["enum"]))
    if "description" in schema:
        notes.append(escape(schema["description"]))
    items = schema.get("items")
    if isinstance(items, dict) and items is not schema:
        inner = _notes(items)
        if inner:
            notes.append("each: " + inner)
    return "; ".join(notes)


def _fields_table(schema: dict[str, Any]) -> str:
    properties = schema.get("properties", {})
    if not properties:
        return '<p class="muted">No fields.</p>'
    required = set(schema.get("required", ()))
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code></td><td>{_type(field)}</td>"
        f"<td>{_notes(field, name in required)}</td></tr>"
        for name, field in properties.items()
    )
    return f"<table><tr><th>field</th><th>type</th><th>notes</th></tr>{rows}</table>"


def _with_description(parameter: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = parameter["schema"]
    return {**schema, "description": parameter["description"]} if "description" in parameter else schema


def _operation(method: str, path: str, operation: dict[str, Any]) -> str:
    parts = [
        f'<h3 id="{escape(operation["operationId"])}"><span class="method {method}">{method}</span> '
        f'<span class="path">{escape(path)}</span></h3>',
        f'<p class="muted">gRPC method {escape(operation["summary"])} · '
        f"operation {escape(operation['operationId'])}</p>",
    ]
    parameters = operation.get("parameters", [])
    if parameters:
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td><td>{_type(p['schema'])}</td>"
            f"<td>{_notes(_with_description(p), p.get('required', False))}</td></tr>"
            for p in parameters
        )
        parts.append(f"<table><tr><th>parameter</th><th>in</th><th>type</th><th>notes</th></tr>{rows}</table>")
    body = operation.get("requestBody")
    if body:
        schema = body["content"]["application/json"]["schema"]
        parts.append("<p><b>Request body</b> (JSON): " + ("" if "$ref" not in schema else _type(schema)) + "</p>")
        if "$ref" not in schema:
            parts.append(_fields_table(schema) if schema.get("type") == "object" else f"<p>{_type(schema)}</p>")
    ok = operation["responses"]["200"]
    content: dict[str, Any] = ok.get("content", {})
    media = next(iter(content), "")
    answer_schema: dict[str, Any] = content[media].get("schema", {}) if media else {}
    answer = _type(answer_schema) if "$ref" in answer_schema else ""
    if "result" in answer_schema.get("properties", {}):
        answer = "a stream of " + _type(answer_schema["properties"]["result"])
    description = escape(ok["description"])
    parts.append(f"<p><b>Response</b> ({escape(media)}): {answer} <span class='muted'>{description}</span></p>")
    return "\n".join(parts)


def render(spec: dict[str, Any]) -> str:
    info = spec["info"]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            by_tag.setdefault(operation["tags"][0], []).append((method, path, operation))
    nav = "".join(
        f"<li><b>{escape(tag)}</b><ul>"
        + "".join(
            f'<li><a href="#{escape(op["operationId"])}"><span class="method {m}">{m}</span> '
            f'<span class="path">{escape(p)}</span></a></li>'
            for m, p, op in operations
        )
        + "</ul></li>"
        for tag, operations in by_tag.items()
    )
    sections = "".join(
        f"<h2>{escape(tag)}</h2>" + "".join(_operation(m, p, op) for m, p, op in operations)
        for tag, operations in by_tag.items()
    )
    schemas = "".join(
        f'<h3 id="{_anchor(name)}">{escape(name)}</h3>'
        + (_fields_table(schema) if schema.get("type") == "object" else f"<p>{_type(schema)}. {_notes(schema)}</p>")
        for name, schema in spec["components"]["schemas"].items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(info["title"])}</title><style>{_STYLE}</style></head>
<body>
<h1>{escape(info["title"])} <span class="muted">{escape(info["version"])}</span></h1>
<p>{escape(info.get("description", ""))}</p>
<p>Machine-readable: <a href="/openapi.json">/openapi.json</a> (OpenAPI {escape(spec["openapi"])}).
Request bodies are JSON, sent with <code>Content-Type: application/json</code> (any other type is 415).
Streams answer newline-delimited JSON, or Server-Sent Events with <code>Accept: text/event-stream</code>.
Headers <code>Authorization</code> and <code>Grpc-Metadata-*</code> become gRPC metadata;
<code>Grpc-Timeout</code> (e.g. <code>30S</code>, <code>500m</code>) sets the deadline.
Input is strict: a field, query parameter or enum value the API does not have is refused (400, naming it),
never ignored. Every error is a <code>google.rpc.Status</code>.</p>
<nav><ul>{nav}</ul></nav>
{sections}
<h2>Schemas</h2>
{schemas}
</body></html>
"""
