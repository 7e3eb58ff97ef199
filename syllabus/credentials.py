"""What a client sends with every call to identify itself: a bearer token (a JWT or an API key) and, for an admin,
the tenant it acts for. Added by an interceptor, so every stub of the channel carries it, over TLS or not: grpc's
own call credentials would insist on TLS, which loopback does not need."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc

from syllabus.config import ClientConfig
from syllabus.tls import channel_credentials

Pair = tuple[str, str]


class _WithMetadata:
    def __init__(self, pairs: Sequence[Pair]) -> None:
        self._pairs = tuple(pairs)

    def _details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = grpc.aio.Metadata(*(details.metadata or ()))
        for key, value in self._pairs:
            metadata.add(key, value)
        return grpc.aio.ClientCallDetails(
            details.method, details.timeout, metadata, details.credentials, details.wait_for_ready
        )


# One class per kind of call: a channel files each interceptor under the first kind it is an instance of.
class _UnaryUnary(_WithMetadata, grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _UnaryStream(_WithMetadata, grpc.aio.UnaryStreamClientInterceptor):
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(self._details(details), request)


class _StreamUnary(_WithMetadata, grpc.aio.StreamUnaryClientInterceptor):
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


class _StreamStream(_WithMetadata, grpc.aio.StreamStreamClientInterceptor):
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(self._details(details), requests)


def credential_pairs(token: str | None, tenant: str | None) -> list[Pair]:
    pairs = []
    if token:
        pairs.append(("authorization", f"Bearer {token}"))
    if tenant:
        pairs.append(("x-syllabus-tenant", tenant))
    return pairs


def channel(
    addr: str,
    *,
    token: str | None = None,
    tenant: str | None = None,
    options: Sequence[tuple[str, Any]] = (),
    tls: grpc.ChannelCredentials | None = None,
) -> grpc.aio.Channel:
    """A channel to `addr` whose calls carry the token and tenant given (none: a plain channel); over TLS with
    `tls` (syllabus.tls.channel_credentials), else plaintext."""
    pairs = credential_pairs(token, tenant)
    kinds = (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)
    interceptors: list[Any] | None = [kind(pairs) for kind in kinds] if pairs else None
    if tls is not None:
        return grpc.aio.secure_channel(addr, tls, options=list(options), interceptors=interceptors)
    return grpc.aio.insecure_channel(addr, options=list(options), interceptors=interceptors)


def configured_channel(addr: str, identity: ClientConfig, options: Sequence[tuple[str, Any]] = ()) -> grpc.aio.Channel:
    """The command line's channel: the token, tenant and TLS files of its environment (ClientConfig)."""
    tls = channel_credentials(identity.tls_files) if identity.tls else None
    return channel(addr, token=identity.token or None, tenant=identity.tenant or None, options=options, tls=tls)
