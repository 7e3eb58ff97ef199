"""Slow and idle clients over real sockets: a connection that sends nothing, stops in its headers or in its body is
closed after the configured time; open connections are bounded; a stream is never cut by those timeouts.

Every wait here is for the server to close a connection (EOF) or answer; the short timeouts only make that
quick, and the test's own timeout bounds it."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import resource
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import pytest_asyncio

from gateway.rest.connections import MAX_REFUSALS, RESERVED_FILES
from gateway.rest.server import RestGateway, services_named
from gateway.services import SERVICE_NAMES
from syllabus.config import ConfigError, GatewayConfig
from tests.pipeline import handlers
from tests.pipeline.conftest import StartWorker
from tests.rest import rawhttp
from tests.rest.conftest import ROOT, LogProblems, Rest
from tests.rest.test_jobs_api import submit

QUICK = 0.5


@dataclasses.dataclass
class Started:
    gateway: RestGateway
    url: str

    @property
    def open_connections(self) -> int:
        assert self.gateway.server is not None
        return self.gateway.server.open_connections


Shim = Callable[..., Awaitable[Started]]


@pytest_asyncio.fixture
async def shim(rest: Rest) -> AsyncIterator[Shim]:
    """Starts a REST shim with limits of its own in front of the rest fixture's gateway; stopped at the end."""
    started: list[Started] = []

    async def start(header_timeout: float = 10, body_timeout: float = 30, max_connections: int = 1024) -> Started:
        gateway = RestGateway(
            services_named(SERVICE_NAMES),
            rest.grpc_target,
            header_timeout=header_timeout,
            body_timeout=body_timeout,
            max_connections=max_connections,
        )
        started.append(Started(gateway, "http://" + await gateway.start("127.0.0.1:0")))
        return started[-1]

    yield start
    for each in started:
        await each.gateway.stop()


async def closed_without_answer(reader: asyncio.StreamReader) -> None:
    assert await reader.read() == b""


async def test_a_client_that_sends_nothing_is_closed(shim: Shim, gateway_log: LogProblems) -> None:
    gateway = await shim(header_timeout=QUICK)
    reader, writer = await rawhttp.connect(gateway.url)
    await closed_without_answer(reader)
    writer.close()
    assert gateway.open_connections == 0
    assert gateway_log() == []


async def test_a_client_that_stops_in_its_headers_is_closed(shim: Shim, gateway_log: LogProblems) -> None:
    gateway = await shim(header_timeout=QUICK)
    reader, writer = await rawhttp.connect(gateway.url)
    writer.write(b"GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nAccept: appl")
    await closed_without_answer(reader)
    writer.close()
    assert gateway_log() == []


async def test_an_idle_keep_alive_connection_is_closed(shim: Shim, gateway_log: LogProblems) -> None:
    gateway = await shim(header_timeout=QUICK)
    reader, writer = await rawhttp.connect(gateway.url)
    writer.write(b"GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\n\r\n")
    answer = await rawhttp.read_answer(reader)
    assert answer.status == 200
    await closed_without_answer(reader)
    writer.close()
    assert gateway_log() == []


async def test_a_client_that_stops_in_its_body_gets_408_and_is_closed(shim: Shim, gateway_log: LogProblems) -> None:
    gateway = await shim(body_timeout=QUICK)
    reader, writer = await rawhttp.connect(gateway.url)
    writer.write(
        b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        b'{"spec": '
    )
    answers = rawhttp.parse(await reader.read())
    writer.close()
    [answer] = answers
    status = rawhttp.assert_status_answer(answer)
    assert answer.status == 408 and status["code"] == 4
    assert status["message"] == "the request body stopped arriving: nothing came for 0.5 s"
    assert gateway_log() == []


async def test_streams_outlive_the_read_timeouts(
    rest: Rest, shim: Shim, start_worker: StartWorker, gateway_log: LogProblems
) -> None:
    gateway = await shim(header_timeout=QUICK, body_timeout=QUICK)
    await start_worker()
    job = await submit(rest, text="block")
    reader, writer = await rawhttp.connect(gateway.url)
    writer.write(b"GET /v1/jobs/%s:watch HTTP/1.1\r\nHost: localhost\r\n\r\n" % job["id"].encode())
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200 OK")
    # A connection opened after the watch started is closed by the header timeout: by then the watch has been
    # open longer than both timeouts.
    idle_reader, idle_writer = await rawhttp.connect(gateway.url)
    await closed_without_answer(idle_reader)
    idle_writer.close()
    handlers.release.set()
    body = await reader.read()
    writer.close()
    lines = [json.loads(line) for line in body.split(b"\r\n") if line.startswith(b"{")]
    assert [line["result"]["event"]["type"] for line in lines] == [
        "JOB_EVENT_TYPE_QUEUED",
        "JOB_EVENT_TYPE_STARTED",
        "JOB_EVENT_TYPE_SUCCEEDED",
    ]
    assert gateway_log() == []


async def test_connections_over_the_limit_get_503_and_the_gateway_keeps_serving(
    shim: Shim, gateway_log: LogProblems, caplog: pytest.LogCaptureFixture
) -> None:
    gateway = await shim(max_connections=3, header_timeout=60)
    url = gateway.url
    held = [await rawhttp.connect(url) for _ in range(3)]
    # Over the limit: answered at once, whether or not the client sent its request yet.
    for request in (b"", b"GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\n\r\n"):
        reader, writer = await rawhttp.connect(url)
        writer.write(request)
        [answer] = rawhttp.parse(await reader.read())
        writer.close()
        status = rawhttp.status_body(answer.headers["content-type"], answer.body)
        assert answer.status == 503 and status["code"] == 14 and answer.headers["retry-after"] == "1"
    assert "HTTP connections are open, the most SYLLABUS_HTTP_MAX_CONNECTIONS allows" in caplog.text
    # One held connection goes away (its close is done once the client sees the server close it too) ...
    reader, writer = held.pop()
    writer.write_eof()
    await closed_without_answer(reader)
    writer.close()
    # ... and the gateway serves again.
    [answer], _ = await rawhttp.exchange(url, b"GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert answer.status == 200
    for _, writer in held:
        writer.close()
    assert gateway_log() == []


async def test_a_flood_over_the_limit_is_closed_unanswered(shim: Shim, gateway_log: LogProblems) -> None:
    gateway = await shim(max_connections=1, header_timeout=60)
    held = await rawhttp.connect(gateway.url)
    # Refused clients that never close: each waits on the server for its client, up to MAX_REFUSALS of them ...
    refused = [await rawhttp.connect(gateway.url) for _ in range(MAX_REFUSALS)]
    for reader, _ in refused:
        assert (await rawhttp.read_answer(reader)).status == 503
    # ... and the next one is closed at once, without an answer.
    reader, writer = await rawhttp.connect(gateway.url)
    # (A reset, as the server aborts the connection, or an orderly end: either way no answer came.)
    with contextlib.suppress(ConnectionResetError):
        assert await reader.read() == b""
    writer.close()
    for _, refused_writer in refused:
        refused_writer.close()
    reader, writer = held
    writer.write_eof()
    await closed_without_answer(reader)
    writer.close()
    [answer], _ = await rawhttp.exchange(
        gateway.url, b"GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    assert answer.status == 200
    assert gateway_log() == []


async def test_silent_clients_cannot_hold_the_connections(shim: Shim, gateway_log: LogProblems) -> None:
    gateway = await shim(max_connections=2, header_timeout=QUICK)
    url = gateway.url
    silent = [await rawhttp.connect(url) for _ in range(2)]
    for reader, writer in silent:
        await closed_without_answer(reader)
        writer.close()
    [answer], _ = await rawhttp.exchange(url, b"GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
    assert answer.status == 200
    assert gateway_log() == []


def connection_bound_under(soft: int, hard: int, wanted: int) -> tuple[int, int, str]:
    """connection_bound(wanted) in a process started with that open-file limit: the bound, the soft limit it
    left, and what it logged."""
    program = f"""
import logging, resource, sys
logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(message)s")
resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))
from gateway.rest.connections import connection_bound
bound = connection_bound({wanted})
print(bound, resource.getrlimit(resource.RLIMIT_NOFILE)[0])
"""
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, check=True, cwd=ROOT)
    bound, left = done.stdout.split()
    return int(bound), int(left), done.stderr


def test_the_open_file_limit_is_raised_for_the_connection_bound() -> None:
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 1024 + RESERVED_FILES:
        pytest.skip(f"the hard open-file limit here ({hard}) is below what the test raises the soft one to")
    assert connection_bound_under(300, hard, 1024) == (1024, 1024 + RESERVED_FILES, "")


def test_the_connection_bound_is_lowered_to_what_the_open_file_limit_allows() -> None:
    bound, left, logged = connection_bound_under(300, 300, 1024)
    assert (bound, left) == (300 - RESERVED_FILES, 300)
    assert "SYLLABUS_HTTP_MAX_CONNECTIONS=1024, but this process may open only 300 files" in logged


def test_http_limits_come_from_the_environment() -> None:
    assert GatewayConfig.from_env({}).http_header_timeout == 10.0
    assert GatewayConfig.from_env({}).http_body_timeout == 30.0
    assert GatewayConfig.from_env({}).http_max_connections == 1024
    config = GatewayConfig.from_env(
        {
            "SYLLABUS_HTTP_HEADER_TIMEOUT": "2.5",
            "SYLLABUS_HTTP_BODY_TIMEOUT": "7",
            "SYLLABUS_HTTP_MAX_CONNECTIONS": "64",
        }
    )
    assert (config.http_header_timeout, config.http_body_timeout, config.http_max_connections) == (2.5, 7.0, 64)
    for name, value in [
        ("SYLLABUS_HTTP_HEADER_TIMEOUT", "0"),
        ("SYLLABUS_HTTP_BODY_TIMEOUT", "soon"),
        ("SYLLABUS_HTTP_MAX_CONNECTIONS", "0"),
        ("SYLLABUS_HTTP_MAX_CONNECTIONS", "1.5"),
    ]:
        with pytest.raises(ConfigError, match=name):
            GatewayConfig.from_env({name: value})
