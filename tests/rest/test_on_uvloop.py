"""The REST shim's connection handling on uvloop, the event loop the gateway runs on. Its transports are not
asyncio's (no asyncio.Transport subclasses, for one): a check that assumed they were passed every test on
asyncio's loop and broke the connection bound under uvloop. The rest of the suite runs on asyncio's loop, on
which uvloop cannot take over: spawning the test servers from a process with gRPC's threads crashes under it."""

from __future__ import annotations

import asyncio
import concurrent.futures

import uvloop
from aiohttp import web

from gateway.rest import connections
from tests.rest import rawhttp

BAD_HEADER = b"POST /v1/jobs HTTP/1.1\r\nHost: gateway\r\nBad Header: x\r\nContent-Length: %d\r\n\r\n"


async def answered_then_refused() -> tuple[bytes, bytes]:
    """A bad request with a large body on the one connection allowed, then a second connection."""

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        return web.Response(text="ok")

    server = connections.Server(handle, max_connections=1, header_timeout=30, access_log=None)
    runner = web.ServerRunner(server, shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    try:
        body = b"x" * 4_000_000
        reader, writer = await rawhttp.connect(url)
        writer.write(BAD_HEADER % len(body) + body)
        # Far longer than any answer takes: a hang, not a slow answer, ends here.
        answer = await asyncio.wait_for(reader.read(), 10)
        # Still open on the client's side, so still counted: the next connection is over the bound.
        refused_reader, refused_writer = await rawhttp.connect(url)
        refusal = await asyncio.wait_for(refused_reader.read(), 10)
        refused_writer.close()
        writer.close()
        return answer, refusal
    finally:
        await runner.cleanup()


def test_an_error_answer_and_a_refusal_on_uvloop() -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as thread:
        answer, refusal = thread.submit(uvloop.run, answered_then_refused()).result(timeout=60)
    [bad] = rawhttp.parse(answer)
    assert bad.status == 400 and "Invalid header" in rawhttp.assert_status_answer(bad)["message"]
    [over] = rawhttp.parse(refusal)
    assert over.status == 503 and rawhttp.status_body(over.headers["content-type"], over.body)["code"] == 14
