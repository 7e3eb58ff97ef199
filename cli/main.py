"""The `syllabus` command. Each command lives in its own module, which registers its sub-parser."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from syllabus.config import ConfigError

# Modules that add commands: each has register(subparsers) that sets `func` (args -> exit code).
COMMAND_MODULES = (
    "onemachine.stack",  # up
    "cli.services",  # gateway, generator, renderer, scheduler
    "cli.commands",  # submit, get, jobs, watch, cancel, deadletters
    "cli.queue_commands",  # stats, workers, queues
    "cli.course_command",  # course
    "cli.edit_command",  # course-edit
    "cli.source_command",  # sources
    "cli.worker_command",  # worker
    "cli.schedule_command",  # schedules
    "cli.keys_command",  # keys
    "cli.probe_command",  # probe
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="syllabus",
        description="Syllabus: prompt to course, on a NATS JetStream job pipeline.",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
    except ConfigError as exc:
        print(f"syllabus: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
