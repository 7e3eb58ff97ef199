"""Gemini through google-genai's async client, with structured output (a JSON response schema).

The SDK's own retries are off: a failed call becomes a job retry with our backoff (and the provider's
Retry-After), which the worker runtime records and the circuit breaker counts.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from generator.providers.base import ModelReply, ModelRequest
from generator.providers.errors import (
    ProviderError,
    connection_error,
    error_for_status,
    parse_retry_after,
    retry_info_delay,
    timeout_error,
)

NAME = "gemini"


class GeminiProvider:
    name = NAME
    billed = True

    def __init__(self, *, api_key: str, model: str, base_url: str = "", timeout: float = 120.0) -> None:
        self.model = model
        self._timeout = timeout
        # Our own httpx client: the SDK would pick aiohttp when it is installed, and then its failures would
        # arrive as different exceptions.
        self._http = httpx.AsyncClient(timeout=timeout)
        self._client = genai.Client(
            api_key=api_key,
            http_options=types.HttpOptions(
                base_url=base_url or None,
                timeout=int(timeout * 1000),
                retry_options=types.HttpRetryOptions(attempts=1),
                httpx_async_client=self._http,
            ),
        )

    async def generate(self, request: ModelRequest) -> ModelReply:
        config = types.GenerateContentConfig(
            system_instruction=request.system,
            response_mime_type="application/json",
            response_json_schema=request.schema,
            temperature=request.temperature,
            max_output_tokens=request.max_output_tokens,
        )
        try:
            # The SDK's timeout covers the HTTP exchange; this one also covers everything around it.
            async with asyncio.timeout(self._timeout + 5):
                response = await self._client.aio.models.generate_content(
                    model=self.model, contents=request.prompt, config=config
                )
        except genai_errors.APIError as exc:
            raise _api_error(exc) from exc
        except (TimeoutError, httpx.TimeoutException) as exc:
            raise timeout_error(NAME, self._timeout) from exc
        except httpx.TransportError as exc:
            raise connection_error(NAME, exc) from exc
        return _reply(response)

    async def aclose(self) -> None:
        await self._client.aio.aclose()
        await self._http.aclose()


def _api_error(exc: genai_errors.APIError) -> ProviderError:
    headers: Any = getattr(exc.response, "headers", None) or {}
    retry_after = parse_retry_after(headers.get("retry-after")) or retry_info_delay(exc.details)
    return error_for_status(NAME, int(exc.code or 0), str(exc.message or exc.status or exc), retry_after)


def _reply(response: types.GenerateContentResponse) -> ModelReply:
    feedback = response.prompt_feedback
    if feedback is not None and feedback.block_reason is not None:
        raise ProviderError(
            f"gemini blocked the request ({feedback.block_reason})", error_type="ProviderRejected", retryable=False
        )
    candidate = response.candidates[0] if response.candidates else None
    finish = candidate.finish_reason if candidate is not None else None
    parts = candidate.content.parts if candidate is not None and candidate.content is not None else None
    # Thought parts are the model's reasoning, not the answer.
    text = "".join(part.text for part in parts or () if part.text and not part.thought)
    usage = response.usage_metadata
    return ModelReply(
        text=text,
        input_tokens=(usage.prompt_token_count or 0) if usage else 0,
        # Thinking tokens are billed as output.
        output_tokens=((usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)) if usage else 0,
        truncated=finish == types.FinishReason.MAX_TOKENS,
    )
