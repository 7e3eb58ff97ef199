"""google.api.http path templates: parsing, and matching request paths the way grpc-gateway's runtime does.

Grammar (google/api/http.proto):

    Template = "/" Segments [ Verb ] ;
    Segments = Segment { "/" Segment } ;
    Segment  = "*" | "**" | LITERAL | Variable ;
    Variable = "{" FieldPath [ "=" Segments ] "}" ;
    FieldPath = IDENT { "." IDENT } ;
    Verb     = ":" LITERAL ;

Matching follows grpc-gateway rather than a regular expression: `*` takes exactly one path component (an empty
one too), `**` takes zero or more, and fixed segments may follow `**`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import unquote

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Characters a literal may not contain: they delimit the other parts of a template.
_NOT_LITERAL = set("/{}=*:")
# RFC 6570 reserved characters, left percent-encoded in multi-segment values (grpc-gateway's
# UnescapingModeAllExceptReserved), so a captured "a%2Fb" stays one segment.
_RESERVED = frozenset(":/?#[]@!$&'()*+,;=")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")


class TemplateError(ValueError):
    """A path template that does not follow the grammar; the message says where."""


@dataclass(frozen=True)
class Segment:
    kind: Literal["literal", "any", "deep"]
    literal: str = ""

    def __str__(self) -> str:
        return {"literal": self.literal, "any": "*", "deep": "**"}[self.kind]


@dataclass(frozen=True)
class Variable:
    """`{field_path=segments}`: binds segments[start:end] of the template to a request field."""

    field_path: tuple[str, ...]
    start: int
    end: int

    @property
    def name(self) -> str:
        return ".".join(self.field_path)


@dataclass(frozen=True)
class PathTemplate:
    source: str
    segments: tuple[Segment, ...]
    variables: tuple[Variable, ...]
    verb: str

    @property
    def _deep_index(self) -> int | None:
        return next((i for i, s in enumerate(self.segments) if s.kind == "deep"), None)

    def match(self, components: Sequence[str], verb: str) -> dict[str, str] | None:
        """The variables' values, or None if the path does not match.

        `components` are the raw (still percent-encoded) path components, the verb already split off the last
        one by the caller (see Router). Single-segment values are fully unescaped; multi-segment values keep
        reserved characters escaped.
        """
        if verb != self.verb:
            return None
        deep = self._deep_index
        if deep is None:
            if len(components) != len(self.segments):
                return None
            spans = [(i, i + 1) for i in range(len(components))]
        else:
            tail = len(self.segments) - deep - 1
            if len(components) < len(self.segments) - 1:
                return None
            deep_end = len(components) - tail
            spans = [(i, i + 1) for i in range(deep)] + [(deep, deep_end)]
            spans += [(deep_end + i, deep_end + i + 1) for i in range(tail)]
        for segment, (start, end) in zip(self.segments, spans, strict=True):
            if segment.kind == "literal" and (end - start != 1 or unquote(components[start]) != segment.literal):
                return None
        values: dict[str, str] = {}
        for variable in self.variables:
            first, last = spans[variable.start][0], spans[variable.end - 1][1]
            raw = "/".join(components[first:last])
            single = variable.end - variable.start == 1 and self.segments[variable.start].kind == "any"
            values[variable.name] = unquote(raw) if single else _unescape_except_reserved(raw)
        return values

    def match_path(self, raw_path: str) -> dict[str, str] | None:
        """Match a whole raw path, e.g. "/v1/jobs/abc:cancel": the verb is split off as the Router does."""
        if not raw_path.startswith("/"):
            return None
        split = split_verb(raw_path[1:].split("/"), self.verb)
        return None if split is None else self.match(*split)

    def openapi_path(self) -> str:
        """The template as an OpenAPI path: each variable becomes `{field.path}`, whatever it spans."""
        parts: list[str] = []
        index = 0
        while index < len(self.segments):
            variable = next((v for v in self.variables if v.start == index), None)
            if variable is not None:
                parts.append("{" + variable.name + "}")
                index = variable.end
            else:
                parts.append(str(self.segments[index]))
                index += 1
        return "/" + "/".join(parts) + (":" + self.verb if self.verb else "")

    def variable_pattern(self, variable: Variable) -> str:
        """What a variable spans, in template syntax: `*` for a plain `{field}`."""
        return "/".join(str(s) for s in self.segments[variable.start : variable.end])


def split_verb(components: list[str], verb: str) -> tuple[list[str], str] | None:
    """grpc-gateway's verb handling for one template: the verb is split off the last component only when the
    template has one and the component ends with it; None when the component is nothing but ":verb"."""
    last = components[-1]
    if not verb or not last.endswith(":" + verb):
        return components, ""
    cut = len(last) - len(verb) - 1
    if cut == 0:
        return None
    return [*components[:-1], last[:cut]], verb


def _unescape_except_reserved(raw: str) -> str:
    def replace(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return match.group(0) if char in _RESERVED else char

    return _PERCENT.sub(replace, raw)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.pos = 0
        self.segments: list[Segment] = []
        self.variables: list[Variable] = []

    def fail(self, why: str) -> TemplateError:
        return TemplateError(f"path template {self.source!r}, at {self.pos}: {why}")

    def peek(self, text: str) -> bool:
        return self.source.startswith(text, self.pos)

    def parse(self) -> PathTemplate:
        if not self.peek("/"):
            raise self.fail("must start with /")
        self.pos += 1
        self.parse_segments(in_variable=False)
        verb = ""
        if self.peek(":"):
            self.pos += 1
            verb = self.literal()
        if self.pos != len(self.source):
            raise self.fail(f"unexpected {self.source[self.pos]!r}")
        if sum(s.kind == "deep" for s in self.segments) > 1:
            raise self.fail("** may appear once")
        return PathTemplate(self.source, tuple(self.segments), tuple(self.variables), verb)

    def parse_segments(self, *, in_variable: bool) -> None:
        while True:
            self.segment(in_variable=in_variable)
            if not self.peek("/"):
                return
            self.pos += 1

    def segment(self, *, in_variable: bool) -> None:
        if self.peek("**"):
            self.pos += 2
            self.segments.append(Segment("deep"))
        elif self.peek("*"):
            self.pos += 1
            self.segments.append(Segment("any"))
        elif self.peek("{"):
            if in_variable:
                raise self.fail("variables do not nest")
            self.variable()
        else:
            self.segments.append(Segment("literal", self.literal()))

    def variable(self) -> None:
        self.pos += 1
        path = [self.ident()]
        while self.peek("."):
            self.pos += 1
            path.append(self.ident())
        start = len(self.segments)
        if self.peek("="):
            self.pos += 1
            self.parse_segments(in_variable=True)
        else:
            self.segments.append(Segment("any"))
        if not self.peek("}"):
            raise self.fail("expected }")
        self.pos += 1
        self.variables.append(Variable(tuple(path), start, len(self.segments)))

    def ident(self) -> str:
        match = _IDENT.match(self.source, self.pos)
        if match is None:
            raise self.fail("expected a field name")
        self.pos = match.end()
        return match.group(0)

    def literal(self) -> str:
        start = self.pos
        while self.pos < len(self.source) and self.source[self.pos] not in _NOT_LITERAL:
            self.pos += 1
        if self.pos == start:
            raise self.fail("expected a literal")
        return unquote(self.source[start : self.pos])


def parse_template(source: str) -> PathTemplate:
    return _Parser(source).parse()
