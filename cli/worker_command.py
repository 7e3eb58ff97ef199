"""`syllabus worker MODULE:ATTRIBUTE`: run one process of your own task pool."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from syllabus.process import run_service
from syllabus.taskpool import AppNotFound, load_app, serve_pool
from syllabus.taskregistry import TaskTaken


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "worker",
        help="run a worker process of your own task pool (a TaskApp)",
        description="Run one process of a task pool: the TaskApp at MODULE:ATTRIBUTE, configured by SYLLABUS_* "
        "(SYLLABUS_WORKER_CONCURRENCY, SYLLABUS_WORKER_ACK_WAIT, ...). Run as many as you like, on any machines.",
        epilog="example:\n  syllabus worker acme.tasks:app --concurrency 16",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("app", metavar="MODULE:ATTRIBUTE", help="where the TaskApp is, e.g. acme.tasks:app")
    parser.add_argument("--concurrency", type=_positive, metavar="N", help="jobs run at once in this process")
    parser.set_defaults(func=_run)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= 1")
    return int(text)


def _run(args: argparse.Namespace) -> int:
    try:
        app = load_app(args.app)
    except AppNotFound as exc:
        print(f"syllabus worker: {exc}", file=sys.stderr)
        return 2
    try:
        return run_service(f"pool-{app.pool}", lambda common: serve_pool(common, app, args.concurrency))
    except TaskTaken as exc:
        print(f"syllabus worker: {exc}", file=sys.stderr)
        return 2
