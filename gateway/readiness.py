"""The gateway's health follows its NATS connection: NOT_SERVING while it is lost, SERVING again once it is back.

Without NATS the gateway can take no job and stream no event, so load balancers and `syllabus up` should look
elsewhere (or wait) rather than send calls that can only fail.
"""

from __future__ import annotations

import logging

from grpc_health.v1 import health, health_pb2

from gateway.services import SERVICE_NAMES

log = logging.getLogger(__name__)
_STATUS = health_pb2.HealthCheckResponse


class Readiness:
    def __init__(self) -> None:
        self._servicer: health.aio.HealthServicer | None = None
        self._nats_connected = True

    async def attach(self, servicer: health.aio.HealthServicer) -> None:
        """Start answering health checks, with the connection's state as it is now."""
        self._servicer = servicer
        await self._publish()

    async def on_nats(self, connected: bool) -> None:
        """The NATS connection's hook (syllabus.jetstream.connect's on_change)."""
        self._nats_connected = connected
        if self._servicer is not None:
            await self._publish()
            log.info("health: %s (NATS %s)", "SERVING" if connected else "NOT_SERVING", "back" if connected else "lost")

    async def _publish(self) -> None:
        assert self._servicer is not None
        status = _STATUS.SERVING if self._nats_connected else _STATUS.NOT_SERVING
        for name in ("", *SERVICE_NAMES):
            await self._servicer.set(name, status)
