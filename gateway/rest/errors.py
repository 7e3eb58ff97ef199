"""google.rpc.Status on HTTP, as grpc-gateway's DefaultHTTPErrorHandler writes it.

The body is the Status in protojson with every field present (`{"code": 5, "message": "...", "details": []}`),
typed details kept as `{"@type": "type.googleapis.com/google.rpc.BadRequest", ...}`; the HTTP status comes from
runtime.HTTPStatusFromCode; UNAUTHENTICATED adds `WWW-Authenticate`: the challenge the gateway's authentication
sent (an ErrorInfo detail), else the message as grpc-gateway does.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from http import HTTPStatus
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.message import DecodeError
from google.rpc import code_pb2, error_details_pb2, status_pb2

from gateway.rest import protojson
from gateway.status import build_status, safe_text

log = logging.getLogger(__name__)

# runtime/errors.go HTTPStatusFromCode; 499 is nginx's "client closed request", as grpc-gateway uses it.
HTTP_STATUS = {
    code_pb2.OK: 200,
    code_pb2.CANCELLED: 499,
    code_pb2.UNKNOWN: 500,
    code_pb2.INVALID_ARGUMENT: 400,
    code_pb2.DEADLINE_EXCEEDED: 504,
    code_pb2.NOT_FOUND: 404,
    code_pb2.ALREADY_EXISTS: 409,
    code_pb2.PERMISSION_DENIED: 403,
    code_pb2.UNAUTHENTICATED: 401,
    code_pb2.RESOURCE_EXHAUSTED: 429,
    # Deliberately not 412, as in grpc-gateway.
    code_pb2.FAILED_PRECONDITION: 400,
    code_pb2.ABORTED: 409,
    code_pb2.OUT_OF_RANGE: 400,
    code_pb2.UNIMPLEMENTED: 501,
    code_pb2.INTERNAL: 500,
    code_pb2.UNAVAILABLE: 503,
    code_pb2.DATA_LOSS: 500,
}
# What grpc-gateway writes when the Status itself cannot be marshalled.
FALLBACK_BODY = b'{"code": 13, "message": "failed to marshal error message"}'
STATUS_DETAILS_KEY = "grpc-status-details-bin"


class ClientError(ValueError):
    """The request cannot be answered as asked; `status` is what the client gets, `http` its HTTP status when
    that is not the code's usual one (413 for a body too large, say)."""

    def __init__(self, value: status_pb2.Status, http: int | None = None) -> None:
        super().__init__(value.message)
        self.status = value
        self.http = http


def http_status(code: int) -> int:
    return HTTP_STATUS.get(code, 500)


def quoted(value: str, limit: int = 80) -> str:
    """A client's header value as an error message shows it: quoted, and cut short."""
    return repr(value if len(value) <= limit else value[:limit] + "...")


def bad_request(message: str, violations: Sequence[tuple[str, str]] = ()) -> status_pb2.Status:
    if not violations:
        return build_status(code_pb2.INVALID_ARGUMENT, message)
    details = error_details_pb2.BadRequest(
        field_violations=[
            error_details_pb2.BadRequest.FieldViolation(field=safe_text(path), description=safe_text(text))
            for path, text in violations
        ]
    )
    return build_status(code_pb2.INVALID_ARGUMENT, message, details)


def routing_status(http: int) -> status_pb2.Status:
    """DefaultRoutingErrorHandler: the HTTP status's reason phrase as the message."""
    code = {400: code_pb2.INVALID_ARGUMENT, 404: code_pb2.NOT_FOUND, 405: code_pb2.UNIMPLEMENTED}.get(http)
    if code is None:
        return build_status(code_pb2.INTERNAL, "Unexpected routing error")
    return build_status(code, HTTPStatus(http).phrase)


def from_rpc_error(error: grpc.aio.AioRpcError) -> status_pb2.Status:
    """The rich Status a failed call carried (grpc-status-details-bin), else code and message alone."""
    code = error.code().value[0]
    for key, value in error.trailing_metadata() or ():
        if key == STATUS_DETAILS_KEY and isinstance(value, bytes):
            try:
                rich = status_pb2.Status.FromString(value)
            except DecodeError:
                break
            if rich.code == code:
                return rich
    return status_pb2.Status(code=code, message=error.details() or "")


def body_of(value: status_pb2.Status) -> bytes:
    try:
        return protojson.dumps(protojson.to_dict(value))
    except (TypeError, KeyError, ValueError):
        # Details of unknown types are written as their type and bytes (syllabus.anyjson): this is for the rest.
        log.warning("cannot write status %s as JSON", value.code, exc_info=True)
        return FALLBACK_BODY


def headers_for(value: status_pb2.Status) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if value.code == code_pb2.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = _challenge(value) or value.message
    wait = _retry_after(value)
    if wait is not None:
        headers["Retry-After"] = str(wait)
    return headers


def _retry_after(value: status_pb2.Status) -> int | None:
    """Whole seconds (rounded up, at least 1) of a RetryInfo detail, as HTTP's Retry-After says them."""
    for detail in value.details:
        info = error_details_pb2.RetryInfo()
        if detail.Unpack(info):
            seconds: int = math.ceil(info.retry_delay.ToNanoseconds() / 1e9)
            return max(1, seconds)
    return None


def _challenge(value: status_pb2.Status) -> str:
    """The RFC 6750 challenge the gateway's authentication put in an ErrorInfo (metadata `challenge`)."""
    for detail in value.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info) and "challenge" in info.metadata:
            return safe_text(info.metadata["challenge"])
    return ""


def stream_chunk(value: status_pb2.Status) -> dict[str, Any]:
    """A failed stream's last line: `{"error": <Status>}` (runtime.errorChunk)."""
    return {"error": protojson.to_dict(value)}


def response(
    value: status_pb2.Status, headers: dict[str, str] | None = None, *, http: int | None = None
) -> web.Response:
    body = body_of(value)
    code = (http or http_status(value.code)) if body is not FALLBACK_BODY else 500
    return web.Response(status=code, body=body, headers={**(headers or {}), **headers_for(value)})
