"""Fuzzing the REST shim in front of the real gateway on real NATS: request bodies, headers, query strings, paths
and raw bytes on the socket. Whatever comes in, the answer is no 5xx, a google.rpc.Status when it is not a
success, comes within the client's timeout, and the gateway logs no error and no traceback for it (nor does
grpc's core, on stderr)."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from functools import cache
from typing import Any
from urllib.parse import quote, quote_from_bytes

import httpx
import pytest
import pytest_asyncio
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.rest.routes import Route
from gateway.rest.server import RestGateway, services_named
from gateway.services import SERVICE_NAMES
from tests.rest import rawhttp
from tests.rest.conftest import LogProblems, Rest

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
# These watches never end by themselves, and answer nothing until something happens: a request one takes would
# wait until the client's timeout. (A stream is judged by its first message: a run's comes once its job is
# accepted, though no worker here ever ends it.)
ENDLESS = {
    "syllabus.v1.JobService.WatchJobs",
    "syllabus.v1.AdminService.WatchWorkers",
    "syllabus.v1.AdminService.WatchQueueStats",
}
ROUTES = [
    route
    for route in RestGateway(services_named(SERVICE_NAMES), "127.0.0.1:9").routes
    if route.method.full_name not in ENDLESS
]
BODY_ROUTES = [route for route in ROUTES if route.body]
QUERY_ROUTES = [route for route in ROUTES if route.body != "*"]
GRPC_CORE_ERROR = re.compile(r"^E\d{4} ", re.MULTILINE)
# Bodies are declared JSON, so they get past the media type check to the transcoding being fuzzed.
JSON_BODY = {"Content-Type": "application/json"}
SURROGATES = st.sampled_from(["\ud800", "\udbff", "\udc00", "\udfff"])
TEXT = st.lists(st.one_of(st.text(max_size=6), SURROGATES), max_size=3).map("".join)
NUMBERS = st.one_of(
    st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=True, allow_infinity=True), st.just(1e308), st.just(-0.0)
)
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), NUMBERS, TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(TEXT, inner, max_size=4)),
    max_leaves=10,
)
TIMES = st.sampled_from(
    ["2030-01-31T09:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "10000-01-01T00:00:00Z", "2030-13-01", ""]
)
DURATIONS = st.sampled_from(["1s", "0.5s", "-5s", "86401s", "315576000001s", "1.0000000001s", "s", "1"])


@cache
def value_strategy(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    """Values of a field: ones of its type (names of its enum, times, nested messages) and arbitrary JSON."""
    message = field.message_type
    if message is not None and message.GetOptions().map_entry:
        return st.dictionaries(TEXT, value_strategy(message.fields_by_name["value"], depth), max_size=3)
    if field.enum_type is not None:
        names = [value.name for value in field.enum_type.values]
        typed: st.SearchStrategy[Any] = st.one_of(st.sampled_from(names), st.integers(-2, 12), SURROGATES, TEXT)
    elif message is not None and message.full_name == "google.protobuf.Timestamp":
        typed = TIMES
    elif message is not None and message.full_name == "google.protobuf.Duration":
        typed = DURATIONS
    elif message is not None:
        typed = message_strategy(message, depth + 1) if depth < 4 else st.just({})
    elif field.type == FieldDescriptor.TYPE_STRING:
        typed = st.one_of(TEXT, SURROGATES)
    elif field.type == FieldDescriptor.TYPE_BOOL:
        typed = st.booleans()
    else:
        typed = st.one_of(NUMBERS, st.integers(-(1 << 65), 1 << 65).map(str))
    one = st.one_of(typed, typed, JSON)
    if field.is_repeated:
        return st.one_of(st.lists(one, max_size=3), JSON)
    return one


@cache
def message_strategy(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects shaped like the message: some of its fields by either spelling, now and then a stranger."""
    keys = [(name, field) for field in descriptor.fields for name in {field.name, field.json_name}]
    if not keys:
        return st.just({})
    pairs = st.lists(st.sampled_from(keys).flatmap(lambda kf: st.tuples(st.just(kf[0]), value_strategy(kf[1], depth))))
    unknown = st.dictionaries(TEXT, JSON, max_size=1)
    return st.tuples(pairs, st.one_of(st.just({}), st.just({}), unknown)).map(lambda both: {**dict(both[0]), **both[1]})


SEGMENT = st.one_of(
    st.text(max_size=12).map(lambda text: quote(text, safe="")),
    st.binary(max_size=8).map(lambda data: quote_from_bytes(data, safe="")),
    st.sampled_from(["", ".", "..", "%", "%zz", "%ff%fe", "a%2Fb", "x" * 300]),
)


def path_for(route: Route, segment: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: segment, route.template.openapi_path())


def check(got: httpx.Response) -> None:
    assert got.status_code < 500, (got.request.method, got.request.url, got.status_code, got.text[:500])
    if got.status_code >= 300:
        rawhttp.status_body(got.headers.get("content-type", ""), got.content)


async def request_checked(rest: Rest, route: Route, path: str, data: bytes) -> None:
    """Send `data` to `route` and check the answer. A stream that starts is judged by its first message: a run's
    (RunJob) lasts until its job ends, which no worker here brings about."""
    async with rest.http.stream(route.http_method, path, content=data, headers=JSON_BODY) as got:
        if got.status_code == 200 and route.server_streaming:
            first = await anext(got.aiter_lines())
            assert set(json.loads(first)) == {"result"}, first
            return
        await got.aread()
        check(got)


def quiet(gateway_log: LogProblems, capfd: pytest.CaptureFixture[str]) -> None:
    assert gateway_log() == []
    stderr = capfd.readouterr().err
    assert not GRPC_CORE_ERROR.search(stderr), stderr


@given(
    route=st.sampled_from(BODY_ROUTES),
    segment=SEGMENT,
    body=st.one_of(
        st.sampled_from(BODY_ROUTES).flatmap(lambda r: message_strategy(r.method.input_type)).map(json.dumps),
        JSON.map(json.dumps),
        st.binary(max_size=60).map(lambda data: data.decode("latin-1")),
    ),
)
@FUZZ
async def test_bodies(
    rest: Rest, gateway_log: LogProblems, capfd: pytest.CaptureFixture[str], route: Route, segment: str, body: str
) -> None:
    data = body.encode("utf-8", "surrogatepass")
    await request_checked(rest, route, path_for(route, segment), data)
    quiet(gateway_log, capfd)


@given(
    route=st.sampled_from(BODY_ROUTES),
    body=st.data(),
)
@FUZZ
async def test_bodies_shaped_like_the_request(
    rest: Rest, gateway_log: LogProblems, capfd: pytest.CaptureFixture[str], route: Route, body: st.DataObject
) -> None:
    value = body.draw(message_strategy(route.method.input_type))
    data = json.dumps(value).encode()
    await request_checked(rest, route, path_for(route, "some-id"), data)
    quiet(gateway_log, capfd)


@cache
def field_paths(descriptor: Descriptor, depth: int = 0) -> tuple[tuple[tuple[str, ...], FieldDescriptor], ...]:
    """Every field a request body can reach (JSON names), a few messages deep."""
    paths: list[tuple[tuple[str, ...], FieldDescriptor]] = []
    for field in descriptor.fields:
        paths.append(((field.json_name,), field))
        message = field.message_type
        if message is None or message.GetOptions().map_entry or message.full_name.startswith("google.protobuf."):
            continue
        if depth < 3:
            paths += [((field.json_name, *below), leaf) for below, leaf in field_paths(message, depth + 1)]
    return tuple(paths)


HOSTILE = st.one_of(
    SURROGATES,
    NUMBERS,
    st.none(),
    st.booleans(),
    TEXT,
    st.sampled_from([[], {}, [None], {"\ud800": 1}, "NOPE", "x" * 5000, "1", "-1"]),
    TIMES,
    DURATIONS,
)


@given(route=st.sampled_from(BODY_ROUTES), data=st.data())
@FUZZ
async def test_a_hostile_value_at_any_field(
    rest: Rest, gateway_log: LogProblems, capfd: pytest.CaptureFixture[str], route: Route, data: st.DataObject
) -> None:
    path, field = data.draw(st.sampled_from(field_paths(route.method.input_type)))
    value = data.draw(st.one_of(HOSTILE, value_strategy(field, 0)))
    if field.is_repeated and data.draw(st.booleans()):
        value = [value]
    body: Any = value
    for name in reversed(path):
        body = {name: body}
    if route.body not in ("", "*"):
        body = body.get(route.body, {})
    payload = json.dumps(body).encode()
    await request_checked(rest, route, path_for(route, "some-id"), payload)
    quiet(gateway_log, capfd)


HEADER_VALUE = st.binary(max_size=40).map(lambda data: data.replace(b"\r", b"").replace(b"\n", b"").replace(b"\0", b""))
HEADER_NAMES = st.one_of(
    st.sampled_from(
        [
            "Grpc-Timeout",
            "Last-Event-ID",
            "Content-Type",
            "Accept",
            "Authorization",
            "Expect",
            "X-Forwarded-For",
            "X-Forwarded-Host",
            "User-Agent",
            "Cookie",
            "Content-Encoding",
            "Transfer-Encoding",
            "Grpc-Metadata-Trace-Bin",
            "Grpc-Metadata-Grpc-Status",
            "Grpc-Metadata-Content-Type",
            "Origin",
            "Sec-Fetch-Site",
        ]
    ),
    st.from_regex(r"Grpc-Metadata-[A-Za-z0-9._-]{1,12}", fullmatch=True),
)
HEADER_VALUES = st.one_of(
    HEADER_VALUE,
    st.sampled_from([b"30S", b"0S", b"-5S", b"99999999H", b"1n", b"text/event-stream", b"application/json", b"gzip"]),
    st.sampled_from([b"https://evil.example", b"http://[::1", b"null", b"cross-site", b"same-origin"]),
    st.integers(-(1 << 70), 1 << 70).map(lambda number: str(number).encode()),
)


@given(
    route=st.sampled_from(ROUTES),
    headers=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=5),
)
@FUZZ
async def test_headers(
    raw_shim: str,
    gateway_log: LogProblems,
    capfd: pytest.CaptureFixture[str],
    route: Route,
    headers: list[tuple[str, bytes]],
) -> None:
    # Over a plain socket: HTTP clients refuse to send much of this (a tab at the end of a value, say).
    body = b'{"spec": {"summarizeText": {"text": "hello"}}}' if route.body else b""
    lines = [
        f"{route.http_method} {path_for(route, 'some-id')} HTTP/1.1".encode(),
        b"Host: localhost",
        b"Connection: close",
        # Unless a fuzzed Content-Type comes as well (two of them are refused, as a non-JSON one is).
        *([b"Content-Type: application/json"] if route.body else []),
        *(name.encode() + b": " + value for name, value in headers),
        b"Content-Length: %d" % len(body),
    ]
    answer = await send(raw_shim, b"\r\n".join(lines) + b"\r\n\r\n" + body)
    assert answer is not None, headers
    check_answer(answer, deadline=any(name == "Grpc-Timeout" for name, _ in headers))
    quiet(gateway_log, capfd)


QUERY_KEY = st.one_of(
    st.sampled_from(
        ["states", "kind", "labels", "parentId", "parent_id", "pageSize", "page_size", "pageToken", "format", "jobId"]
    ),
    st.sampled_from(["labels[a]", "labels[]", "states.x", "a.b.c", "", "page_size.value"]),
    st.text(max_size=8),
)
QUERY_VALUE = st.one_of(
    st.sampled_from(["JOB_STATE_FAILED", "5", "-1", "99999999999999999999", "true", "DOCUMENT_FORMAT_HTML", "1e5"]),
    st.text(max_size=10),
    st.binary(max_size=6).map(lambda data: data.decode("latin-1")),
)


@given(
    route=st.sampled_from(QUERY_ROUTES),
    query=st.lists(st.tuples(QUERY_KEY, QUERY_VALUE), max_size=4),
    raw=st.sampled_from(["", "&", "=", "%", "%ff=%fe", "a=%zz", "&&=&", "states=%00"]),
)
@FUZZ
async def test_query_strings(
    rest: Rest,
    gateway_log: LogProblems,
    capfd: pytest.CaptureFixture[str],
    route: Route,
    query: list[tuple[str, str]],
    raw: str,
) -> None:
    encoded = "&".join(
        quote(key.encode("utf-8", "surrogatepass"), safe="[]") + "=" + quote(value.encode("utf-8", "surrogatepass"))
        for key, value in query
    )
    target = f"{path_for(route, 'some-id')}?{encoded}{'&' if encoded and raw else ''}{raw}"
    check(await rest.http.request(route.http_method, target))
    quiet(gateway_log, capfd)


@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "SEARCH", "BREW"]),
    path=st.lists(SEGMENT, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts)),
    prefix=st.sampled_from(["", "/v1", "/v1/jobs", "/v1/courses", "/v1/admin/deadletters", "/"]),
    suffix=st.sampled_from(["", ":watch", ":cancel", ":retry", ":", "/document", "/", "?pageSize=1"]),
)
@FUZZ
async def test_paths_and_methods(
    raw_shim: str,
    gateway_log: LogProblems,
    capfd: pytest.CaptureFixture[str],
    method: str,
    path: str,
    prefix: str,
    suffix: str,
) -> None:
    # Over a plain socket, so the request target arrives exactly as generated.
    target = (prefix + path + suffix).encode()
    request = b"%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    answer = await send(raw_shim, request % (method.encode(), target))
    assert answer is not None, target
    check_answer(answer)
    quiet(gateway_log, capfd)


@pytest_asyncio.fixture
async def raw_shim(rest: Rest) -> AsyncIterator[str]:
    """A shim with short read timeouts, so a request left incomplete on purpose is closed quickly."""
    gateway = RestGateway(services_named(SERVICE_NAMES), rest.grpc_target, header_timeout=0.3, body_timeout=0.3)
    try:
        yield "http://" + await gateway.start("127.0.0.1:0")
    finally:
        await gateway.stop()


REQUEST_LINE = st.one_of(
    st.tuples(
        st.sampled_from([b"GET", b"POST", b"get", b"G\x00T", b"", b"PRI", b"\x16\x03\x01"]),
        st.sampled_from([b"/v1/jobs", b"/v1/jobs/x", b"*", b"http://x/v1/jobs", b"/%zz", b"", b"/a b", b"/\xff"]),
        st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1x", b"", b"http/1.1"]),
    ).map(b" ".join),
    st.binary(max_size=30),
)
HEADER_LINE = st.one_of(
    st.sampled_from(
        [
            b"Host: localhost",
            b"Host: evil.example",
            b"Content-Type: application/json",
            b"Content-Type: text/plain",
            b"Origin: https://evil.example",
            b"Content-Length: 5",
            b"Content-Length: -1",
            b"Content-Length: 99999999999999999999",
            b"Transfer-Encoding: chunked",
            b"Transfer-Encoding: gzip, chunked",
            b"Content-Encoding: gzip",
            b"Expect: 100-continue",
            b"Connection: upgrade",
            b"Upgrade: websocket",
            b" folded: line",
            b"NoColon",
            b": empty name",
            b"X-Long: " + b"y" * 9000,
        ]
    ),
    st.binary(max_size=20),
)
BODY = st.one_of(
    st.sampled_from([b"", b"{}", b'5\r\n{"a":\r\n0\r\n\r\n', b"ZZ\r\nabc\r\n0\r\n\r\n", b"\x1f\x8b\x08garbage"]),
    st.binary(max_size=30),
)


@given(
    line=REQUEST_LINE,
    header_lines=st.lists(HEADER_LINE, max_size=6),
    many=st.sampled_from([0, 0, 0, 200]),
    body=BODY,
    close=st.booleans(),
)
@settings(FUZZ, max_examples=120)
async def test_raw_http_garbage(
    raw_shim: str,
    gateway_log: LogProblems,
    line: bytes,
    header_lines: list[bytes],
    many: int,
    body: bytes,
    close: bool,
) -> None:
    lines = [line, *header_lines, *(b"X-%d: y" % i for i in range(many))]
    if close:
        lines.append(b"Connection: close")
    answer = await send(raw_shim, b"\r\n".join(lines) + b"\r\n\r\n" + body)
    # No answer is right for a request left incomplete: the header or body timeout closed it.
    if answer is not None:
        check_answer(answer)
    assert gateway_log() == []


async def send(url: str, request: bytes) -> rawhttp.Answer | None:
    reader, writer = await rawhttp.connect(url)
    try:
        writer.write(request)
        # Far longer than the shim's read timeouts: a hang, not a slow answer, ends here.
        return await asyncio.wait_for(first_answer(reader), 10)
    finally:
        writer.close()


def check_answer(answer: rawhttp.Answer, *, deadline: bool = False) -> None:
    """No 5xx (but for DEADLINE_EXCEEDED when the client set a deadline of its own), a Status unless a success."""
    if answer.status >= 300:
        status = rawhttp.status_body(answer.headers.get("content-type", ""), answer.body)
        if deadline and (answer.status, status["code"]) == (504, 4):
            return
    assert answer.status < 500, answer


async def first_answer(reader: asyncio.StreamReader) -> rawhttp.Answer | None:
    """The first complete answer (1xx left out), or None if the server closed (or reset) without one."""
    received = b""
    while True:
        try:
            chunk = await reader.read(65536)
        except ConnectionResetError:
            # The server closed while bytes we sent were still unread: the kernel then resets the connection
            # instead of closing it, and drops what the server had not yet sent. A close with no answer, too.
            chunk = b""
        if not chunk:
            answers = rawhttp.parse(received) if b"\r\n\r\n" in received else []
            return answers[0] if answers else None
        received += chunk
        head, separator, rest = received.partition(b"\r\n\r\n")
        while separator and head.split(b" ", 2)[1:2] and head.split(b" ", 2)[1].startswith(b"1"):
            received = rest
            head, separator, rest = received.partition(b"\r\n\r\n")
        if separator:
            length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
            if length and len(rest) >= int(length.group(1)):
                return rawhttp.parse(head + separator + rest[: int(length.group(1))])[0]
            first = _first_chunk(rest) if re.search(rb"(?im)^transfer-encoding:\s*chunked", head) else None
            if first is not None:
                # A stream's answer (a server-streaming RPC): its first message is enough to judge it by.
                return rawhttp.parse(head + separator + b"%x\r\n%s\r\n0\r\n\r\n" % (len(first), first))[0]


def _first_chunk(body: bytes) -> bytes | None:
    """The data of a chunked body's first chunk, or None until it has all come."""
    size_line, separator, rest = body.partition(b"\r\n")
    if not separator:
        return None
    size = int(size_line.split(b";")[0], 16)
    return rest[:size] if len(rest) >= size + 2 else None
