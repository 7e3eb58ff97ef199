"""A generator worker process running the scripted test handlers (for SIGKILL / SIGTERM tests)."""

from __future__ import annotations

import sys

from syllabus.config import CommonConfig
from syllabus.process import run_service, serve_worker
from tests.pipeline import handlers


async def serve(common: CommonConfig) -> None:
    await serve_worker(common, "generator", lambda runtime: handlers.HANDLERS, every_kind=False)


if __name__ == "__main__":
    handlers.IN_SUBPROCESS = True
    sys.exit(run_service("generator", serve))
