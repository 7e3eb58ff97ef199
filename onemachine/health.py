"""Waiting for a gRPC server to report SERVING through the standard grpc.health.v1 service."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

# The channel retries a refused connection on its own; short back-offs keep it from idling for seconds
# after the server is finally listening.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


async def wait_healthy(
    addr: str,
    timeout: float,
    service: str = "",
    *,
    tls: tuple[grpc.ChannelCredentials, Sequence[tuple[str, Any]]] | None = None,
) -> None:
    """Return once the server at `addr` reports `service` SERVING; raise TimeoutError after `timeout` seconds.
    `tls`: credentials and channel options for a server that takes TLS only.

    Uses Watch with wait_for_ready: the call itself waits for the server to come up and then for its status
    to change, so there is no polling. A server restarting underneath us only costs another Watch.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last = "no answer"
    if tls is None:
        opened = grpc.aio.insecure_channel(addr, options=_CHANNEL_OPTIONS)
    else:
        opened = grpc.aio.secure_channel(addr, tls[0], options=[*_CHANNEL_OPTIONS, *tls[1]])
    async with opened as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service=service)
        while (remaining := deadline - loop.time()) > 0:
            try:
                async for response in stub.Watch(request, timeout=remaining, wait_for_ready=True):
                    last = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
                    if response.status == health_pb2.HealthCheckResponse.SERVING:
                        return
            except grpc.aio.AioRpcError as exc:
                code = exc.code()
                last = f"{code.name}: {exc.details()}"
                if code == grpc.StatusCode.UNIMPLEMENTED:
                    await _check_once(stub, request, deadline - loop.time())
                    return
                if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                    break
                if code != grpc.StatusCode.UNAVAILABLE:
                    raise
    raise TimeoutError(f"gRPC server at {addr} not SERVING after {timeout:.0f}s (last: {last})")


async def _check_once(stub: health_pb2_grpc.HealthStub, request: health_pb2.HealthCheckRequest, seconds: float) -> None:
    """For servers without Watch: one Check, which must already say SERVING."""
    response = await stub.Check(request, timeout=max(seconds, 0.001), wait_for_ready=True)
    if response.status != health_pb2.HealthCheckResponse.SERVING:
        status = health_pb2.HealthCheckResponse.ServingStatus.Name(response.status)
        raise TimeoutError(f"gRPC health check answered {status}")
