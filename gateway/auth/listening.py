"""No open gateway off loopback: anyone who can reach the port could submit, read and purge every tenant's work."""

from __future__ import annotations

from gateway.rest.hosts import is_loopback
from syllabus.config import AuthConfig, ConfigError


def refuse_open_listening(auth: AuthConfig, addresses: tuple[tuple[str, str], ...]) -> None:
    """ConfigError when authentication is off and one of the (variable, host:port) addresses is not loopback,
    unless SYLLABUS_AUTH_ALLOW_OPEN=1 says that is meant."""
    if auth.required or auth.allow_open:
        return
    for variable, address in addresses:
        host = address.rpartition(":")[0]
        if not address.startswith("unix:") and not is_loopback(host.strip("[]")):
            raise ConfigError(
                f"{variable}={address} is not a loopback address and authentication is off: set "
                "SYLLABUS_AUTH_JWT_SECRET, SYLLABUS_AUTH_JWKS or SYLLABUS_AUTH=on (API keys), or "
                "SYLLABUS_AUTH_ALLOW_OPEN=1 to serve everyone who can reach it"
            )
