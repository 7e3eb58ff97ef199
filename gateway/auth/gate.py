"""The gate every method of ours passes: who the caller is, whether it may call the method, and for which tenant.

Credentials travel as `authorization: Bearer <token>` metadata (the REST shim forwards the Authorization
header): a JWT, or an API key (`syl_...`). An admin may act for another tenant by naming it in
`x-syllabus-tenant`. With authentication off (the one-machine default, on loopback) every caller is an admin of
the configured tenant.

Tokens already verified are remembered until they expire, so a client calling many times pays for one check.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from google.rpc import code_pb2, error_details_pb2

from gateway.auth.caller import ADMIN, Caller, InvalidToken
from gateway.limits import Limits
from gateway.status import Context, build_status
from syllabus.apikeys import PREFIX, KnownKeys
from syllabus.config import AuthConfig

if TYPE_CHECKING:
    from gateway.auth.tokens import Tokens

ACT_AS = "x-syllabus-tenant"
# Tenants are parts of subjects (events.<tenant>.<job>) and keys: wildcards or dots would cross tenants.
TENANT = re.compile(r"[A-Za-z0-9_-]{1,64}")
REALM = 'Bearer realm="syllabus"'
DOMAIN = "syllabus"
_REMEMBERED = 10_000


class Refused(Exception):
    """The call may not go on: its status, with an ErrorInfo saying why (and, for a 401, the WWW-Authenticate
    challenge the REST shim sends)."""

    def __init__(self, code: int, message: str, reason: str, challenge: str = "") -> None:
        super().__init__(message)
        info = error_details_pb2.ErrorInfo(reason=reason, domain=DOMAIN)
        if challenge:
            info.metadata["challenge"] = challenge
        self.status = build_status(code, message, info)


def _unauthenticated(message: str, error: str = "") -> Refused:
    described = message.replace('"', "'")
    challenge = f'{REALM}, error="{error}", error_description="{described}"' if error else REALM
    return Refused(code_pb2.UNAUTHENTICATED, message, error.upper() or "CREDENTIALS_MISSING", challenge)


def _scopes(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        return frozenset(value.split())
    if isinstance(value, list):
        return frozenset(str(item) for item in value)
    return frozenset()


def _tokens(config: AuthConfig) -> Tokens | None:
    """What checks JWTs, where the configuration has any; PyJWT and cryptography are loaded only then (they cost a
    gateway 8 MB of memory)."""
    if not (config.jwt_secret or config.jwks):
        return None
    from gateway.auth.tokens import Tokens

    return Tokens(config)


class Gate:
    def __init__(
        self, config: AuthConfig, default_tenant: str, keys: KnownKeys | None = None, limits: Limits | None = None
    ) -> None:
        self._required = config.required
        self._limits = limits
        self._config = config
        self._tokens = _tokens(config)
        self._keys = keys
        self._open = Caller(default_tenant, frozenset({ADMIN}), "anonymous")
        # token -> (caller, expiry in Unix seconds)
        self._verified: dict[str, tuple[Caller, float]] = {}

    @property
    def required(self) -> bool:
        return self._required

    async def admit(self, context: Context, scope: str) -> Caller:
        """The caller of this call, allowed `scope` and within its tenant's rate; Refused, LimitReached or
        LimitsUnavailable otherwise."""
        authorization = act_as = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                authorization = value
            elif key == ACT_AS:
                act_as = value
        caller = await self._identify(authorization) if self._required else self._open
        if not caller.may(scope):
            raise Refused(code_pb2.PERMISSION_DENIED, f"this call needs the {scope!r} scope", "SCOPE_MISSING")
        if act_as and act_as != caller.tenant:
            if ADMIN not in caller.scopes:
                raise Refused(
                    code_pb2.PERMISSION_DENIED, f"only an admin may act for another tenant ({ACT_AS})", "NOT_ADMIN"
                )
            if not TENANT.fullmatch(act_as):
                raise Refused(code_pb2.INVALID_ARGUMENT, f"{ACT_AS} must be letters, digits, _ or -", "BAD_TENANT")
            caller = Caller(act_as, caller.scopes, caller.subject)
        if self._limits is not None:
            await self._limits.admit(caller.tenant, scope)
        return caller

    async def _identify(self, authorization: str) -> Caller:
        scheme, _, credential = authorization.partition(" ")
        if not authorization:
            raise _unauthenticated("this call needs credentials: Authorization: Bearer <token or API key>")
        if scheme.lower() != "bearer" or not credential.strip():
            raise _unauthenticated("credentials must be given as Authorization: Bearer <token>", "invalid_request")
        credential = credential.strip()
        if credential.startswith(PREFIX):
            return self._key_caller(credential)
        remembered = self._verified.get(credential)
        if remembered is not None and remembered[1] > time.time():
            return remembered[0]
        try:
            if self._tokens is None:
                raise InvalidToken("this gateway takes API keys only")
            claims = await self._tokens.claims(credential)
        except InvalidToken as exc:
            raise _unauthenticated(str(exc), "invalid_token") from None
        caller = self._token_caller(claims)
        if len(self._verified) >= _REMEMBERED:
            self._verified.clear()
        self._verified[credential] = (caller, float(claims["exp"]))
        return caller

    def _key_caller(self, presented: str) -> Caller:
        key = self._keys.check(presented) if self._keys is not None else None
        if key is None:
            raise _unauthenticated("the API key is not valid (unknown or revoked)", "invalid_token")
        return Caller(key.tenant, frozenset(key.scopes), f"key:{key.id}")

    def _token_caller(self, claims: dict[str, Any]) -> Caller:
        tenant = claims.get(self._config.tenant_claim)
        if not isinstance(tenant, str) or not TENANT.fullmatch(tenant):
            raise _unauthenticated(
                f"the token's {self._config.tenant_claim!r} claim must name a tenant (letters, digits, _ or -)",
                "invalid_token",
            )
        subject = claims.get("sub")
        return Caller(tenant, _scopes(claims.get(self._config.scope_claim)), str(subject)[:128] if subject else "")
