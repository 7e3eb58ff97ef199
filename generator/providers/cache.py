"""Identical requests answered from Redis: same provider, model, prompt and parameters, no second bill.

Only answers that parsed and validated are stored, so a bad reply is never served twice.
"""

from __future__ import annotations

import hashlib
import json
import logging

from redis.asyncio import Redis
from redis.exceptions import RedisError

from generator.providers.base import ModelReply, ModelRequest
from syllabus import outages
from syllabus.metrics import models as metrics

log = logging.getLogger(__name__)
PREFIX = "syllabus:llm-cache:"


def cache_key(provider: str, model: str, request: ModelRequest) -> str:
    identity = {
        "provider": provider,
        "model": model,
        "system": request.system,
        "prompt": request.prompt,
        "schema": request.schema,
        "temperature": request.temperature,
        "max_output_tokens": request.max_output_tokens,
    }
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
    return PREFIX + digest


class ReplyCache:
    def __init__(self, redis: Redis, ttl: float) -> None:
        self._redis = redis
        self._ttl_ms = max(1, int(ttl * 1000))
        # One warning when Redis goes away and one line when it is back, not one per call.
        self._outages = outages.OutageLog(log)

    def _unavailable(self, exc: RedisError, consequence: str) -> None:
        if outages.unreachable(exc) is None:
            log.warning("LLM cache unavailable (%s); %s", exc, consequence)
        else:
            self._outages.down(outages.REDIS, exc, "the generator calls the model without its cache until it is back")

    async def get(self, key: str) -> ModelReply | None:
        try:
            raw = await self._redis.get(key)
        except RedisError as exc:
            # A cache that is down costs money, not correctness: carry on without it.
            self._unavailable(exc, "calling the model")
            metrics.cache_looked_up(False)
            return None
        self._outages.up(outages.REDIS)
        metrics.cache_looked_up(raw is not None)
        if raw is None:
            return None
        data = json.loads(raw)
        return ModelReply(text=data["text"], input_tokens=data["input_tokens"], output_tokens=data["output_tokens"])

    async def put(self, key: str, reply: ModelReply) -> None:
        value = json.dumps(
            {"text": reply.text, "input_tokens": reply.input_tokens, "output_tokens": reply.output_tokens}
        )
        try:
            await self._redis.set(key, value, px=self._ttl_ms)
        except RedisError as exc:
            self._unavailable(exc, "answer not cached")
