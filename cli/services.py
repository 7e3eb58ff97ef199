"""The service commands: `syllabus gateway|generator|renderer|scheduler` run one service in this process."""

from __future__ import annotations

import argparse
import importlib
from typing import Any

SERVICES = {
    "gateway": "the gRPC API with health and reflection, and its REST/JSON shim with /docs",
    "generator": "the worker that writes outlines, lessons, quizzes and summaries",
    "renderer": "the worker that renders courses into documents",
    "scheduler": "the scheduler, which queues delayed jobs when they fall due",
}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    for name, text in SERVICES.items():
        parser = subparsers.add_parser(name, help=f"run {text}", description=f"Run {text}, configured by SYLLABUS_*.")
        parser.set_defaults(func=lambda args, name=name: importlib.import_module(f"{name}.main").main())
