"""Any OpenAI-compatible chat-completions endpoint (OpenAI, Ollama, vLLM, llama.cpp server) through httpx.

JSON mode (`response_format: json_object`) is the part of structured output these servers share; the schema
goes into the system prompt, and our own validation checks the answer against it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from generator.providers.base import ModelReply, ModelRequest
from generator.providers.errors import (
    ProviderError,
    connection_error,
    error_for_status,
    parse_retry_after,
    timeout_error,
)

NAME = "openai"


def completions_url(base_url: str) -> str:
    """`http://host:11434` and `http://host:11434/v1` both mean `http://host:11434/v1/chat/completions`."""
    base = base_url.rstrip("/")
    return f"{base}/chat/completions" if base.endswith("/v1") else f"{base}/v1/chat/completions"


class OpenAICompatibleProvider:
    name = NAME
    billed = True

    def __init__(self, *, base_url: str, model: str, api_key: str = "", timeout: float = 120.0) -> None:
        self.model = model
        self._url = completions_url(base_url)
        self._timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout, headers=headers)

    async def generate(self, request: ModelRequest) -> ModelReply:
        system = (
            f"{request.system}\nThe JSON schema of the answer:\n{json.dumps(request.schema, separators=(',', ':'))}"
        )
        body = {
            "model": self.model,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": request.prompt}],
            "temperature": request.temperature,
            "max_tokens": request.max_output_tokens,
            "response_format": {"type": "json_object"},
        }
        try:
            response = await self._client.post(self._url, json=body)
        except httpx.TimeoutException as exc:
            raise timeout_error(NAME, self._timeout) from exc
        except httpx.TransportError as exc:
            raise connection_error(NAME, exc) from exc
        if response.status_code != 200:
            raise error_for_status(
                NAME,
                response.status_code,
                _error_text(response),
                parse_retry_after(response.headers.get("retry-after")),
            )
        return _reply(response)

    async def aclose(self) -> None:
        await self._client.aclose()


def _error_text(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text or response.reason_phrase
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(error or body)


def _reply(response: httpx.Response) -> ModelReply:
    try:
        body: Any = response.json()
        choice = body["choices"][0]
        content = choice["message"].get("content") or ""
        usage = body.get("usage") or {}
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        # The server's envelope is broken (not the model's answer): the server is misbehaving, try again later.
        raise ProviderError(
            f"openai-compatible server sent an unreadable response: {type(exc).__name__}: {exc}",
            error_type="ProviderUnavailable",
            retryable=True,
        ) from exc
    return ModelReply(
        text=str(content),
        input_tokens=int(usage.get("prompt_tokens") or 0),
        output_tokens=int(usage.get("completion_tokens") or 0),
        truncated=choice.get("finish_reason") == "length",
    )
