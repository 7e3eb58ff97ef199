"""The Host check that keeps DNS rebinding away from a gateway listening on loopback.

A web page cannot reach 127.0.0.1 under its own origin, unless its name is made to resolve there: the page at
http://evil.example:8080 is served once, then evil.example is re-pointed to 127.0.0.1 and the page's scripts,
same-origin as far as the browser knows, call the gateway and read its answers. The browser still names the
page's host in the `Host` header, so a gateway bound to loopback answers only requests addressed to a loopback
name (`localhost`, 127.0.0.0/8, `[::1]`, any port) or to a host named in its allowed hosts (a reverse proxy's
name, say); anything else is 421 Misdirected Request, before any route, `/docs` and `/openapi.json` included.

On any other address the gateway is meant to be reached under names it cannot know, so it takes any Host unless
allowed hosts are given; then those (and the loopback names, which no page can re-point) are the only ones. A
request without a Host (HTTP/1.0) comes from no browser: it passes on loopback, and fails an allowed-hosts list,
which it cannot be matched against. `*` in the allowed hosts turns the check off.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence

from google.rpc import code_pb2

from gateway.rest import errors
from gateway.status import build_status

ANY_HOST = "*"
_PORT = re.compile(r"[0-9]*")


def normalized(name: str) -> str:
    """A host name or address as it is compared: lower case, IPv6 without brackets and in its shortest form."""
    name = name.strip().lower()
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return ipaddress.ip_address(name).compressed
    except ValueError:
        return name


def is_loopback(name: str) -> bool:
    """`localhost` or a loopback address (a name already normalized)."""
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_of(header: str) -> str | None:
    """The host a Host header names, normalized, without its port: `[::1]:8080` -> `::1`; None if malformed."""
    header = header.strip()
    if header.startswith("["):
        end = header.find("]")
        name, rest = header[1:end], header[end + 1 :]
        if end < 0 or (rest and not rest.startswith(":")):
            return None
        port = rest[1:]
    else:
        name, _, port = header.partition(":")
    if not name or not _PORT.fullmatch(port):
        return None
    return normalized(name)


class HostPolicy:
    """Which Host headers a listener answers (see the module docstring)."""

    def __init__(self, bind_host: str, allowed_hosts: Sequence[str] = ()) -> None:
        self.allowed = frozenset(normalized(host) for host in allowed_hosts)
        loopback = is_loopback(normalized(bind_host))
        self.enforced = ANY_HOST not in self.allowed and (loopback or bool(self.allowed))
        self._bare_allowed = loopback

    def allows(self, headers: Sequence[str]) -> bool:
        """Whether a request with these Host header values (usually one) is for this listener."""
        if not self.enforced:
            return True
        if not headers:
            return self._bare_allowed
        for header in headers:
            name = host_of(header)
            if name is None or not (is_loopback(name) or name in self.allowed):
                return False
        return True

    def refusal(self, headers: Sequence[str]) -> errors.ClientError | None:
        if self.allows(headers):
            return None
        named = f"Host {', '.join(errors.quoted(header) for header in headers)}" if headers else "no Host header"
        served = "loopback names (localhost, 127.0.0.1, [::1])"
        if self.allowed:
            served += " and " + ", ".join(sorted(self.allowed))
        message = f"misdirected request ({named}): this gateway answers {served}; SYLLABUS_HTTP_ALLOWED_HOSTS adds more"
        return errors.ClientError(build_status(code_pb2.PERMISSION_DENIED, message), http=421)
