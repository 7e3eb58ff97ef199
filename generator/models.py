"""One model call as a job needs it: the cache first, the circuit breaker, the call, validation with one repair
attempt, and every failure turned into the job error that the worker runtime knows how to retry (or not).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Generic, TypeVar

from generator.providers.base import ModelReply, ModelRequest, Provider
from generator.providers.breaker import Breaker
from generator.providers.cache import ReplyCache, cache_key
from generator.providers.errors import ProviderError
from generator.providers.prices import estimate_cost
from generator.providers.registry import Registry
from generator.shapes import InvalidOutput
from generator.tasks import Task, parse_reply, repair_prompt
from syllabus.metrics import models as metrics
from syllabus.v1 import course_pb2, job_pb2
from syllabus.worker import Defer, PermanentError, RetryableError

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Answer(Generic[T]):
    value: T
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    estimated_cost_usd: float
    offline: bool
    # The reply's text, as the model wrote it (quoted back to it in a repair request).
    text: str = ""
    # Served from the cache: nothing was billed for it.
    cached: bool = False

    def usage(self) -> job_pb2.Usage:
        return job_pb2.Usage(
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            estimated_cost_usd=self.estimated_cost_usd,
        )

    def cost_item(self, job: job_pb2.Job) -> course_pb2.CostItem:
        return course_pb2.CostItem(
            job_id=job.id,
            kind=job.kind,
            provider=self.provider,
            model=self.model,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            estimated_cost_usd=self.estimated_cost_usd,
        )


class Models:
    def __init__(self, registry: Registry, *, cache: ReplyCache | None, breaker: Breaker) -> None:
        self._registry = registry
        self._cache = cache
        self._breaker = breaker

    async def run(self, task: Task[T], selection: job_pb2.ModelSelection, *, prompt: str = "") -> Answer[T]:
        """`prompt` replaces the task's own (a repair request asks for the same answer with more said)."""
        provider = self._registry.get(selection)
        request = ModelRequest(task=task, system=task.system(), prompt=prompt or task.prompt(), schema=task.schema())
        key = cache_key(provider.name, provider.model, request) if provider.billed and self._cache else ""
        if key and self._cache is not None and (hit := await self._cache.get(key)) is not None:
            try:
                return self._answer(provider, parse_reply(task, hit.text), [], hit.text, cached=True)
            except InvalidOutput:
                log.warning("ignoring a cached answer that no longer validates (%s)", key)
        first = await self._call(provider, request)
        try:
            value = self._parse(task, first)
            good = first
        except InvalidOutput as problem:
            log.info(
                "%s/%s: %s answer unusable (%s); asking once more", provider.name, provider.model, task.kind, problem
            )
            second = await self._call(provider, replace(request, prompt=repair_prompt(task, first.text, str(problem))))
            try:
                value = self._parse(task, second)
            except InvalidOutput as again:
                raise RetryableError(
                    f"{provider.name}/{provider.model} gave an unusable {task.kind} twice: {again}",
                    error_type="InvalidModelOutput",
                ) from again
            good = second
            first_cost = [first]
        else:
            first_cost = []
        if key and self._cache is not None:
            await self._cache.put(key, good)
        return self._answer(provider, value, [*first_cost, good], good.text, cached=False)

    def _parse(self, task: Task[T], reply: ModelReply) -> T:
        if reply.truncated:
            raise InvalidOutput("the answer was cut off at the output limit; make it shorter")
        return parse_reply(task, reply.text)

    def _answer(self, provider: Provider, value: T, replies: list[ModelReply], text: str, *, cached: bool) -> Answer[T]:
        input_tokens = sum(reply.input_tokens for reply in replies)
        output_tokens = sum(reply.output_tokens for reply in replies)
        return Answer(
            value=value,
            provider=provider.name,
            model=provider.model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            estimated_cost_usd=estimate_cost(provider.model, input_tokens, output_tokens) if provider.billed else 0.0,
            offline=not provider.billed,
            text=text,
            cached=cached,
        )

    async def _call(self, provider: Provider, request: ModelRequest) -> ModelReply:
        if provider.billed:
            wait = await self._breaker.wait_time(provider.name)
            metrics.breaker_waited(provider.name, wait)
            if wait > 0:
                raise Defer(wait, f"{provider.name} keeps failing; its circuit breaker is open for {wait:.1f}s more")
        calls = metrics.model_calls(provider.name, provider.model)
        try:
            reply = await provider.generate(request)
        except ProviderError as exc:
            calls.failed(exc.retryable)
            if exc.retryable:
                if provider.billed:
                    await self._breaker.failed(provider.name)
                    metrics.breaker_failed(provider.name)
                raise RetryableError(str(exc), error_type=exc.error_type, retry_after=exc.retry_after) from exc
            raise PermanentError(str(exc), error_type=exc.error_type) from exc
        cost = estimate_cost(provider.model, reply.input_tokens, reply.output_tokens) if provider.billed else 0.0
        calls.replied(reply.input_tokens, reply.output_tokens, cost)
        if provider.billed:
            await self._breaker.succeeded(provider.name)
            metrics.breaker_succeeded(provider.name)
        return reply
