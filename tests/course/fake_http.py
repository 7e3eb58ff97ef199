"""Local HTTP servers that answer like the model APIs: Gemini's generateContent and OpenAI-style chat
completions and embeddings. The real clients (google-genai, httpx) talk to them over real sockets; each test
scripts the replies (including 429 with Retry-After, 500, malformed and schema-violating output) and reads what
was asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    # Never answer (the client's timeout is what ends the request).
    hang: bool = False


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class FakeHTTP:
    """A small HTTP/1.1 server (keep-alive, Content-Length bodies) on 127.0.0.1 and a free port."""

    def __init__(self, default: Callable[[Request], Reply]) -> None:
        self.requests: list[Request] = []
        self.script: deque[Reply | Callable[[Request], Reply]] = deque()
        self.default = default
        self._server: asyncio.Server | None = None
        self._never = asyncio.Event()
        self.url = ""

    async def start(self) -> FakeHTTP:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    def then(self, *replies: Reply | Callable[[Request], Reply]) -> None:
        """Answer the next requests with these, in order; the default answers after them."""
        self.script.extend(replies)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode().split(" ", 2)
                headers: dict[str, str] = {}
                while (header := await reader.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = header.decode().partition(":")
                    headers[name.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                request = Request(method, path, headers, json.loads(raw) if raw else None)
                self.requests.append(request)
                scripted = self.script.popleft() if self.script else self.default
                reply = scripted if isinstance(scripted, Reply) else scripted(request)
                if reply.hang:
                    await self._never.wait()
                body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                head = [f"HTTP/1.1 {reply.status} X", "Content-Type: application/json", f"Content-Length: {len(body)}"]
                head += [f"{name}: {value}" for name, value in reply.headers.items()]
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            writer.close()


# --- Gemini generateContent -------------------------------------------------------------------------------------


def gemini_text(text: str, *, input_tokens: int = 100, output_tokens: int = 50, finish: str = "STOP") -> Reply:
    return Reply(
        body={
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": finish, "index": 0}
            ],
            "usageMetadata": {
                "promptTokenCount": input_tokens,
                "candidatesTokenCount": output_tokens,
                "totalTokenCount": input_tokens + output_tokens,
            },
            "modelVersion": "gemini-2.5-flash",
        }
    )


def gemini_json(data: Any, **kwargs: Any) -> Reply:
    return gemini_text(json.dumps(data), **kwargs)


def gemini_error(status: int, message: str = "error", headers: dict[str, str] | None = None) -> Reply:
    names = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED"}
    return Reply(
        status=status,
        body={"error": {"code": status, "message": message, "status": names.get(status, "INTERNAL")}},
        headers=headers or {},
    )


def gemini_prompt(request: Request) -> str:
    """The user prompt a generateContent request carried."""
    return "".join(part.get("text", "") for content in request.body["contents"] for part in content["parts"])


# --- OpenAI chat completions ------------------------------------------------------------------------------------


def chat_text(text: str, *, input_tokens: int = 80, output_tokens: int = 40, finish: str = "stop") -> Reply:
    return Reply(
        body={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
            "usage": {
                "prompt_tokens": input_tokens,
                "completion_tokens": output_tokens,
                "total_tokens": input_tokens + output_tokens,
            },
        }
    )


def chat_json(data: Any, **kwargs: Any) -> Reply:
    return chat_text(json.dumps(data), **kwargs)


def chat_error(status: int, message: str = "error", headers: dict[str, str] | None = None) -> Reply:
    return Reply(status=status, body={"error": {"message": message, "type": "error"}}, headers=headers or {})


# --- OpenAI embeddings ------------------------------------------------------------------------------------------


def embeddings(vectors: list[list[float]]) -> Reply:
    return Reply(
        body={
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "model": "embed-1",
            "usage": {"prompt_tokens": 8 * len(vectors), "total_tokens": 8 * len(vectors)},
        }
    )
