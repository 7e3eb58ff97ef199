"""Proto JSON of messages holding `google.protobuf.Any` values of types this process may not know.

A task's typed result is of the user's own message type: the gateway knows it only if its descriptors were
loaded (SYLLABUS_DESCRIPTOR_SETS), and the command line never does. json_format refuses such a value outright
(TypeError), which would make a whole job unreadable; here such a value (or one whose bytes are not its type)
is written as its type URL and its bytes in base64 instead. json_format has no hook for this, so its printer
is extended at the one method that resolves Any types.
"""

from __future__ import annotations

import base64
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message

# Not in the type stubs: json_format's own printer, private (see the module docstring).
_JsonFormatPrinter: Any = json_format._Printer  # type: ignore[attr-defined]


class _Printer(_JsonFormatPrinter):
    def _AnyMessageToJsonObject(self, message: Any) -> Any:
        try:
            return super()._AnyMessageToJsonObject(message)
        except (TypeError, DecodeError):
            # An unknown type, or bytes that are not the type they claim: neither has a JSON form.
            return {"@type": message.type_url, "value": base64.b64encode(message.value).decode()}


def to_dict(message: Message, *, always_print_fields_with_no_presence: bool = False) -> dict[str, Any]:
    printer = _Printer(always_print_fields_with_no_presence=always_print_fields_with_no_presence)
    result: dict[str, Any] = printer._MessageToJsonObject(message)
    return result
