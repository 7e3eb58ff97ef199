"""HTTP/1.1 over a plain socket, for tests that send what no HTTP client would (or stop half-way), and the check
that an answer is a google.rpc.Status."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any
from urllib.parse import urlsplit


@dataclasses.dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


async def connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    where = urlsplit(url)
    assert where.hostname is not None and where.port is not None
    return await asyncio.open_connection(where.hostname, where.port)


async def exchange(url: str, data: bytes) -> tuple[list[Answer], bytes]:
    """Send data, read until the server closes: the answers in it (1xx left out) and the bytes. (Not a half-close
    after sending: aiohttp takes that for the client going away, and drops the request.)"""
    reader, writer = await connect(url)
    try:
        writer.write(data)
        await writer.drain()
        received = await reader.read()
    finally:
        writer.close()
    return parse(received), received


async def read_answer(reader: asyncio.StreamReader) -> Answer:
    """One answer with a Content-Length, without waiting for the connection to close."""
    head = await reader.readuntil(b"\r\n\r\n")
    [answer] = parse(head)
    return Answer(answer.status, answer.headers, await reader.readexactly(int(answer.headers["content-length"])))


def parse(data: bytes) -> list[Answer]:
    answers = []
    while data:
        head, separator, data = data.partition(b"\r\n\r\n")
        assert separator, f"an answer cut off in its headers: {head!r}"
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if 100 <= status < 200:
            continue
        if "content-length" in headers:
            length = int(headers["content-length"])
            body, data = data[:length], data[length:]
        elif headers.get("transfer-encoding") == "chunked":
            chunks = []
            while True:
                size_line, _, data = data.partition(b"\r\n")
                size = int(size_line.split(b";")[0], 16)
                chunk, data = data[:size], data[size + 2 :]
                if size == 0:
                    break
                chunks.append(chunk)
            body = b"".join(chunks)
        else:
            body, data = data, b""
        answers.append(Answer(status, headers, body))
    return answers


def status_body(content_type: str, body: bytes) -> dict[str, Any]:
    """The body is a google.rpc.Status as grpc-gateway writes it."""
    assert content_type.split(";")[0].strip() == "application/json", (content_type, body)
    value = json.loads(body)
    assert set(value) == {"code", "message", "details"}, value
    assert isinstance(value["code"], int) and 0 < value["code"] <= 16, value
    assert isinstance(value["message"], str) and value["message"], value
    assert isinstance(value["details"], list), value
    return dict(value)


def assert_status(status: int, content_type: str, body: bytes) -> dict[str, Any]:
    """A client error, answered with a google.rpc.Status."""
    assert 400 <= status < 500, (status, body)
    return status_body(content_type, body)


def assert_status_answer(answer: Answer) -> dict[str, Any]:
    return assert_status(answer.status, answer.headers.get("content-type", ""), answer.body)
