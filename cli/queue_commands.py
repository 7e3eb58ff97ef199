"""The operating commands: `syllabus stats|workers|queues`, clients of a running gateway's AdminService.

They share the job commands' conventions (cli.commands): --addr and --timeout, one line per failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Sequence
from typing import Any

from cli import jobargs, jobtext
from cli.commands import EXIT_CODES, EXIT_SUCCEEDED, _command, _out, _parser, gateway_options
from cli.jobargs import UsageError
from syllabus import anyjson
from syllabus.client import SyllabusClient
from syllabus.topology import priority_name
from syllabus.v1 import admin_service_pb2 as pb

# Columns of the counts table: heading, and the JobCounts field it shows.
COUNT_COLUMNS = (
    ("SCHEDULED", "scheduled"),
    ("WAITING", "waiting"),
    ("RUNNING", "running"),
    ("RETRYING", "retrying"),
    ("CHILDREN", "waiting_for_children"),
    ("SUCCEEDED", "succeeded"),
    ("FAILED", "failed"),
    ("CANCELED", "canceled"),
)


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    common = gateway_options()

    stats = _parser(
        subparsers,
        "stats",
        common,
        "show each queue's jobs by state, its workers, consumers and whether it is paused",
        "examples:\n  syllabus stats\n  syllabus stats --queue generator --window 86400\n"
        "  syllabus stats --watch 2      # redrawn every 2 seconds until Ctrl-C\n\n" + EXIT_CODES,
    )
    stats.add_argument("--queue", default="", help="only this queue, e.g. generator or pool-acme")
    stats.add_argument("--window", metavar="SECONDS", help="count jobs that ended this far back (default 3600)")
    stats.add_argument("--watch", metavar="SECONDS", help="show them again every SECONDS until interrupted")
    stats.add_argument("--json", action="store_true", help="print the queues as protojson")
    stats.set_defaults(func=_command(_stats))

    workers = _parser(
        subparsers,
        "workers",
        common,
        "list the worker processes alive, with the jobs each one holds",
        EXIT_CODES,
    )
    workers.add_argument("--queue", default="", help="only workers of this queue")
    workers.add_argument("--json", action="store_true", help="print a JSON array of workers (protojson)")
    workers.set_defaults(func=_command(_workers))

    queues: argparse.ArgumentParser = subparsers.add_parser(
        "queues",
        help="pause or resume a queue",
        description="A paused queue's workers take none of its jobs (the running ones finish) until it is "
        "resumed; the pause holds across restarts.",
    )
    actions = queues.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("pause", "stop its workers taking its jobs"), ("resume", "let its workers take them again")):
        example = f"example:\n  syllabus queues {action} generator\n\n"
        parser = _parser(actions, action, common, text, example + EXIT_CODES)
        parser.add_argument("queue", metavar="QUEUE", help="a service (generator, renderer) or pool-NAME")
        parser.set_defaults(func=_command(_pause if action == "pause" else _resume))


async def _stats(client: SyllabusClient, args: argparse.Namespace) -> int:
    window = jobargs.parse_seconds(args.window, "--window", positive=True) if args.window is not None else None
    every = jobargs.parse_seconds(args.watch, "--watch", positive=True) if args.watch is not None else None
    while True:
        queues = await client.queue_stats(args.queue, window)
        if args.json:
            _out(json.dumps([anyjson.to_dict(queue) for queue in queues], indent=2))
        else:
            if every is not None and sys.stdout.isatty():
                sys.stdout.write("\x1b[H\x1b[2J")  # the screen redrawn, not scrolled
            _out(stats_text(queues))
        if every is None:
            return EXIT_SUCCEEDED
        await asyncio.sleep(every)  # the interval the user asked for


def stats_text(queues: Sequence[pb.QueueStats]) -> str:
    rows = []
    for queue in queues:
        consumers = {priority_name(c.priority): c for c in queue.consumers}
        pending = "/".join(str(consumers[p].pending) if p in consumers else "-" for p in ("interactive", "batch"))
        age = jobtext.seconds_text(queue.oldest_waiting_age.ToNanoseconds() / 1e9)
        rows.append(
            [
                queue.queue,
                "paused" if queue.paused else "serving",
                str(queue.workers),
                str(sum(c.waiting for c in queue.counts)),
                str(sum(c.running for c in queue.counts)),
                age if queue.HasField("oldest_waiting_age") else "-",
                pending,
                str(sum(c.ack_pending for c in queue.consumers)),
                str(sum(c.redelivered for c in queue.consumers)),
            ]
        )
    headers = ["QUEUE", "STATE", "WORKERS", "WAITING", "RUNNING", "OLDEST", "PENDING", "UNACKED", "REDELIVERED"]
    text = jobtext.table(headers, rows)
    counts = [
        [queue.queue, c.kind, priority_name(c.priority), *(str(getattr(c, field)) for _, field in COUNT_COLUMNS)]
        for queue in queues
        for c in queue.counts
    ]
    if counts:
        text += "\n\n" + jobtext.table(["QUEUE", "KIND", "PRIORITY", *(name for name, _ in COUNT_COLUMNS)], counts)
    return text


async def _workers(client: SyllabusClient, args: argparse.Namespace) -> int:
    found = await client.workers(args.queue)
    if args.json:
        _out(json.dumps([anyjson.to_dict(worker) for worker in found], indent=2))
    else:
        _out(workers_text(found, time.time()) if found else "no workers")
    return EXIT_SUCCEEDED


def workers_text(workers: Sequence[pb.Worker], now: float) -> str:
    rows = [
        [
            worker.worker_id,
            worker.queue,
            f"{worker.host}:{worker.pid}",
            ",".join(worker.kinds),
            f"{len(worker.job_ids)}/{worker.concurrency}",
            ",".join(worker.job_ids) or "-",
            worker.version,
            jobtext.seconds_text(max(0.0, now - worker.start_time.ToNanoseconds() / 1e9)),
        ]
        for worker in workers
    ]
    return jobtext.table(["WORKER", "QUEUE", "PROCESS", "KINDS", "BUSY", "JOBS", "VERSION", "UP"], rows)


async def _pause(client: SyllabusClient, args: argparse.Namespace) -> int:
    queue = await client.pause_queue(_queue(args.queue))
    waiting = sum(c.waiting for c in queue.counts)
    _out(
        f"paused {queue.queue}: its workers take none of its jobs until `syllabus queues resume {queue.queue}` "
        f"({waiting} waiting, {sum(c.running for c in queue.counts)} running)"
    )
    return EXIT_SUCCEEDED


async def _resume(client: SyllabusClient, args: argparse.Namespace) -> int:
    queue = await client.resume_queue(_queue(args.queue))
    _out(f"resumed {queue.queue}: {sum(c.waiting for c in queue.counts)} waiting job(s) are taken again")
    return EXIT_SUCCEEDED


def _queue(text: str) -> str:
    if not text.strip():
        raise UsageError("give the queue's name, e.g. generator")
    return text.strip()
