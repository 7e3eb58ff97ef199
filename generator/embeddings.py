"""Embedding vectors of texts from an OpenAI-compatible `/v1/embeddings` endpoint (OpenAI, Ollama, vLLM, llama.cpp
server) through httpx, kept in a bounded in-process cache keyed by model and the text's sha256: a course's passages
are asked for once per generator process, not once per lesson and quiz job. Concurrent jobs wanting one text wait
for the request already under way rather than sending their own.

A circuit breaker (generator.providers.breaker, shared through Redis when there is one) stops asking an endpoint
that failed several times in a row: until its cool-down ends, jobs are grounded by BM25 at once instead of each
waiting out its own failed request; then one request goes through as a probe."""

from __future__ import annotations

import asyncio
import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import httpx

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from generator.providers.breaker import Breaker

    Vector = npt.NDArray[np.float32]

# Texts per request: within every server's limit (OpenAI takes 2048), few requests for a course's passages.
BATCH = 64
# Vectors kept: a few hundred courses' passages (about 6 KiB each at 1536 dimensions).
CACHE_SIZE = 4096


class EmbeddingError(Exception):
    """The endpoint did not give the vectors (timeout, lost connection, non-2xx, unreadable answer)."""


def embeddings_url(base_url: str) -> str:
    """`http://host:11434` and `http://host:11434/v1` both mean `http://host:11434/v1/embeddings`."""
    base = base_url.rstrip("/")
    return f"{base}/embeddings" if base.endswith("/v1") else f"{base}/v1/embeddings"


class Embedder:
    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str = "",
        timeout: float = 30.0,
        cache_size: int = CACHE_SIZE,
        breaker: Breaker | None = None,
    ) -> None:
        self.model = model
        self._breaker = breaker
        self._breaker_name = f"embeddings:{model}"
        self._url = embeddings_url(base_url)
        self._timeout = timeout
        self._cache_size = cache_size
        self._cache: OrderedDict[str, Vector] = OrderedDict()
        self._pending: dict[str, asyncio.Future[Vector]] = {}
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout, headers=headers)

    async def embed(self, texts: Sequence[str]) -> list[Vector]:
        """One vector per text, in order; EmbeddingError when the endpoint fails."""
        keys = [self._key(text) for text in texts]
        found: dict[str, Vector] = {}
        waits: dict[str, asyncio.Future[Vector]] = {}
        mine: dict[str, str] = {}
        for key, text in zip(keys, texts, strict=True):
            if key in found or key in waits or key in mine:
                continue
            if (vector := self._cache.get(key)) is not None:
                self._cache.move_to_end(key)
                found[key] = vector
            elif (pending := self._pending.get(key)) is not None:
                waits[key] = pending
            else:
                mine[key] = text
        if mine:
            if self._breaker is not None and (wait := await self._breaker.wait_time(self._breaker_name)) > 0:
                raise EmbeddingError(f"the endpoint failed repeatedly; not asked again for {wait:.0f} s")
            found.update(await self._fetch(mine))
        for key, future in waits.items():
            # Shielded: a job cancelled while waiting must not cancel the answer other jobs wait for.
            found[key] = await asyncio.shield(future)
        if len({vector.shape for vector in found.values()}) > 1:
            # The server now runs another model under the same name: what is kept no longer compares.
            self._cache.clear()
            raise EmbeddingError("vectors of different dimensions (was the model changed?); the cache is emptied")
        return [found[key] for key in keys]

    async def aclose(self) -> None:
        await self._client.aclose()

    def _key(self, text: str) -> str:
        return f"{self.model}\0{hashlib.sha256(text.encode()).hexdigest()}"

    async def _fetch(self, texts: dict[str, str]) -> dict[str, Vector]:
        loop = asyncio.get_running_loop()
        futures = {key: loop.create_future() for key in texts}
        for future in futures.values():
            # A failure nobody else waited for is reported to the caller, not as "never retrieved".
            future.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._pending.update(futures)
        vectors: dict[str, Vector] = {}
        try:
            keys = list(texts)
            for start in range(0, len(keys), BATCH):
                batch = keys[start : start + BATCH]
                for key, vector in zip(batch, await self._judged([texts[k] for k in batch]), strict=True):
                    vectors[key] = vector
                    self._remember(key, vector)
        except BaseException as exc:
            failure = exc if isinstance(exc, EmbeddingError) else EmbeddingError(f"interrupted: {exc!r}")
            for future in futures.values():
                if not future.done():
                    future.set_exception(failure)
            raise
        finally:
            for key, future in futures.items():
                if self._pending.get(key) is future:
                    del self._pending[key]
        for key, future in futures.items():
            future.set_result(vectors[key])
        return vectors

    def _remember(self, key: str, vector: Vector) -> None:
        self._cache[key] = vector
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    async def _judged(self, texts: list[str]) -> list[Vector]:
        """The request, its outcome told to the breaker (a request cut short by its job's end tells nothing)."""
        try:
            vectors = await self._request(texts)
        except EmbeddingError:
            if self._breaker is not None:
                await self._breaker.failed(self._breaker_name)
            raise
        if self._breaker is not None:
            await self._breaker.succeeded(self._breaker_name)
        return vectors

    async def _request(self, texts: list[str]) -> list[Vector]:
        try:
            response = await self._client.post(self._url, json={"model": self.model, "input": texts})
        except httpx.TimeoutException as exc:
            raise EmbeddingError(f"no answer within {self._timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise EmbeddingError(f"cannot reach the server: {type(exc).__name__}: {exc}") from exc
        if not 200 <= response.status_code < 300:
            raise EmbeddingError(f"HTTP {response.status_code}: {response.text[:200]}")
        try:
            return _vectors(response.json(), len(texts))
        except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
            raise EmbeddingError(f"an unreadable answer: {type(exc).__name__}: {exc}") from exc


def _vectors(body: Any, count: int) -> list[Vector]:
    """The answer's vectors in input order: one per text, all of one dimension, finite numbers."""
    import numpy as np

    items = sorted(body["data"], key=lambda item: int(item["index"]))
    if [int(item["index"]) for item in items] != list(range(count)):
        raise ValueError(f"expected {count} embeddings indexed 0..{count - 1}")
    vectors = [np.asarray(item["embedding"], dtype=np.float32) for item in items]
    dimensions = {vector.shape for vector in vectors}
    if len(dimensions) != 1 or len(next(iter(dimensions))) != 1 or vectors[0].size == 0:
        raise ValueError("embeddings of different or no dimensions")
    if not all(np.isfinite(vector).all() for vector in vectors):
        raise ValueError("an embedding holds a non-finite number")
    return vectors
