"""The generator's model metrics, moved by real calls to a fake model API over HTTP: requests by outcome, tokens,
estimated cost, the LLM cache (in the session's Valkey) and the breaker state as this process saw it."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, generate_latest
from redis.asyncio import Redis

from generator.providers.breaker import LocalBreaker
from generator.providers.cache import ReplyCache
from generator.providers.prices import estimate_cost
from syllabus.worker import Defer, PermanentError, RetryableError
from tests.course.fake_http import FakeHTTP, gemini_error, gemini_json
from tests.course.test_providers import ANY, gemini, outline, outline_task
from tests.metrics.scrape import Page

MODEL = {"provider": "gemini", "model": "gemini-2.5-flash"}


def page() -> Page:
    return Page(generate_latest(REGISTRY).decode())


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_calls_tokens_and_cost_are_counted_by_provider_model_and_outcome(fake_api: FakeHTTP) -> None:
    before = page()
    fake_api.then(
        gemini_json(outline(), input_tokens=1000, output_tokens=500),
        gemini_error(503, "overloaded"),
        gemini_error(400, "bad request"),
    )
    async with gemini(fake_api.url) as models:
        await models.run(outline_task(), ANY)
        with pytest.raises(RetryableError):
            await models.run(outline_task(), ANY)
        with pytest.raises(PermanentError):
            await models.run(outline_task(), ANY)
    after = page()
    requests = "syllabus_model_requests_total"
    assert after.moved(before, requests, **MODEL, outcome="ok") == 1
    assert after.moved(before, requests, **MODEL, outcome="error") == 1
    assert after.moved(before, requests, **MODEL, outcome="refused") == 1
    assert after.moved(before, "syllabus_model_tokens_total", **MODEL, direction="input") == 1000
    assert after.moved(before, "syllabus_model_tokens_total", **MODEL, direction="output") == 500
    cost = after.moved(before, "syllabus_model_cost_usd_total", **MODEL)
    assert cost == pytest.approx(estimate_cost("gemini-2.5-flash", 1000, 500))


async def test_cache_hits_and_misses(fake_api: FakeHTTP, redis: Redis) -> None:
    before = page()
    task = outline_task()
    fake_api.then(gemini_json(outline()))
    async with gemini(fake_api.url, cache=ReplyCache(redis, 60)) as models:
        await models.run(task, ANY)
        await models.run(task, ANY)  # the same request: from the cache
    after = page()
    assert after.moved(before, "syllabus_model_cache_misses_total") == 1
    assert after.moved(before, "syllabus_model_cache_hits_total") == 1
    assert len(fake_api.requests) == 1


async def test_breaker_state_follows_what_the_calls_meet(fake_api: FakeHTTP) -> None:
    clock = Clock()
    breaker = LocalBreaker(threshold=1, cooldown=30.0, probe_timeout=30.0, clock=clock)
    fake_api.then(gemini_error(503, "overloaded"), gemini_error(503, "still"), gemini_json(outline()))
    async with gemini(fake_api.url, breaker=breaker) as models:
        with pytest.raises(RetryableError):
            await models.run(outline_task(), ANY)
        with pytest.raises(Defer):
            await models.run(outline_task(), ANY)  # held back: the breaker is open
        assert page().value("syllabus_breaker_state", provider="gemini") == 2
        clock.now += 31  # the cool-down is over: the next call is the probe, which fails
        with pytest.raises(RetryableError):
            await models.run(outline_task(), ANY)
        assert page().value("syllabus_breaker_state", provider="gemini") == 2
        clock.now += 31
        await models.run(outline_task(), ANY)  # a probe that succeeds closes it
        assert page().value("syllabus_breaker_state", provider="gemini") == 0
