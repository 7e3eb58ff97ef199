"""The REST shim's HTTPS listener on its own: the TLS handshake is bounded like a request's headers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest_asyncio

from gateway.rest.server import RestGateway, services_named
from gateway.services import SERVICE_NAMES
from syllabus.tls import GatewayCredentials
from tests.tls.conftest import Pki

# Far below asyncio's own bound on a TLS handshake (60 s), which a silent client would otherwise get.
HEADER_TIMEOUT = 0.5
CLOSED_WITHIN = 30.0


@pytest_asyncio.fixture
async def https(pki: Pki, closed_addr: str) -> AsyncIterator[str]:
    # No gRPC server behind it: these requests never get that far.
    rest = RestGateway(
        services_named(SERVICE_NAMES),
        closed_addr,
        header_timeout=HEADER_TIMEOUT,
        tls=GatewayCredentials(pki.server_files()),
    )
    addr = await rest.start("127.0.0.1:0")
    try:
        yield addr
    finally:
        await rest.stop()


async def test_a_client_that_never_finishes_its_tls_handshake_is_closed(https: str, pki: Pki) -> None:
    host, _, port = https.rpartition(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        # Nothing sent, not even a ClientHello: the server ends the connection at the header timeout.
        assert await asyncio.wait_for(reader.read(), CLOSED_WITHIN) == b""
    finally:
        writer.close()
    async with httpx.AsyncClient(base_url=f"https://{https}", verify=pki.client_context()) as http:
        assert (await http.get("/openapi.json")).status_code == 200
