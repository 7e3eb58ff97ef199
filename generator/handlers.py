"""The generator's handlers, built from the process's connections and configuration."""

from __future__ import annotations

from redis.asyncio import Redis

from generator.course import course_handler
from generator.deps import Deps
from generator.embeddings import Embedder
from generator.lesson import lesson_handler
from generator.models import Models
from generator.providers.breaker import Breaker, LocalBreaker, RedisBreaker
from generator.providers.cache import ReplyCache
from generator.providers.registry import Registry
from generator.quiz import quiz_handler
from generator.summarize import summarize_handler
from syllabus.config import GeneratorConfig
from syllabus.runtime import Runtime
from syllabus.sources import SourceShelf
from syllabus.worker import Handler


def build_breaker(config: GeneratorConfig, redis: Redis | None, namespace: str, call_timeout: float) -> Breaker:
    """With Redis, the breakers are shared by every generator; without, each process keeps its own."""
    # A probe holds the half-open breaker for at most one call.
    probe_timeout = call_timeout + 5
    if redis is None:
        return LocalBreaker(config.breaker_threshold, config.breaker_cooldown, probe_timeout)
    return RedisBreaker(
        redis,
        prefix=f"syllabus:{namespace or '-'}:breaker:",
        threshold=config.breaker_threshold,
        cooldown=config.breaker_cooldown,
        probe_timeout=probe_timeout,
    )


def build_models(config: GeneratorConfig, registry: Registry, redis: Redis | None, namespace: str) -> Models:
    """With Redis, the reply cache is shared by every generator; without, there is none."""
    breaker = build_breaker(config, redis, namespace, config.timeout)
    cache = ReplyCache(redis, config.cache_ttl) if redis is not None and config.cache_ttl > 0 else None
    return Models(registry, cache=cache, breaker=breaker)


def build_embedder(config: GeneratorConfig, redis: Redis | None = None, namespace: str = "") -> Embedder | None:
    """The embeddings endpoint's client, or None: passages are then ranked by BM25 alone."""
    if not config.embeddings_url:
        return None
    return Embedder(
        base_url=config.embeddings_url,
        model=config.embeddings_model,
        api_key=config.embeddings_api_key,
        timeout=config.embeddings_timeout,
        breaker=build_breaker(config, redis, namespace, config.embeddings_timeout),
    )


def build_handlers(
    runtime: Runtime, models: Models, default_max_attempts: int, embedder: Embedder | None = None
) -> dict[str, Handler]:
    deps = Deps(
        store=runtime.store,
        submitter=runtime.submitter,
        parents=runtime.parents,
        models=models,
        default_max_attempts=default_max_attempts,
        sources=SourceShelf(runtime.nc.jetstream(), runtime.topology.artifacts_bucket),
        embedder=embedder,
    )
    return {
        "generate_course": course_handler(deps),
        "generate_lesson": lesson_handler(deps),
        "generate_quiz": quiz_handler(deps),
        "summarize_text": summarize_handler(deps),
    }
