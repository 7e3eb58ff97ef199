"""`syllabus jobs purge`: remove ended jobs (with their events and artifacts) and dead letters older than an age,
now, as the scheduler's retention does on its own (AdminService.PurgeJobs)."""

from __future__ import annotations

import argparse
import re
from typing import Any

from google.protobuf.duration_pb2 import Duration

from cli.jobargs import UsageError
from syllabus.client import SyllabusClient
from syllabus.v1 import admin_service_pb2

_AGE = re.compile(r"^(\d+(?:\.\d+)?)([smhdw]?)$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str, option: str) -> Duration:
    """An age such as 90s, 30m, 12h, 7d or 2w (a bare number is seconds)."""
    found = _AGE.match(text.strip().lower())
    if found is None:
        raise UsageError(f"{option} {text!r} is not an age such as 30m, 12h, 7d or 2w")
    seconds = float(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    return Duration(seconds=int(seconds), nanos=round((seconds % 1) * 1e9))


def add_purge(actions: argparse._SubParsersAction[Any], common: argparse.ArgumentParser, run: Any, epilog: str) -> None:
    """`jobs purge`, on the sub-commands of `syllabus jobs`; `run` wraps the handler as the other commands are."""
    purge: argparse.ArgumentParser = actions.add_parser(
        "purge",
        help="remove ended jobs older than an age, with their events and artifacts",
        description="Remove the jobs that ended (succeeded, failed, canceled) longer ago than --older-than, with "
        "their events and artifacts, and dead letters older than --dead-letters-older-than. Jobs that have "
        "not ended are never removed.",
        parents=[common],
        epilog="example:\n  syllabus jobs purge --older-than 7d --dead-letters-older-than 30d\n\n" + epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    purge.add_argument("--older-than", metavar="AGE", required=True, help="e.g. 7d, 12h, 2w")
    purge.add_argument("--dead-letters-older-than", metavar="AGE", help="also dead letters this old (default: kept)")
    purge.set_defaults(func=run(_purge))


async def _purge(client: SyllabusClient, args: argparse.Namespace) -> int:
    request = admin_service_pb2.PurgeJobsRequest(older_than=parse_age(args.older_than, "--older-than"))
    if args.dead_letters_older_than is not None:
        request.dead_letters_older_than.CopyFrom(parse_age(args.dead_letters_older_than, "--dead-letters-older-than"))
    response = await client.purge_jobs(request)
    print(
        f"removed {response.jobs} ended job(s), {response.artifacts} artifact(s) "
        f"and {response.dead_letters} dead letter(s)",
        flush=True,
    )
    return 0
