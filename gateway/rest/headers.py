"""HTTP headers to gRPC metadata and back, as grpc-gateway's runtime does with its default header matchers.

In: IANA permanent request headers travel as `grpcgateway-<name>`, `Grpc-Metadata-<key>` as `<key>`,
`Authorization` also as plain `authorization`, plus `x-forwarded-host` and `x-forwarded-for`. `Grpc-Timeout`
(`<n><unit>`, unit one of H M S m u n) becomes the call's deadline. Out: the server's header metadata as
`Grpc-Metadata-<key>`.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from aiohttp import web
from google.rpc import status_pb2

from gateway.rest import errors

Metadata = tuple[tuple[str, str | bytes], ...]

METADATA_PREFIX = "Grpc-Metadata-"
PERMANENT_PREFIX = "grpcgateway-"
PERMANENT_HEADERS = frozenset(
    {
        "Accept",
        "Accept-Charset",
        "Accept-Language",
        "Accept-Ranges",
        "Authorization",
        "Cache-Control",
        "Content-Type",
        "Cookie",
        "Date",
        "Expect",
        "From",
        "Host",
        "If-Match",
        "If-Modified-Since",
        "If-None-Match",
        "If-Schedule-Tag-Match",
        "If-Unmodified-Since",
        "Max-Forwards",
        "Origin",
        "Pragma",
        "Referer",
        "User-Agent",
        "Via",
        "Warning",
    }
)
_VALID_KEY = re.compile(r"[0-9A-Za-z._-]+")
# Keys gRPC itself owns: grpc-python refuses to send them as call metadata.
_RESERVED_KEYS = frozenset({"content-type", "te", "user-agent", "host", "connection", "authority"})
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


class BadHeader(ValueError):
    def __init__(self, value: status_pb2.Status) -> None:
        super().__init__(value.message)
        self.status = value


def canonical(key: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: "grpc-metadata-x-y" -> "Grpc-Metadata-X-Y"."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in key.split("-"))


def _decode_binary(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except binascii.Error:
        return base64.urlsafe_b64decode(padded)


def incoming_metadata(request: web.Request) -> Metadata:
    pairs: list[tuple[str, str | bytes]] = []
    for raw_key, value in request.headers.items():
        key = canonical(raw_key)
        if key in ("X-Forwarded-For", "X-Forwarded-Host", "Grpc-Timeout"):
            continue
        if key == "Authorization":
            # grpc-gateway passes it on unprefixed too, for backwards compatibility.
            pairs.append(("authorization", value))
        if key in PERMANENT_HEADERS:
            name = PERMANENT_PREFIX + key
        elif key.startswith(METADATA_PREFIX) and len(key) > len(METADATA_PREFIX):
            name = key[len(METADATA_PREFIX) :]
        else:
            continue
        name = name.lower()
        if not _VALID_KEY.fullmatch(name) or name in _RESERVED_KEYS or name.startswith("grpc-"):
            continue
        if name.endswith("-bin"):
            try:
                pairs.append((name, _decode_binary(value)))
            except (binascii.Error, ValueError):
                raise BadHeader(errors.bad_request(f"invalid binary header {key}: not base64")) from None
        else:
            pairs.append((name, value))
    pairs.append(("x-forwarded-host", request.headers.get("X-Forwarded-Host") or request.host))
    forwarded = request.headers.getall("X-Forwarded-For", [])
    if request.remote:
        forwarded = [*forwarded, request.remote]
    if forwarded:
        pairs.append(("x-forwarded-for", ", ".join(forwarded)))
    return tuple(pairs)


def parse_timeout(raw: str) -> float:
    """Seconds from a Grpc-Timeout value (`<digits><unit>`); BadHeader if it is not one. 0 or less: a deadline
    already past (the shim answers DEADLINE_EXCEEDED at once)."""
    unit = _TIMEOUT_UNITS.get(raw[-1:])
    if len(raw) < 2 or unit is None or not re.fullmatch(r"[+-]?[0-9]+", raw[:-1]):
        raise BadHeader(errors.bad_request(f"invalid grpc-timeout: {raw}"))
    return max(int(raw[:-1]) * unit, 0.0)


def timeout_of(request: web.Request) -> float | None:
    """The call's deadline in seconds from the Grpc-Timeout header, None without one."""
    raw = request.headers.get("Grpc-Timeout")
    return None if raw is None else parse_timeout(raw)


def outgoing(metadata: Iterable[tuple[str, str | bytes]] | None) -> dict[str, str]:
    headers: dict[str, str] = {}
    for key, value in metadata or ():
        if key == errors.STATUS_DETAILS_KEY:
            continue
        text = base64.b64encode(value).decode() if isinstance(value, bytes) else value
        name = METADATA_PREFIX + canonical(key)
        headers[name] = f"{headers[name]}, {text}" if name in headers else text
    return headers
