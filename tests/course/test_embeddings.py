"""The optional embeddings endpoint for source retrieval: BM25 and embedding similarity fused, the passages'
vectors asked for once per process, and BM25 alone (with one warning) when the endpoint fails. A local fake
answers like an OpenAI-compatible /v1/embeddings over real sockets, to the real httpx client."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from generator.embeddings import Embedder
from generator.grounding import best_passages
from generator.handlers import build_embedder
from generator.providers.breaker import LocalBreaker
from generator.retrieval import module_query, rank
from generator.tasks import ModuleContext
from syllabus.config import GeneratorConfig
from syllabus.v1 import course_pb2
from tests.course.fake_http import FakeHTTP, Reply, Request, chat_error, embeddings

# The module is about kneading; "working the dough" says the same without a word in common with the query.
MACHINES = "Kneading machines are sold in kitchen shops and cost a lot of money."
BY_HAND = "Working the dough by hand: push it away, fold it back and turn it for ten minutes."
TEXTS = (
    MACHINES,
    BY_HAND,
    "Bake the loaf at 230 degrees until the crust is brown.",
    "Salt slows the yeast.",
    "Flour, water, salt and yeast are weighed first.",
)
PASSAGES = [
    course_pb2.Passage(id=f"S1-{n}", source_id="S1", locator=f"page {n}", text=text)
    for n, text in enumerate(TEXTS, start=1)
]


def _module(title: str, summary: str) -> ModuleContext:
    return ModuleContext(
        course_title="Bread baking",
        course_description="Bread at home.",
        audience="",
        level="beginner",
        language="en",
        index=0,
        titles=(title,),
        title=title,
        summary=summary,
        objectives=(),
    )


KNEADING = _module("Kneading", "Kneading, and how long it takes.")
BAKING = _module("Baking", "Oven heat and crust.")
# Three dimensions: kneading, baking, ingredients. The hand-work page is nearest to the kneading query; the page
# about machines, which BM25 alone picks, is half about buying things.
VECTORS = {
    MACHINES: [0.6, 0.8, 0.0],
    BY_HAND: [1.0, 0.0, 0.0],
    TEXTS[2]: [0.0, 1.0, 0.0],
    TEXTS[3]: [0.0, 0.0, 1.0],
    TEXTS[4]: [0.0, 0.5, 1.0],
    module_query(KNEADING): [1.0, 0.0, 0.0],
    module_query(BAKING): [0.0, 1.0, 0.0],
}


def _answer(request: Request) -> Reply:
    assert request.path == "/v1/embeddings" and request.body["model"] == "embed-1"
    return embeddings([VECTORS[text] for text in request.body["input"]])


@pytest.fixture
async def fake() -> AsyncIterator[FakeHTTP]:
    server = await FakeHTTP(_answer).start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def embedder(fake: FakeHTTP) -> AsyncIterator[Embedder]:
    client = Embedder(base_url=fake.url, model="embed-1", api_key="sk-embed-test", timeout=10)
    try:
        yield client
    finally:
        await client.aclose()


def _inputs(fake: FakeHTTP) -> list[str]:
    return [text for request in fake.requests for text in request.body["input"]]


async def test_embeddings_find_a_passage_that_shares_no_word_with_the_query(fake: FakeHTTP, embedder: Embedder) -> None:
    bm25 = await best_passages(PASSAGES, KNEADING)
    assert [p.text for p in bm25] == [MACHINES]
    hybrid = await best_passages(PASSAGES, KNEADING, embedder)
    # Reciprocal rank fusion: the page first in both lists leads, the page only embeddings found comes next.
    assert [p.text for p in hybrid[:2]] == [MACHINES, BY_HAND]
    assert len(hybrid) == 4
    assert fake.requests[0].headers["authorization"] == "Bearer sk-embed-test"


async def test_a_courses_passages_are_embedded_once_per_process(fake: FakeHTTP, embedder: Embedder) -> None:
    # Two jobs of one course at once (a lesson and a quiz of different modules): one asks, the other waits for it.
    await asyncio.gather(best_passages(PASSAGES, KNEADING, embedder), best_passages(PASSAGES, BAKING, embedder))
    assert sorted(_inputs(fake)) == sorted([*TEXTS, module_query(KNEADING), module_query(BAKING)])
    asked = len(fake.requests)
    # A later job of the course: everything is known.
    best = await best_passages(PASSAGES, BAKING, embedder)
    assert best[0].text == TEXTS[2]
    assert len(fake.requests) == asked
    # Another model's vectors are not these.
    other = Embedder(base_url=f"{fake.url}/v1", model="embed-1", timeout=10)
    try:
        await other.embed([BY_HAND])
    finally:
        await other.aclose()
    assert len(fake.requests) == asked + 1


@pytest.mark.parametrize(
    "failure",
    [
        chat_error(500, "model not loaded"),
        # One vector for five passages and a query.
        embeddings([[1.0, 0.0, 0.0]]),
        Reply(body={"object": "list"}),
        Reply(body=b"<html>proxy error</html>"),
    ],
    ids=["500", "too-few-vectors", "no-data", "not-json"],
)
async def test_a_failing_endpoint_leaves_bm25_and_one_warning(
    fake: FakeHTTP, embedder: Embedder, caplog: pytest.LogCaptureFixture, failure: Reply
) -> None:
    caplog.set_level(logging.WARNING, logger="generator.grounding")
    fake.then(failure)
    best = await best_passages(PASSAGES, KNEADING, embedder)
    assert best == rank(PASSAGES, module_query(KNEADING))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "BM25 alone" in warnings[0].getMessage()
    # The failure is not remembered: the next job asks again and gets the fused ranking.
    best = await best_passages(PASSAGES, KNEADING, embedder)
    assert [p.text for p in best[:2]] == [MACHINES, BY_HAND]


async def test_an_unreachable_endpoint_leaves_bm25(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="generator.grounding")
    closed = await FakeHTTP(_answer).start()
    await closed.stop()
    client = Embedder(base_url=closed.url, model="embed-1", timeout=10)
    try:
        best = await best_passages(PASSAGES, KNEADING, client)
    finally:
        await client.aclose()
    assert best == rank(PASSAGES, module_query(KNEADING))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_an_endpoint_that_keeps_failing_is_left_alone_until_its_cool_down_ends(
    fake: FakeHTTP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="generator.grounding")
    now = [1000.0]
    breaker = LocalBreaker(threshold=2, cooldown=30.0, probe_timeout=15.0, clock=lambda: now[0])
    client = Embedder(base_url=fake.url, model="embed-1", timeout=10, breaker=breaker)
    try:
        fake.then(chat_error(500, "model not loaded"), chat_error(503, "overloaded"))
        for _ in range(2):
            assert await best_passages(PASSAGES, KNEADING, client) == rank(PASSAGES, module_query(KNEADING))
        asked = len(fake.requests)
        # Open: the next jobs are grounded by BM25 without asking, and each says why.
        assert await best_passages(PASSAGES, BAKING, client) == rank(PASSAGES, module_query(BAKING))
        assert len(fake.requests) == asked
        assert "not asked again for 30 s" in caplog.records[-1].getMessage()
        # The cool-down over, one job's request goes through as the probe; its success closes the breaker.
        now[0] += 31
        hybrid = await best_passages(PASSAGES, KNEADING, client)
        assert [p.text for p in hybrid[:2]] == [MACHINES, BY_HAND]
        assert len(fake.requests) == asked + 1
        assert await breaker.wait_time("embeddings:embed-1") == 0
    finally:
        await client.aclose()


async def test_the_embedder_is_built_only_when_configured() -> None:
    assert build_embedder(GeneratorConfig()) is None
    env = {"SYLLABUS_EMBEDDINGS_URL": "http://127.0.0.1:11434", "SYLLABUS_EMBEDDINGS_MODEL": "nomic-embed-text"}
    built = build_embedder(GeneratorConfig.from_env(env))
    assert built is not None and built.model == "nomic-embed-text"
    await built.aclose()


async def test_vectors_of_another_size_empty_the_cache(
    fake: FakeHTTP, embedder: Embedder, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="generator.grounding")
    await best_passages(PASSAGES, KNEADING, embedder)
    # The server swapped the model behind the name: the new query's vector has two dimensions.
    fake.then(embeddings([[1.0, 0.0]]))
    assert await best_passages(PASSAGES, BAKING, embedder) == rank(PASSAGES, module_query(BAKING))
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1
    asked = len(fake.requests)
    await best_passages(PASSAGES, BAKING, embedder)
    assert sorted(_inputs(fake)[-len(TEXTS) - 1 :]) == sorted([*TEXTS, module_query(BAKING)])
    assert len(fake.requests) == asked + 1
