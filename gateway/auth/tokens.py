"""Bearer JWTs: HS256 with a shared secret, or RS256/ES256 (and their larger siblings) with keys from a JWKS file
or URL, as Auth0, Keycloak and Okta publish them. PyJWT checks signatures and claims; this module picks the key.

Keys are read again when a token names one that is not known (a rotation), at most every `jwks_min_reload` seconds
so garbage tokens cannot make the gateway fetch in a loop, and every `jwks_refresh` seconds (a key withdrawn).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import jwt

from gateway.auth.caller import InvalidToken
from syllabus.config import AuthConfig

ASYMMETRIC = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"})
FETCH_TIMEOUT = 5.0


class KeySet:
    """The keys of a JWKS file or URL, by key id."""

    def __init__(self, source: str, refresh: float, min_reload: float) -> None:
        self._source = source
        self._refresh = refresh
        self._min_reload = min_reload
        self._keys: dict[str, jwt.PyJWK] = {}
        self._loaded = -float("inf")
        self._tried = -float("inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str | None) -> jwt.PyJWK:
        now = time.monotonic()
        unknown = (kid or "") not in self._keys and not (kid is None and len(self._keys) == 1)
        if now - self._loaded > self._refresh or (unknown and now - self._tried >= self._min_reload):
            await self._reload()
        if kid is None and len(self._keys) == 1:
            return next(iter(self._keys.values()))
        found = self._keys.get(kid or "")
        if found is None:
            raise InvalidToken("the token is signed with a key the gateway does not know")
        return found

    async def _reload(self) -> None:
        async with self._lock:
            self._tried = time.monotonic()
            try:
                document = await self._read()
                keys = jwt.PyJWKSet.from_dict(document).keys
            except (OSError, ValueError, aiohttp.ClientError, TimeoutError, jwt.PyJWKSetError) as exc:
                # Keys read earlier stay in use: an identity provider that is briefly away locks no one out.
                raise InvalidToken(f"the signing keys cannot be read now ({type(exc).__name__})") from None
            self._keys = {key.key_id or "": key for key in keys}
            self._loaded = self._tried

    async def _read(self) -> dict[str, Any]:
        if self._source.startswith(("https://", "http://")):
            timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(self._source) as answer:
                answer.raise_for_status()
                loaded: dict[str, Any] = json.loads(await answer.read())
                return loaded
        data = await asyncio.to_thread(Path(self._source).read_bytes)
        read: dict[str, Any] = json.loads(data)
        return read


class Tokens:
    def __init__(self, config: AuthConfig) -> None:
        self._config = config
        self._keys = KeySet(config.jwks, config.jwks_refresh, config.jwks_min_reload) if config.jwks else None

    async def claims(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature, expiry, issuer and audience hold; InvalidToken otherwise."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise InvalidToken("the bearer token is not a JWT") from None
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._config.jwt_secret:
            key = self._config.jwt_secret
        elif algorithm in ASYMMETRIC and self._keys is not None:
            key = await self._keys.key(header.get("kid"))
        else:
            raise InvalidToken(f"tokens signed with {str(algorithm)[:16]!r} are not accepted")
        config = self._config
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=config.audience or None,
                issuer=config.issuer or None,
                leeway=config.leeway,
                options={"require": ["exp"], "verify_aud": bool(config.audience)},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidToken(f"the token is not valid: {exc}") from None
