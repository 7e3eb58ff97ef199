"""Which web pages may call the API from a browser: CORS for configured origins, and no other site's writes.

CORS is off unless origins are configured (exact `scheme://host[:port]` origins, or `*` for any): then no answer
carries an `Access-Control-*` header, and a browser lets no other site's script send a request it would have to
ask about (JSON bodies, `Authorization`, `Grpc-*` headers, PUT/PATCH/DELETE) nor read any answer. With origins
configured, a preflight (OPTIONS with `Origin` and `Access-Control-Request-Method`) from one of them is answered
204, allowing the methods the routes use and the headers it asks for among `Accept`, `Authorization`,
`Content-Type`, `Grpc-Timeout`, `Last-Event-ID` and `Grpc-Metadata-*`, for MAX_AGE seconds; any other origin, method
or header is 403. Answers to an allowed origin carry `Access-Control-Allow-Origin` (the origin itself, with
`Vary: Origin`: no cookies are used, so never `Allow-Credentials`) and expose the headers a client reads
(`Grpc-Metadata-*`, `Content-Disposition`, `WWW-Authenticate`, `Allow`, `Retry-After`).

What a browser sends without asking, a POST with no body or a form for one, it still sends to any site. A form
body is refused as not JSON (gateway.rest.mediatypes); for the rest, a request that changes something (any
method but GET, HEAD and OPTIONS) from another site's page is 403, as Go's http.CrossOriginProtection does it:
`Sec-Fetch-Site` tells (`same-origin` and `none`, the user's own navigation, pass), or, from a browser too old
for it, an `Origin` whose host is not the request's `Host`. Configured origins pass; tools like curl send
neither header and are not concerned.

aiohttp-cors is not used: it registers its handlers on an aiohttp Application's router and answers through the
Application's response signals, and the shim is aiohttp's low-level Server with a router of its own
(gateway.rest.routes), so it has neither. What it would do here is the few rules above.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping, Sequence
from urllib.parse import urlsplit

from aiohttp import web
from google.rpc import code_pb2

from gateway.rest import errors
from gateway.status import build_status

ANY_ORIGIN = "*"
# Long enough to spare most requests a preflight; short enough that a change of origins is seen soon.
MAX_AGE = 600
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
METADATA_PREFIX = "grpc-metadata-"
REQUEST_HEADERS = frozenset({"accept", "authorization", "content-type", "grpc-timeout", "last-event-id"})
EXPOSED_HEADERS = frozenset({"allow", "content-disposition", "retry-after", "www-authenticate"})
_PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"


def _refused(message: str) -> errors.ClientError:
    return errors.ClientError(build_status(code_pb2.PERMISSION_DENIED, message), http=403)


class Origins:
    """The CORS origins of one listener (none: CORS off) and the methods its routes use."""

    def __init__(self, origins: Sequence[str], methods: Iterable[str]) -> None:
        self.any = ANY_ORIGIN in origins
        self.origins = frozenset(origin.strip().lower() for origin in origins if origin != ANY_ORIGIN)
        self.enabled = self.any or bool(self.origins)
        self.methods = tuple(sorted(set(methods)))

    def allows(self, origin: str) -> bool:
        return self.enabled and (self.any or origin.lower() in self.origins)

    def is_preflight(self, request: web.BaseRequest) -> bool:
        """A CORS preflight the shim answers itself; with CORS off an OPTIONS goes to routing (405, no CORS)."""
        headers = request.headers
        return (
            self.enabled
            and request.method == "OPTIONS"
            and "Origin" in headers
            and "Access-Control-Request-Method" in headers
        )

    def preflight(self, request: web.BaseRequest) -> web.Response:
        origin = request.headers["Origin"]
        method = request.headers["Access-Control-Request-Method"].strip()
        asked = [h.strip().lower() for h in request.headers.get("Access-Control-Request-Headers", "").split(",")]
        asked = [header for header in asked if header]
        vary = {"Vary": _PREFLIGHT_VARY}
        refusal = None
        if not self.allows(origin):
            refusal = _refused(
                f"origin {errors.quoted(origin)} may not call this API from a browser: "
                "it is not one of the gateway's CORS origins (SYLLABUS_HTTP_CORS_ORIGINS)"
            )
        elif method not in self.methods:
            refusal = _refused(f"method {errors.quoted(method)} is not one this API serves ({', '.join(self.methods)})")
        else:
            other = next((h for h in asked if h not in REQUEST_HEADERS and not self._metadata(h)), None)
            if other is not None:
                allowed = ", ".join(sorted(REQUEST_HEADERS))
                refusal = _refused(
                    f"header {errors.quoted(other)} may not be sent from a browser: "
                    f"the API takes {allowed} and Grpc-Metadata-*"
                )
        if refusal is not None:
            return errors.response(refusal.status, vary, http=refusal.http)
        allowed_headers = {"Access-Control-Allow-Headers": ", ".join(asked)} if asked else {}
        return web.Response(
            status=204,
            headers={
                "Access-Control-Allow-Origin": origin,
                "Access-Control-Allow-Methods": ", ".join(self.methods),
                **allowed_headers,
                "Access-Control-Max-Age": str(MAX_AGE),
                **vary,
            },
        )

    def cross_origin_refusal(self, request: web.BaseRequest) -> errors.ClientError | None:
        """403 for another site's page changing something (see the module docstring); None for the rest."""
        if request.method in SAFE_METHODS:
            return None
        origin = request.headers.get("Origin")
        site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
        if site in ("same-origin", "none"):
            return None
        # Without Sec-Fetch-Site: an old browser (Origin tells) or no browser at all (no Origin either).
        if not site and (origin is None or self._same_host(origin, request)):
            return None
        if origin is not None and self.allows(origin.strip()):
            return None
        page = f"a page of {errors.quoted(origin)}" if origin is not None else "another site's page"
        return _refused(
            f"cross-origin request refused: a {request.method} from {page}; from a browser, this gateway takes "
            "requests that change something only from its own pages and its CORS origins (SYLLABUS_HTTP_CORS_ORIGINS)"
        )

    def decorate(self, request: web.BaseRequest, headers: MutableMapping[str, str]) -> None:
        """The CORS headers of an answer (not a preflight), added before it is sent."""
        if not self.enabled:
            return
        headers["Vary"] = "Origin"
        origin = request.headers.get("Origin")
        if origin is None or not self.allows(origin):
            return
        headers["Access-Control-Allow-Origin"] = origin
        exposed = [name for name in headers if self._exposed(name.lower())]
        if exposed:
            headers["Access-Control-Expose-Headers"] = ", ".join(dict.fromkeys(exposed))

    @staticmethod
    def _same_host(origin: str, request: web.BaseRequest) -> bool:
        try:
            netloc = urlsplit(origin.strip()).netloc
        except ValueError:
            return False
        return bool(netloc) and netloc.lower() == request.headers.get("Host", "").strip().lower()

    @staticmethod
    def _exposed(header: str) -> bool:
        return header.startswith(METADATA_PREFIX) or header in EXPOSED_HEADERS

    @staticmethod
    def _metadata(header: str) -> bool:
        return header.startswith(METADATA_PREFIX) and len(header) > len(METADATA_PREFIX)
