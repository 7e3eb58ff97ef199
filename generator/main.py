"""The generator process: a worker for the generation job kinds."""

from __future__ import annotations

from generator.summarize import summarize_text
from syllabus.config import CommonConfig
from syllabus.process import run_service, serve_worker
from syllabus.worker import Handler

HANDLERS: dict[str, Handler] = {"summarize_text": summarize_text}


async def serve(common: CommonConfig) -> None:
    await serve_worker(common, "generator", lambda nc, store: HANDLERS)


def main() -> int:
    return run_service("generator", serve)
