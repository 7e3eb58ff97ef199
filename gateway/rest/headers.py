"""HTTP headers to gRPC metadata and back, as grpc-gateway's runtime does with its default header matchers.

In: IANA permanent request headers travel as `grpcgateway-<name>`, `Grpc-Metadata-<key>` as `<key>`,
`Authorization` also as plain `authorization`, W3C trace context's `traceparent` and `tracestate` as themselves (the
gateway's span for the call is their child), plus `x-forwarded-host` and `x-forwarded-for`. `Grpc-Timeout`
(`<n><unit>`, unit one of H M S m u n) becomes the call's deadline. Out: the server's header metadata as
`Grpc-Metadata-<key>`.

gRPC metadata values are printable ASCII; HTTP header values need not be. A `Grpc-Metadata-*` or `Authorization`
value that cannot travel is INVALID_ARGUMENT naming the header (grpc-go would fail the call instead); the other
headers are passed along only for information, so one that cannot travel is left out.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Iterable

from aiohttp import web

from gateway.rest import errors
from gateway.services import MAX_METADATA

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
# W3C trace context, passed on under its own names as gRPC's OpenTelemetry instrumentation reads it.
TRACE_HEADERS = frozenset({"Traceparent", "Tracestate"})
_VALID_KEY = re.compile(r"[0-9A-Za-z._-]+")
_VALID_VALUE = re.compile(r"[\x20-\x7e]*")
# The gRPC spec's TimeoutValue: a positive integer of at most 8 digits, and its unit.
_TIMEOUT = re.compile(r"([0-9]{1,8})([HMSmun])")
# Half of what the gateway's server takes leaves room for what grpc adds itself (path, authority, user agent...).
MAX_FORWARDED = MAX_METADATA // 2
# How grpc counts an entry against its limit: key and value, and 32 bytes more (HPACK's overhead).
_ENTRY_OVERHEAD = 32
# Keys gRPC itself owns: grpc-python refuses to send them as call metadata.
_RESERVED_KEYS = frozenset({"content-type", "te", "user-agent", "host", "connection", "authority"})
_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}


class BadHeader(errors.ClientError):
    """A header the call cannot be made with."""


def canonical(key: str) -> str:
    """Go's textproto.CanonicalMIMEHeaderKey: "grpc-metadata-x-y" -> "Grpc-Metadata-X-Y"."""
    return "-".join(part[:1].upper() + part[1:].lower() for part in key.split("-"))


def _decode_binary(value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except binascii.Error:
        return base64.urlsafe_b64decode(padded)


def _text_value(key: str, value: str, *, required: bool) -> str | None:
    """value if gRPC metadata can carry it; else BadHeader when the client meant it as metadata, None if not."""
    if _VALID_VALUE.fullmatch(value):
        return value
    if required:
        raise BadHeader(errors.bad_request(f"invalid header {key}: gRPC metadata takes printable ASCII only"))
    return None


def incoming_metadata(request: web.BaseRequest) -> Metadata:
    pairs: list[tuple[str, str | bytes]] = []
    for raw_key, value in request.headers.items():
        key = canonical(raw_key)
        if key in ("X-Forwarded-For", "X-Forwarded-Host", "Grpc-Timeout"):
            continue
        if key == "Authorization":
            # grpc-gateway passes it on unprefixed too, for backwards compatibility.
            pairs.append(("authorization", _text_value(key, value, required=True) or ""))
        if key in PERMANENT_HEADERS:
            name = PERMANENT_PREFIX + key
        elif key in TRACE_HEADERS:
            name = key
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
            informative = key in PERMANENT_HEADERS or key in TRACE_HEADERS
            text = _text_value(key, value, required=not informative or key == "Authorization")
            if text is not None:
                pairs.append((name, text))
    host = _text_value("Host", request.headers.get("X-Forwarded-Host") or request.host, required=False)
    if host is not None:
        pairs.append(("x-forwarded-host", host))
    forwarded = request.headers.getall("X-Forwarded-For", [])
    if request.remote:
        forwarded = [*forwarded, request.remote]
    chain = _text_value("X-Forwarded-For", ", ".join(forwarded), required=False) if forwarded else None
    if chain is not None:
        pairs.append(("x-forwarded-for", chain))
    size = sum(len(key) + len(value) + _ENTRY_OVERHEAD for key, value in pairs)
    if size > MAX_FORWARDED:
        raise BadHeader(
            errors.bad_request(f"the headers make {size} bytes of gRPC metadata; the gateway takes {MAX_FORWARDED}"),
            http=431,
        )
    return tuple(pairs)


def parse_timeout(raw: str) -> float:
    """Seconds from a Grpc-Timeout value (up to 8 digits and a unit); BadHeader if it is not one. 0: a deadline
    already past (the shim answers DEADLINE_EXCEEDED at once)."""
    match = _TIMEOUT.fullmatch(raw)
    if match is None:
        raise BadHeader(
            errors.bad_request(
                f"invalid grpc-timeout: {raw} (expected up to 8 digits and a unit: H, M, S, m, u or n, as in 30S)"
            )
        )
    return int(match.group(1)) * _TIMEOUT_UNITS[match.group(2)]


def timeout_of(request: web.BaseRequest) -> float | None:
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
