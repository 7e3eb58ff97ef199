"""Providers through their real clients against local fake APIs: structured output, error classes, the repair
attempt, the Redis cache and the circuit breakers."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from redis.asyncio import Redis

from generator.models import Models
from generator.providers.breaker import Breaker, LocalBreaker, RedisBreaker
from generator.providers.cache import ReplyCache
from generator.providers.errors import parse_retry_after, retry_info_delay
from generator.providers.gemini import GeminiProvider
from generator.providers.openai_compat import OpenAICompatibleProvider, completions_url
from generator.providers.prices import estimate_cost
from generator.providers.registry import Registry
from generator.tasks import ModuleContext, OutlineTask, QuizTask
from syllabus.v1 import job_pb2
from syllabus.worker import Defer, JobError, PermanentError, RetryableError
from tests.course.fake_http import (
    FakeHTTP,
    Reply,
    chat_error,
    chat_json,
    chat_text,
    gemini_error,
    gemini_json,
    gemini_prompt,
    gemini_text,
)

ANY = job_pb2.ModelSelection()


def outline_task(modules: int = 2) -> OutlineTask:
    # A prompt of its own per test: the cache lives in the session's Valkey.
    return OutlineTask(f"Rust {uuid.uuid4().hex[:8]}", modules, "Python developers", "beginner", "en")


def outline(modules: int = 2) -> dict[str, object]:
    return {
        "title": "Rust for Pythonistas",
        "description": "From Python to Rust.",
        "modules": [
            {"title": f"Module {i}", "summary": f"About {i}.", "objectives": [f"Do {i}"]} for i in range(modules)
        ],
    }


@asynccontextmanager
async def gemini(
    url: str, *, cache: ReplyCache | None = None, breaker: Breaker | None = None, timeout: float = 10
) -> AsyncIterator[Models]:
    registry = Registry(
        "gemini",
        {
            "gemini": lambda model: GeminiProvider(
                api_key="test-key", model=model or "gemini-2.5-flash", base_url=url, timeout=timeout
            )
        },
    )
    try:
        yield Models(registry, cache=cache, breaker=breaker or LocalBreaker(5, 30.0, 30.0))
    finally:
        await registry.aclose()


@asynccontextmanager
async def openai(url: str, *, timeout: float = 10) -> AsyncIterator[Models]:
    registry = Registry(
        "openai",
        {
            "openai": lambda model: OpenAICompatibleProvider(
                base_url=url, model=model or "gpt-4o-mini", api_key="sk-test", timeout=timeout
            )
        },
    )
    try:
        yield Models(registry, cache=None, breaker=LocalBreaker(5, 30.0, 30.0))
    finally:
        await registry.aclose()


# --- Gemini ------------------------------------------------------------------------------------------------------


async def test_gemini_structured_output_is_parsed_into_protobuf_and_costed(fake_api: FakeHTTP) -> None:
    task = outline_task()
    fake_api.then(gemini_json(outline(), input_tokens=1000, output_tokens=500))
    async with gemini(fake_api.url) as models:
        answer = await models.run(task, ANY)
    assert [module.title for module in answer.value.modules] == ["Module 0", "Module 1"]
    assert answer.value.modules[1].objectives == ["Do 1"] and answer.value.modules[1].index == 1
    [request] = fake_api.requests
    assert request.path.endswith("/models/gemini-2.5-flash:generateContent")
    assert request.headers["x-goog-api-key"] == "test-key"
    config = request.body["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert config["responseJsonSchema"] == task.schema()
    assert task.prompt_text in gemini_prompt(request)
    assert "instructional designer" in request.body["systemInstruction"]["parts"][0]["text"]
    assert (answer.provider, answer.model, answer.input_tokens, answer.output_tokens) == (
        "gemini",
        "gemini-2.5-flash",
        1000,
        500,
    )
    assert answer.estimated_cost_usd == pytest.approx((1000 * 0.30 + 500 * 2.50) / 1e6)
    assert not answer.offline


async def test_gemini_per_request_model(fake_api: FakeHTTP) -> None:
    fake_api.then(gemini_json(outline()))
    async with gemini(fake_api.url) as models:
        answer = await models.run(outline_task(), job_pb2.ModelSelection(model="gemini-2.5-pro"))
    assert fake_api.requests[0].path.endswith("/models/gemini-2.5-pro:generateContent")
    assert answer.model == "gemini-2.5-pro"


async def test_gemini_429_is_retryable_after_its_retry_after(fake_api: FakeHTTP) -> None:
    fake_api.then(gemini_error(429, "quota exceeded", headers={"Retry-After": "7"}))
    async with gemini(fake_api.url) as models:
        with pytest.raises(RetryableError) as caught:
            await models.run(outline_task(), ANY)
    assert caught.value.error_type == "RateLimited" and caught.value.retry_after == 7
    assert "quota exceeded" in str(caught.value)
    # The SDK's own retries are off: our retry policy decides.
    assert len(fake_api.requests) == 1


async def test_gemini_retry_info_in_the_body_counts_as_retry_after(fake_api: FakeHTTP) -> None:
    body = {
        "error": {
            "code": 429,
            "message": "slow down",
            "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12s"}],
        }
    }
    fake_api.then(Reply(status=429, body=body))
    async with gemini(fake_api.url) as models:
        with pytest.raises(RetryableError) as caught:
            await models.run(outline_task(), ANY)
    assert caught.value.retry_after == 12


async def test_gemini_500_is_retryable(fake_api: FakeHTTP) -> None:
    fake_api.then(gemini_error(500, "backend error"))
    async with gemini(fake_api.url) as models:
        with pytest.raises(RetryableError) as caught:
            await models.run(outline_task(), ANY)
    assert caught.value.error_type == "ProviderUnavailable" and not caught.value.permanent
    assert len(fake_api.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403])
async def test_gemini_client_errors_are_permanent(fake_api: FakeHTTP, status: int) -> None:
    fake_api.then(gemini_error(status, "no"))
    async with gemini(fake_api.url) as models:
        with pytest.raises(PermanentError) as caught:
            await models.run(outline_task(), ANY)
    assert caught.value.error_type == "ProviderRejected" and caught.value.permanent
    assert f"HTTP {status}" in str(caught.value)


async def test_gemini_malformed_json_gets_one_repair_attempt(fake_api: FakeHTTP) -> None:
    fake_api.then(
        gemini_text('{"title": "Rust", "modules": [', input_tokens=10, output_tokens=5),
        gemini_json(outline(), input_tokens=20, output_tokens=7),
    )
    async with gemini(fake_api.url) as models:
        answer = await models.run(outline_task(), ANY)
    assert answer.value.title == "Rust for Pythonistas"
    first, second = fake_api.requests
    assert "not valid JSON" in gemini_prompt(second) and "not valid JSON" not in gemini_prompt(first)
    # Both calls were billed.
    assert (answer.input_tokens, answer.output_tokens) == (30, 12)


async def test_gemini_truncated_output_gets_one_repair_attempt(fake_api: FakeHTTP) -> None:
    fake_api.then(gemini_json(outline(), finish="MAX_TOKENS"), gemini_json(outline()))
    async with gemini(fake_api.url) as models:
        await models.run(outline_task(), ANY)
    assert "cut off" in gemini_prompt(fake_api.requests[1])


async def test_gemini_schema_violations_twice_are_retryable(fake_api: FakeHTTP) -> None:
    wrong_count = outline(modules=1)
    no_description = {key: value for key, value in outline().items() if key != "description"}
    fake_api.then(gemini_json(wrong_count), gemini_json(no_description))
    async with gemini(fake_api.url) as models:
        with pytest.raises(RetryableError) as caught:
            await models.run(outline_task(), ANY)
    assert caught.value.error_type == "InvalidModelOutput"
    assert "description must be a non-empty string" in str(caught.value)
    assert len(fake_api.requests) == 2
    assert "modules must be a list of exactly 2 items (got 1)" in gemini_prompt(fake_api.requests[1])


async def test_quiz_answer_outside_the_choices_is_a_schema_violation(fake_api: FakeHTTP) -> None:
    module = ModuleContext("C", "d", "", "general", "en", 0, ("M",), "M", "s", ("o",))
    bad = {"questions": [{"text": "Q?", "choices": ["a", "b"], "answer_index": 2, "explanation": "e"}]}
    good = {"questions": [{"text": "Q?", "choices": ["a", "b"], "answer_index": 1, "explanation": "e"}]}
    fake_api.then(gemini_json(bad), gemini_json(good))
    async with gemini(fake_api.url) as models:
        answer = await models.run(QuizTask(module, 1), ANY)
    assert answer.value.questions[0].answer_index == 1
    assert "answer_index must be an integer from 0 to 1" in gemini_prompt(fake_api.requests[1])


async def test_gemini_timeout_is_retryable(fake_api: FakeHTTP) -> None:
    fake_api.then(Reply(hang=True))
    async with gemini(fake_api.url, timeout=0.3) as models:
        with pytest.raises(RetryableError) as caught:
            await models.run(outline_task(), ANY)
    assert caught.value.error_type == "ProviderTimeout"


async def test_unreachable_gemini_is_retryable(closed_addr: str) -> None:
    async with gemini(f"http://{closed_addr}") as models:
        with pytest.raises(RetryableError) as caught:
            await models.run(outline_task(), ANY)
    assert caught.value.error_type == "ProviderUnavailable"


# --- OpenAI-compatible -------------------------------------------------------------------------------------------


def test_completions_url_accepts_the_root_or_v1() -> None:
    assert completions_url("http://h:11434") == "http://h:11434/v1/chat/completions"
    assert completions_url("http://h:11434/v1/") == "http://h:11434/v1/chat/completions"


async def test_openai_compatible_structured_output(fake_api: FakeHTTP) -> None:
    task = outline_task()
    fake_api.then(chat_json(outline(), input_tokens=1000, output_tokens=100))
    async with openai(fake_api.url) as models:
        answer = await models.run(task, ANY)
    assert answer.value.modules[0].title == "Module 0"
    [request] = fake_api.requests
    assert request.path == "/v1/chat/completions" and request.headers["authorization"] == "Bearer sk-test"
    assert request.body["model"] == "gpt-4o-mini"
    assert request.body["response_format"] == {"type": "json_object"}
    system, user = request.body["messages"]
    assert system["role"] == "system" and '"modules"' in system["content"]
    assert task.prompt_text in user["content"]
    assert answer.estimated_cost_usd == pytest.approx(estimate_cost("gpt-4o-mini", 1000, 100))


async def test_openai_429_with_an_http_date_retry_after(fake_api: FakeHTTP) -> None:
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=120), usegmt=True)
    fake_api.then(chat_error(429, "rate limited", headers={"Retry-After": when}))
    async with openai(fake_api.url) as models:
        with pytest.raises(RetryableError) as caught:
            await models.run(outline_task(), ANY)
    assert caught.value.error_type == "RateLimited"
    assert caught.value.retry_after is not None and 60 < caught.value.retry_after <= 120


@pytest.mark.parametrize(
    ("status", "error", "error_type"),
    [
        (500, RetryableError, "ProviderUnavailable"),
        (503, RetryableError, "ProviderUnavailable"),
        (401, PermanentError, "ProviderRejected"),
    ],
)
async def test_openai_errors_are_classified(
    fake_api: FakeHTTP, status: int, error: type[JobError], error_type: str
) -> None:
    fake_api.then(chat_error(status, "nope"))
    async with openai(fake_api.url) as models:
        with pytest.raises(error) as caught:
            await models.run(outline_task(), ANY)
    assert caught.value.error_type == error_type and f"HTTP {status}" in str(caught.value)
    assert len(fake_api.requests) == 1


async def test_openai_malformed_then_schema_violating_output_is_retryable(fake_api: FakeHTTP) -> None:
    fake_api.then(chat_text("Sure! Here is your course:"), chat_json({"title": "only a title"}))
    async with openai(fake_api.url) as models:
        with pytest.raises(RetryableError) as caught:
            await models.run(outline_task(), ANY)
    assert caught.value.error_type == "InvalidModelOutput"
    assert "not valid JSON" in fake_api.requests[1].body["messages"][1]["content"]


async def test_openai_fenced_json_is_accepted(fake_api: FakeHTTP) -> None:
    import json

    fake_api.then(chat_text("```json\n" + json.dumps(outline()) + "\n```"))
    async with openai(fake_api.url) as models:
        answer = await models.run(outline_task(), ANY)
    assert answer.value.title == "Rust for Pythonistas"


async def test_openai_broken_envelope_is_retryable(fake_api: FakeHTTP) -> None:
    fake_api.then(Reply(body={"unexpected": True}))
    async with openai(fake_api.url) as models:
        with pytest.raises(RetryableError) as caught:
            await models.run(outline_task(), ANY)
    assert caught.value.error_type == "ProviderUnavailable"


# --- cache -------------------------------------------------------------------------------------------------------


async def test_identical_requests_are_served_from_the_cache(fake_api: FakeHTTP, redis: Redis) -> None:
    task = outline_task()
    fake_api.then(gemini_json(outline()), gemini_json(outline()))
    async with gemini(fake_api.url, cache=ReplyCache(redis, ttl=60)) as models:
        first = await models.run(task, ANY)
        second = await models.run(task, ANY)
        assert len(fake_api.requests) == 1
        assert second.cached and not first.cached
        assert second.value == first.value
        # Nothing was billed for the cached answer.
        assert (second.input_tokens, second.output_tokens, second.estimated_cost_usd) == (0, 0, 0.0)
        # Another model is another request.
        await models.run(task, job_pb2.ModelSelection(model="gemini-2.5-pro"))
        assert len(fake_api.requests) == 2


async def test_invalid_answers_are_not_cached(fake_api: FakeHTTP, redis: Redis) -> None:
    task = outline_task()
    fake_api.then(gemini_text("nope"), gemini_text("still nope"), gemini_json(outline()))
    async with gemini(fake_api.url, cache=ReplyCache(redis, ttl=60)) as models:
        with pytest.raises(RetryableError):
            await models.run(task, ANY)
        answer = await models.run(task, ANY)
    assert not answer.cached and len(fake_api.requests) == 3


# --- circuit breakers --------------------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


BreakerFactory = Callable[[Clock], Breaker]


def _local(clock: Clock) -> Breaker:
    return LocalBreaker(threshold=2, cooldown=30.0, probe_timeout=10.0, clock=clock)


@pytest.fixture(params=["local", "redis"])
def make_breaker(request: pytest.FixtureRequest) -> BreakerFactory:
    if request.param == "local":
        return _local
    redis: Redis = request.getfixturevalue("redis")
    prefix = f"test:{uuid.uuid4().hex}:"
    return lambda clock: RedisBreaker(redis, prefix=prefix, threshold=2, cooldown=30.0, probe_timeout=10.0, clock=clock)


async def test_breaker_opens_after_consecutive_failures_probes_after_cooldown_and_closes(
    make_breaker: BreakerFactory,
) -> None:
    clock = Clock()
    breaker = make_breaker(clock)
    assert await breaker.wait_time("gemini") == 0
    await breaker.failed("gemini")
    assert await breaker.wait_time("gemini") == 0
    await breaker.succeeded("gemini")
    await breaker.failed("gemini")
    assert await breaker.wait_time("gemini") == 0  # a success in between: not consecutive
    await breaker.failed("gemini")
    assert await breaker.wait_time("gemini") == pytest.approx(30.0)
    assert await breaker.wait_time("openai") == 0  # per provider
    clock.now += 31
    assert await breaker.wait_time("gemini") == 0  # the probe goes ahead...
    assert await breaker.wait_time("gemini") == pytest.approx(10.0)  # ...alone, for as long as a probe may take
    await breaker.failed("gemini")  # the probe failed: open again
    assert await breaker.wait_time("gemini") == pytest.approx(30.0)
    clock.now += 31
    assert await breaker.wait_time("gemini") == 0
    await breaker.succeeded("gemini")
    assert await breaker.wait_time("gemini") == 0
    assert await breaker.wait_time("gemini") == 0


async def test_an_open_breaker_defers_without_calling(fake_api: FakeHTTP) -> None:
    clock = Clock()
    breaker = LocalBreaker(threshold=2, cooldown=30.0, probe_timeout=10.0, clock=clock)
    fake_api.then(gemini_error(500), gemini_error(400), gemini_error(503))
    async with gemini(fake_api.url, breaker=breaker) as models:
        with pytest.raises(RetryableError):
            await models.run(outline_task(), ANY)
        # A client error says nothing about the provider's health: it neither counts as a failure nor breaks the
        # run of failures, so the next failure is the second in a row and opens the breaker.
        with pytest.raises(PermanentError):
            await models.run(outline_task(), ANY)
        assert await breaker.wait_time("gemini") == 0
        with pytest.raises(RetryableError):
            await models.run(outline_task(), ANY)
        with pytest.raises(Defer) as deferred:
            await models.run(outline_task(), ANY)
        assert deferred.value.delay == pytest.approx(30.0) and "circuit breaker is open" in deferred.value.reason
        assert len(fake_api.requests) == 3
        clock.now += 31
        fake_api.then(gemini_json(outline()))
        await models.run(outline_task(), ANY)
    assert await breaker.wait_time("gemini") == 0


# --- small parsers -----------------------------------------------------------------------------------------------


def test_retry_after_forms() -> None:
    assert parse_retry_after("5") == 5
    assert parse_retry_after("") is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert retry_info_delay({"error": {"details": [{"@type": "x/google.rpc.RetryInfo", "retryDelay": "1.5s"}]}}) == 1.5
    assert retry_info_delay({"error": {"message": "no details"}}) is None
