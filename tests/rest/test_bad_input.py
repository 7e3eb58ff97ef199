"""Client mistakes get a 4xx google.rpc.Status naming what was wrong, and leave no traceback in the log: every
kind seen to go wrong before (a 500, a plain-text answer, a wrong code), one test each."""

from __future__ import annotations

from typing import Any

import pytest

from syllabus.store.base import JobQuery
from tests.pipeline.conftest import TENANT
from tests.rest import rawhttp
from tests.rest.conftest import LogProblems, Rest

SPEC = {"summarizeText": {"text": "hello"}}
JSON = {"Content-Type": "application/json"}


def violation(status: dict[str, Any]) -> str:
    [detail] = status["details"]
    assert detail["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    field: str = detail["fieldViolations"][0]["field"]
    return field


async def test_json_nested_deeper_than_python_can_parse(rest: Rest, gateway_log: LogProblems) -> None:
    body = b'{"spec": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    got = await rest.http.post("/v1/jobs", content=body, headers=JSON)
    status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    assert got.status_code == 400 and "nested too deeply" in status["message"]
    assert gateway_log() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"spec": {"summarizeText": {"text": "\\ud800"}}}', "spec.summarize_text.text"),
        (b'{"spec": {"summarizeText": {"text": "x"}}, "options": {"labels": {"\\udfff": "x"}}}', "options.labels"),
        (b'{"spec": {"summarizeText": {"text": "x"}}, "\\ud83d": 1}', "\\ud83d"),
        (b'{"spec": {"summarizeText": {"text": "x"}}, "options": {"priority": "\\udc80"}}', "options.priority"),
    ],
)
async def test_lone_surrogates_in_json(rest: Rest, gateway_log: LogProblems, body: bytes, field: str) -> None:
    got = await rest.http.post("/v1/jobs", content=body, headers=JSON)
    status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    assert got.status_code == 400 and violation(status).startswith(field)
    assert gateway_log() == []


@pytest.mark.parametrize("value", [b"\xff\xfe", b"caf\xc3\xa9", b"tab\there"])
async def test_grpc_metadata_that_grpc_cannot_carry(rest: Rest, gateway_log: LogProblems, value: bytes) -> None:
    request = (
        b"GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nGrpc-Metadata-Trace: " + value + b"\r\n\r\n"
    )
    [answer], _ = await rawhttp.exchange(rest.url, request)
    status = rawhttp.assert_status_answer(answer)
    assert answer.status == 400 and "Grpc-Metadata-Trace" in status["message"]
    assert gateway_log() == []


async def test_other_headers_grpc_cannot_carry_are_left_out(rest: Rest, gateway_log: LogProblems) -> None:
    # User-Agent travels only for information (grpcgateway-user-agent): the request goes on without it.
    request = b"GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nUser-Agent: caf\xc3\xa9\r\nConnection: close\r\n\r\n"
    [answer], _ = await rawhttp.exchange(rest.url, request)
    assert answer.status == 200
    assert "grpcgateway-user-agent" not in rest.metadata.last("ListJobs")
    assert gateway_log() == []


async def test_headers_too_large_for_grpc_metadata(rest: Rest, gateway_log: LogProblems) -> None:
    many: dict[str, str] = {f"Grpc-Metadata-X{i}": "v" * 4000 for i in range(10)}
    got = await rest.http.get("/v1/jobs", headers=many)
    status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    assert got.status_code == 431 and "32768" in status["message"]
    assert gateway_log() == []


@pytest.mark.parametrize("value", [b"9" * 40, b"18446744073709551616", b"-1", "²".encode(), b"12abc", b""])
async def test_absurd_last_event_id(rest: Rest, gateway_log: LogProblems, value: bytes) -> None:
    sent = {b"Accept": b"text/event-stream", b"Last-Event-ID": value}
    got = await rest.http.get("/v1/jobs/some-job:watch", headers=sent)
    status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    assert got.status_code == 400 and violation(status) == "after_sequence"
    assert gateway_log() == []


async def test_the_largest_last_event_id_is_still_a_sequence(rest: Rest, gateway_log: LogProblems) -> None:
    # 2^64 - 1 fits after_sequence (uint64): the watch runs, and the unknown job is what it finds.
    got = await rest.http.get("/v1/jobs/no-such-job:watch", headers={"Last-Event-ID": str((1 << 64) - 1)})
    assert got.status_code == 404
    assert gateway_log() == []


async def test_message_over_the_grpc_limit_is_413_naming_it(rest: Rest, gateway_log: LogProblems) -> None:
    got = await rest.http.post("/v1/jobs", json={"spec": {"summarizeText": {"text": "x" * (5 << 20)}}})
    status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    assert got.status_code == 413 and status["code"] == 3 and "4194304" in status["message"]
    assert gateway_log() == []


async def test_body_over_the_shims_limit_is_413_before_it_is_read(rest: Rest, gateway_log: LogProblems) -> None:
    reader, writer = await rawhttp.connect(rest.url)
    try:
        head = b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        writer.write(head % (17 << 20) + b"\r\n{")
        answer = await rawhttp.read_answer(reader)
    finally:
        writer.close()
    status = rawhttp.assert_status_answer(answer)
    assert answer.status == 413 and "16777216" in status["message"]
    assert answer.headers["connection"] == "close"
    assert gateway_log() == []


@pytest.mark.parametrize("value", ["-5S", "+1S", "1.5S", "123456789S", "5s", "S"])
async def test_bad_grpc_timeout_is_400_not_504(rest: Rest, gateway_log: LogProblems, value: str) -> None:
    got = await rest.http.post("/v1/jobs", json={"spec": SPEC}, headers={"Grpc-Timeout": value})
    status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    assert got.status_code == 400 and status["message"].startswith(f"invalid grpc-timeout: {value} ")
    assert gateway_log() == []


async def test_unsupported_expectation_is_417(rest: Rest, gateway_log: LogProblems) -> None:
    got = await rest.http.post("/v1/jobs", json={"spec": SPEC}, headers={"Expect": "teapot"})
    status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    assert got.status_code == 417 and "teapot" in status["message"]
    assert gateway_log() == []


async def test_expect_100_continue_is_answered_before_the_body(rest: Rest, gateway_log: LogProblems) -> None:
    body = b'{"spec": {"summarizeText": {"text": "hello"}}}'
    head = (
        b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nExpect: 100-continue\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body)
    )
    reader, writer = await rawhttp.connect(rest.url)
    try:
        writer.write(head)
        # The client waits for this before it sends the body.
        assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(body)
        [answer] = rawhttp.parse(await reader.read())
    finally:
        writer.close()
    assert answer.status == 200 and answer.json()["job"]["state"] == "JOB_STATE_QUEUED"
    assert gateway_log() == []


@pytest.mark.parametrize(
    ("request_bytes", "http", "words"),
    [
        (b"GARBAGE\r\n\r\n", 400, "Invalid method"),
        (b"GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\n\r\n", 400, "Invalid header"),
        (b"GET /v1/jobs HTTP/1.1\r\n\r\n", 400, "Host"),
        (b"GET /v1/jobs HTTP/9.9\r\nHost: localhost\r\n\r\n", 400, "malformed HTTP request"),
        (
            b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\nabc\r\n0\r\n\r\n",
            400,
            "chunk",
        ),
        (
            b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
            400,
            "Content-Length",
        ),
        (
            b"GET /v1/jobs HTTP/1.1\r\nHost: gateway\r\n" + b"".join(b"X-%d: y\r\n" % i for i in range(200)) + b"\r\n",
            431,
            "Too many headers",
        ),
        (b"GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nX-Long: " + b"y" * 10_000 + b"\r\n\r\n", 431, "8190"),
        (b"GET /" + b"a" * 10_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", 431, "8190"),
        (b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 400, "malformed HTTP request"),
    ],
)
async def test_what_the_http_parser_refuses(
    rest: Rest, gateway_log: LogProblems, request_bytes: bytes, http: int, words: str
) -> None:
    answers, _ = await rawhttp.exchange(rest.url, request_bytes)
    status = rawhttp.assert_status_answer(answers[-1])
    assert answers[-1].status == http and words in status["message"]
    assert gateway_log() == []


async def test_an_error_answer_survives_the_input_left_unread(rest: Rest, gateway_log: LogProblems) -> None:
    # The 400 goes out as soon as the bad header is parsed, while the client is still sending its body. Had the
    # server closed then, with that body unread, the kernel would reset the connection and the reset would
    # discard the answer before the client read it.
    body = b"x" * 4_000_000
    head = b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nBad Header: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    reader, writer = await rawhttp.connect(rest.url)
    try:
        writer.write(head)
        writer.write(body)
        received = await reader.read()
        # The server only half-closed: the client can still send, and it is the client that ends the connection.
        await writer.drain()
        assert not writer.is_closing()
    finally:
        writer.close()
    [answer] = rawhttp.parse(received)
    assert answer.status == 400 and "Invalid header" in rawhttp.assert_status_answer(answer)["message"]
    assert gateway_log() == []


async def test_a_bad_chunk_after_the_headers_arrived(rest: Rest, gateway_log: LogProblems) -> None:
    reader, writer = await rawhttp.connect(rest.url)
    try:
        writer.write(
            b"POST /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
            b'Transfer-Encoding: chunked\r\n\r\n5\r\n{"sp\r\n'
        )
        await writer.drain()
        writer.write(b"zz\r\n")
        answers = rawhttp.parse(await reader.read())
    finally:
        writer.close()
    status = rawhttp.assert_status_answer(answers[-1])
    assert answers[-1].status == 400 and status["code"] == 3
    assert gateway_log() == []


async def test_a_body_found_malformed_only_after_the_answer(rest: Rest, gateway_log: LogProblems) -> None:
    # ListJobs takes no body, so it is answered first; aiohttp then reads the body to drop it, and finds it is
    # not the gzip it claims to be.
    body = b"not gzip at all"
    head = (
        b"GET /v1/jobs HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Encoding: gzip\r\n"
        b"Content-Length: %d\r\n\r\n"
    )
    [answer], _ = await rawhttp.exchange(rest.url, head % len(body) + body)
    assert answer.status == 200
    assert gateway_log() == []


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"spec": SPEC, "options": {"priority": "PRIORITY_NOPE"}}, "options.priority", "'PRIORITY_NOPE' is not"),
        ({"spec": SPEC, "options": {"priority": 7}}, "options.priority", "7 is not a value of syllabus.v1.Priority"),
        ({"spec": {"renderDocument": {"courseId": "c", "formats": ["NOPE"]}}}, "spec.render_document.formats[0]", ""),
        ({"spec": SPEC, "optoins": {"priority": "PRIORITY_BATCH"}}, "optoins", "did you mean options?"),
        ({"spec": {"summarizeText": {"text": "x", "maxWrods": 3}}}, "spec.summarize_text.maxWrods", "maxWords"),
        ({"spec": SPEC, "options": {"runAt": "0001-01-01T00:00:00Z"}}, "options.run_at", "within 10 years"),
        ({"spec": SPEC, "options": {"runAt": "9999-12-31T23:59:59Z"}}, "options.run_at", "within 10 years"),
    ],
)
async def test_strict_input_names_the_field(
    rest: Rest, gateway_log: LogProblems, body: dict[str, Any], field: str, words: str
) -> None:
    got = await rest.http.post("/v1/jobs", json=body)
    status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    assert got.status_code == 400 and violation(status) == field and words in status["message"]
    # Nothing was submitted in the caller's name that the caller did not mean.
    assert (await rest.pipeline.store.list_jobs(JobQuery(tenant=TENANT))).jobs == []
    assert gateway_log() == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("states=JOB_STATE_NOPE", "states"),
        ("states=99", "states"),
        ("stat=JOB_STATE_FAILED", "stat"),
        ("pageSize=10&_=1700000000", "_"),
    ],
)
async def test_strict_query_parameters(rest: Rest, gateway_log: LogProblems, query: str, field: str) -> None:
    got = await rest.http.get(f"/v1/jobs?{query}")
    status = rawhttp.assert_status(got.status_code, got.headers["content-type"], got.content)
    assert got.status_code == 400 and violation(status) == field
    assert gateway_log() == []
