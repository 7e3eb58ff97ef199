"""`syllabus schedules create|list|get|update|pause|resume|delete|trigger`: recurring jobs, from the command line.

`create` takes the job as `submit` does (KIND, then --text, --json or --file), and when it runs as --every or
--cron (with --tz). It prints the schedule's id on stdout, so `ID=$(syllabus schedules create ...)` works.
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import Any

from google.protobuf import duration_pb2

from cli import scheduletext
from cli.commands import EXIT_CODES, EXIT_SUCCEEDED, _command, _options, _out, _spec, gateway_options
from cli.jobargs import UsageError
from syllabus.client import SyllabusClient
from syllabus.v1 import job_pb2

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SPAN = re.compile(r"^(\d+)([smhd]?)$")
_OVERLAP = {"skip": job_pb2.SCHEDULE_OVERLAP_POLICY_SKIP, "allow": job_pb2.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL}


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    common = gateway_options()
    # The options go on each action (a default on the parent would be overwritten by the action's).
    parser = subparsers.add_parser(
        "schedules",
        help="recurring jobs: create, list, get, pause, resume, delete or trigger a schedule",
        description="Recurring jobs: create, list, get, pause, resume, delete or trigger a schedule.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
        '  syllabus schedules create --every 10s summarize --text "NATS keeps messages until they are acked."\n'
        "  syllabus schedules create --id nightly --cron '30 2 * * *' --tz Europe/Amsterdam report --file r.json\n"
        "  syllabus schedules list\n"
        "  syllabus schedules get nightly        # next run times and the latest runs with their outcome\n"
        "  syllabus schedules pause nightly      # resume, trigger (run now), delete likewise\n\n" + EXIT_CODES,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    _add_create(actions, common)
    listed = actions.add_parser("list", parents=[common], help="the schedules, with their next and last run")
    listed.set_defaults(func=_command(_list))
    for name, handler, text in (
        ("get", _get, "a schedule: its timing, template, next run times and latest runs"),
        ("pause", _pause, "stop a schedule firing until it is resumed"),
        ("resume", _resume, "let a paused schedule fire again (its timing restarts from now)"),
        ("delete", _delete, "remove a schedule; the jobs it made stay"),
        ("trigger", _trigger, "make one job from the schedule now and print its id"),
    ):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("schedule_id", metavar="SCHEDULE")
        action.set_defaults(func=_command(handler))


def _add_create(actions: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    parser = actions.add_parser("create", parents=[common], help="create a schedule and print its id")
    when = parser.add_mutually_exclusive_group(required=True)
    when.add_argument("--every", metavar="SPAN", help="fire every SPAN: 10s, 5m, 2h, 1d (or seconds)")
    when.add_argument("--cron", metavar="EXPR", help="cron: 5 fields, 6 (seconds first), or @hourly, @daily, ...")
    parser.add_argument("--tz", metavar="ZONE", default="", help="the cron's IANA time zone (default UTC)")
    parser.add_argument("--id", metavar="ID", default="", help="the schedule's id (default: one is made)")
    parser.add_argument(
        "--overlap", choices=sorted(_OVERLAP), default="skip", help="skip a firing while the last run is unfinished"
    )
    parser.add_argument(
        "--catch-up", metavar="SPAN", help="run firings missed in an outage if at most this late (default 60s)"
    )
    parser.add_argument("--description", default="", help="free text for people")
    parser.add_argument("kind", metavar="KIND", help="job kind, as for `syllabus submit`")
    parser.add_argument("name", metavar="TASK", nargs="?", help="the task's name (task jobs only)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--text", help="the text to summarize (summarize only); - reads it from stdin")
    what.add_argument("--json", metavar="SPEC_JSON", help="the job as protojson, as for `syllabus submit`")
    what.add_argument("--file", metavar="PATH", help="--json read from a file (- reads stdin)")
    parser.add_argument("--priority", choices=["interactive", "batch"], help="interactive jobs are served first")
    parser.add_argument("--max-attempts", metavar="N", help="attempts before a job is dead-lettered")
    parser.add_argument("--attempt-timeout", metavar="SECONDS", help="time limit of one attempt")
    parser.add_argument("--label", metavar="KEY=VALUE", action="append", default=[], help="a label (repeatable)")
    # What `submit` takes and a schedule does not: each firing makes its own job, now.
    parser.set_defaults(func=_command(_create), key=None, run_at=None, delay=None)


def parse_span(text: str, option: str) -> duration_pb2.Duration:
    match = _SPAN.match(text.strip())
    if match is None:
        raise UsageError(f"{option} {text!r} is not a span such as 30s, 5m, 2h or 1d")
    return duration_pb2.Duration(seconds=int(match.group(1)) * _UNITS[match.group(2) or "s"])


def schedule_from(args: argparse.Namespace) -> job_pb2.Schedule:
    schedule = job_pb2.Schedule(
        id=args.id,
        time_zone=args.tz,
        spec=_spec(args),
        options=_options(args),
        overlap_policy=_OVERLAP[args.overlap],
        description=args.description,
    )
    if args.every is not None:
        schedule.interval.CopyFrom(parse_span(args.every, "--every"))
    else:
        schedule.cron = args.cron
    if args.catch_up is not None:
        schedule.catchup_window.CopyFrom(parse_span(args.catch_up, "--catch-up"))
    return schedule


async def _create(client: SyllabusClient, args: argparse.Namespace) -> int:
    schedule = await client.create_schedule(schedule_from(args))
    _out(schedule.id)
    print(scheduletext.schedule_line(schedule), file=sys.stderr)
    return EXIT_SUCCEEDED


async def _list(client: SyllabusClient, args: argparse.Namespace) -> int:
    _out(scheduletext.schedules_table(await client.list_schedules()))
    return EXIT_SUCCEEDED


async def _get(client: SyllabusClient, args: argparse.Namespace) -> int:
    _out(scheduletext.schedule_summary(await client.get_schedule(args.schedule_id)))
    return EXIT_SUCCEEDED


async def _pause(client: SyllabusClient, args: argparse.Namespace) -> int:
    _out(scheduletext.schedule_line(await client.pause_schedule(args.schedule_id)))
    return EXIT_SUCCEEDED


async def _resume(client: SyllabusClient, args: argparse.Namespace) -> int:
    _out(scheduletext.schedule_line(await client.resume_schedule(args.schedule_id)))
    return EXIT_SUCCEEDED


async def _delete(client: SyllabusClient, args: argparse.Namespace) -> int:
    await client.delete_schedule(args.schedule_id)
    _out(f"{args.schedule_id}: deleted")
    return EXIT_SUCCEEDED


async def _trigger(client: SyllabusClient, args: argparse.Namespace) -> int:
    _out((await client.trigger_schedule(args.schedule_id)).id)
    return EXIT_SUCCEEDED
