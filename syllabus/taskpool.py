"""One process of a task pool (`syllabus worker MODULE:ATTRIBUTE`), running the TaskApp the user's package holds.

The app is imported as `celery -A` and `arq` import theirs: from the current directory or PYTHONPATH. Its task
names are declared (syllabus.taskregistry) before the pool's consumers take any job; a name another pool holds
stops the process with one line saying so.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from pathlib import Path
from typing import Any

from syllabus.config import CommonConfig, WorkerConfig
from syllabus.process import serve_worker
from syllabus.taskregistry import TaskRegistry
from syllabus.tasks import TaskApp
from syllabus.topology import TASK_KIND, Topology


class AppNotFound(Exception):
    """The MODULE:ATTRIBUTE given does not name a TaskApp."""


def load_app(target: str) -> TaskApp:
    module_name, _, attribute = target.partition(":")
    if not module_name or not attribute:
        raise AppNotFound(f"{target!r} is not MODULE:ATTRIBUTE, e.g. acme.tasks:app")
    # As `python -m` does: the current directory's packages are importable.
    if str(Path.cwd()) not in sys.path:
        sys.path.insert(0, str(Path.cwd()))
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise AppNotFound(f"cannot import {module_name!r}: {exc}") from None
    except Exception as exc:
        # The user's own code failed (a bad task declaration, a syntax error): one line, and where to see more.
        hint = f"python -c 'import {module_name}' shows where"
        raise AppNotFound(f"importing {module_name} failed: {type(exc).__name__}: {exc} ({hint})") from None
    if not hasattr(module, attribute):
        raise AppNotFound(f"{module_name} has no {attribute!r}")
    app = getattr(module, attribute)
    if not isinstance(app, TaskApp):
        raise AppNotFound(f"{target} is a {type(app).__name__}, not a TaskApp")
    if not app.declarations:
        raise AppNotFound(f"{target} declares no tasks (use @{attribute}.task(NAME))")
    return app


async def serve_pool(common: CommonConfig, app: TaskApp, concurrency: int | None) -> None:
    config = WorkerConfig.from_env("worker")
    config = dataclasses.replace(
        config,
        concurrency=concurrency or config.concurrency,
        # A task's own time limit is applied by the app; the runtime's must not end it sooner.
        default_timeout=max(config.default_timeout, app.longest_timeout),
    )
    topology = Topology(common.namespace, common.stream_replicas)
    names = [task.name for task in app.declarations]
    declarations = [dataclasses.replace(task, tenants=config.tenants) for task in app.declarations]

    async def declare(nc: Any) -> None:
        await TaskRegistry(nc, topology).declare(app.pool, declarations)

    await serve_worker(
        common,
        f"pool {app.pool}",
        lambda runtime: {TASK_KIND: app.handle},
        config=config,
        queue=topology.pool_queue(app.pool, names),
        before_start=declare,
        hooks=app.hooks,
    )
