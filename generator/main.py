"""The generator process: a worker for the generation job kinds."""

from __future__ import annotations

import logging

from generator.handlers import build_embedder, build_handlers, build_models
from generator.providers.registry import Registry
from syllabus.config import CommonConfig, GeneratorConfig, WorkerConfig
from syllabus.process import run_service, serve_worker
from syllabus.redisclient import redis_client

log = logging.getLogger(__name__)


async def serve(common: CommonConfig) -> None:
    config = GeneratorConfig.from_env()
    worker = WorkerConfig.from_env("generator")
    redis = redis_client(common) if common.redis_url else None
    if redis is None:
        log.warning("SYLLABUS_REDIS_URL is not set: no LLM response cache, and circuit breakers are kept per process")
    registry = Registry.from_config(config)
    log.info(
        "default model provider: %s%s", config.provider, " (offline drafts)" if config.provider == "offline" else ""
    )
    models = build_models(config, registry, redis, common.namespace)
    embedder = build_embedder(config, redis, common.namespace)
    if embedder is not None:
        log.info("source passages ranked by BM25 and %s embeddings", embedder.model)
    try:
        await serve_worker(
            common,
            "generator",
            lambda runtime: build_handlers(runtime, models, worker.retry.max_attempts, embedder),
        )
    finally:
        await registry.aclose()
        if embedder is not None:
            await embedder.aclose()
        if redis is not None:
            await redis.aclose()


def main() -> int:
    return run_service("generator", serve)
