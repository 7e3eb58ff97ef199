"""The shapes of model replies, each declared once: a shape gives the JSON schema sent to the model and reads
(validates and converts) the reply against that same declaration.

The schemas are the inline subset of JSON schema that Gemini's response schema and the OpenAI-compatible JSON
mode both take: objects, arrays, strings and integers, nested in place, with no `$ref`, `$defs` or titles. A reply
that does not fit raises InvalidOutput naming the path of what is wrong (`modules[2].title must be a non-empty
string`), precise enough to quote back to the model in a repair request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T_co = TypeVar("T_co", covariant=True)
T = TypeVar("T")


class InvalidOutput(ValueError):
    """The model's reply does not fit the task (the message says how, for a repair request)."""


class Shape(Protocol[T_co]):
    def schema(self) -> dict[str, Any]: ...

    def read(self, value: Any, path: str) -> T_co:
        """`value` (found at `path`, "" for the whole answer) as the shape's result, or InvalidOutput."""
        ...


@dataclass(frozen=True)
class Text:
    """A non-empty string, read without its surrounding whitespace."""

    def schema(self) -> dict[str, Any]:
        return {"type": "string"}

    def read(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise InvalidOutput(f"{path} must be a non-empty string")
        return value.strip()


@dataclass(frozen=True)
class Texts:
    """A list of at least `minimum` non-empty strings."""

    minimum: int = 1

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": Text().schema(), "minItems": self.minimum}

    def read(self, value: Any, path: str) -> list[str]:
        if not isinstance(value, list) or len(value) < self.minimum:
            raise InvalidOutput(f"{path} must be a list of at least {self.minimum} strings")
        return [Text().read(item, f"{path}[{i}]") for i, item in enumerate(value)]


@dataclass(frozen=True)
class Integer:
    """An integer of at least `minimum` (JSON's true and false are not integers here, whatever Python says)."""

    minimum: int = 0

    def schema(self) -> dict[str, Any]:
        return {"type": "integer", "minimum": self.minimum}

    def read(self, value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < self.minimum:
            raise InvalidOutput(f"{path} must be an integer of at least {self.minimum}")
        return value


@dataclass(frozen=True)
class Items(Generic[T]):
    """A list of exactly `count` items of one shape."""

    item: Shape[T]
    count: int

    def schema(self) -> dict[str, Any]:
        return {"type": "array", "items": self.item.schema(), "minItems": self.count, "maxItems": self.count}

    def read(self, value: Any, path: str) -> list[T]:
        if not isinstance(value, list) or len(value) != self.count:
            got = len(value) if isinstance(value, list) else "none"
            raise InvalidOutput(f"{path} must be a list of exactly {self.count} items (got {got})")
        return [self.item.read(item, f"{path}[{i}]") for i, item in enumerate(value)]


def field_path(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


@dataclass(frozen=True)
class Record(Generic[T]):
    """An object whose fields are all required, read field by field in their order and passed to `build` as
    keyword arguments (a protobuf message class builds its message directly).

    `check` holds the rules across fields that a JSON schema cannot say (an index within a list, titles that do
    not repeat): it gets the fields read and the record's path, and raises InvalidOutput; it runs before `build`,
    so `build` only sees values that fit.
    """

    build: Callable[..., T]
    fields: Mapping[str, Shape[Any]]
    check: Callable[[Mapping[str, Any], str], None] | None = None

    def schema(self) -> dict[str, Any]:
        return {
            "type": "object",
            "properties": {name: shape.schema() for name, shape in self.fields.items()},
            "required": list(self.fields),
        }

    def read(self, value: Any, path: str) -> T:
        if not isinstance(value, dict):
            raise InvalidOutput(f"{path or 'the answer'} must be a JSON object")
        values = {name: shape.read(value.get(name), field_path(path, name)) for name, shape in self.fields.items()}
        if self.check is not None:
            self.check(values, path)
        return self.build(**values)
