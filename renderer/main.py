"""The renderer process: a worker for render_document."""

from __future__ import annotations

from renderer.documents import build_handlers
from syllabus.config import CommonConfig, RendererConfig
from syllabus.process import run_service, serve_worker


async def serve(common: CommonConfig) -> None:
    config = RendererConfig.from_env()
    await serve_worker(
        common,
        "renderer",
        lambda runtime: build_handlers(runtime, config),
    )


def main() -> int:
    return run_service("renderer", serve)
