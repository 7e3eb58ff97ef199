"""The renderer process: a worker for render_document."""

from __future__ import annotations

from renderer.documents import build_handlers
from syllabus.config import CommonConfig, RendererConfig
from syllabus.process import run_service, serve_worker
from syllabus.topology import Topology


async def serve(common: CommonConfig) -> None:
    config = RendererConfig.from_env()
    topology = Topology(common.namespace)
    await serve_worker(
        common,
        "renderer",
        lambda nc, store: build_handlers(nc, store, topology, config),
    )


def main() -> int:
    return run_service("renderer", serve)
