"""Request bodies are JSON, and must say so: `Content-Type: application/json` or `application/<name>+json`, with
any parameters, a `charset` only if it is UTF-8 (the one JSON has).

A browser sends another site's request without asking the server first (no CORS preflight) only if its body is
`text/plain`, a form (`application/x-www-form-urlencoded`) or `multipart/form-data`; a JSON body it sends only
after a preflight the gateway answers for its configured origins alone (gateway.rest.origins). Were a body read
as JSON whatever its type, any page could have a visitor's browser submit jobs with a text/plain "form". So a
request with a body (a Content-Length over 0, or chunked) of any other type is refused, 415 Unsupported Media
Type, before it is read. A request without a body needs no Content-Type: a `POST .../{id}:cancel` may be sent
bare.

The answer's Status is UNIMPLEMENTED with HTTP 415, as a wrong method is UNIMPLEMENTED with 405: the request is
well formed, in a form the API does not serve.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from aiohttp import web
from google.rpc import code_pb2

from gateway.rest import errors
from gateway.status import build_status

JSON = "application/json"
ACCEPTED = "application/json (or application/<name>+json), charset utf-8 if one is given"
# RFC 9110's media-type: type "/" subtype *( OWS ";" OWS parameter ).
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_MEDIA_TYPE = re.compile(rf"[ \t]*({_TOKEN})/({_TOKEN})[ \t]*")
_PARAMETER = re.compile(rf'[ \t]*;[ \t]*(?:({_TOKEN})=({_TOKEN}|"(?:[^"\\]|\\.)*"))?[ \t]*', re.S)
_UTF8 = frozenset({"utf-8", "utf8"})


def is_json(media_type: str) -> bool:
    """`application/json` or `application/<name>+json` (type and subtype already lower case)."""
    kind, _, subtype = media_type.partition("/")
    return kind == "application" and (subtype == "json" or (subtype.endswith("+json") and len(subtype) > 5))


def why_not_json(values: Sequence[str]) -> str | None:
    """None if these Content-Type header values (one, normally) declare a JSON body; else what is wrong."""
    if not values:
        return "the request has a body but no Content-Type"
    if len(values) > 1:
        return f"the request has {len(values)} Content-Type headers"
    value = values[0]
    match = _MEDIA_TYPE.match(value)
    if match is None:
        return f"Content-Type {errors.quoted(value)} is not a media type"
    media_type = f"{match.group(1)}/{match.group(2)}".lower()
    if not is_json(media_type):
        return f"Content-Type {errors.quoted(media_type)} is not JSON"
    position = match.end()
    while position < len(value):
        parameter = _PARAMETER.match(value, position)
        if parameter is None or parameter.end() == position:
            return f"Content-Type {errors.quoted(value)} has malformed parameters"
        name, given = parameter.group(1), parameter.group(2)
        if name is not None and name.lower() == "charset":
            charset = given[1:-1] if given.startswith('"') else given
            if charset.lower() not in _UTF8:
                return f"Content-Type {errors.quoted(value)}: JSON is UTF-8, not {errors.quoted(charset)}"
        position = parameter.end()
    return None


def refusal(request: web.BaseRequest) -> errors.ClientError | None:
    """415 for a request whose body is not declared JSON; None for one without a body."""
    if not request.body_exists:
        return None
    problem = why_not_json(request.headers.getall("Content-Type", []))
    if problem is None:
        return None
    message = f"{problem}: request bodies must be JSON, sent as Content-Type: {ACCEPTED}"
    return errors.ClientError(build_status(code_pb2.UNIMPLEMENTED, message), http=415)
