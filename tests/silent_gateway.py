"""A gRPC server that takes JobService.RunJob calls and never answers them: a gateway stuck before its answer,
for the clients' deadlines."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import grpc


@asynccontextmanager
async def silent_gateway() -> AsyncIterator[tuple[str, asyncio.Event]]:
    """Its "127.0.0.1:port", and an event set once a RunJob call has come in."""
    taken = asyncio.Event()

    async def silent(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> AsyncIterator[bytes]:
        taken.set()
        await asyncio.Event().wait()
        yield b""

    server = grpc.aio.server()
    methods = {"RunJob": grpc.unary_stream_rpc_method_handler(silent)}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("syllabus.v1.JobService", methods),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}", taken
    finally:
        await server.stop(grace=None)
