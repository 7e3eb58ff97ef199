"""The renderer process: a worker for render_document (its handlers arrive with the course flow)."""

from __future__ import annotations

from syllabus.config import CommonConfig
from syllabus.process import run_service, serve_worker
from syllabus.worker import Handler

HANDLERS: dict[str, Handler] = {}


async def serve(common: CommonConfig) -> None:
    await serve_worker(common, "renderer", lambda nc, store: HANDLERS)


def main() -> int:
    return run_service("renderer", serve)
