"""The job commands: `syllabus submit|get|jobs|watch|cancel|deadletters`, clients of a running gateway.

Each command parses its input first (a mistake is one line and exit code 2, before anything is sent), then
talks to the gateway through SyllabusClient. Failed calls print `syllabus: CODE: message` and one line per
field violation; a gateway that does not answer is named with a hint to start it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TextIO

import grpc

from cli import jobargs, jobtext
from cli.jobargs import UsageError
from cli.purge_command import add_purge
from syllabus import anyjson
from syllabus.client import GatewayUnreachable, SyllabusClient, SyllabusError
from syllabus.config import ClientConfig, GatewayConfig
from syllabus.topology import TASK_KIND
from syllabus.v1 import job_pb2, job_service_pb2

EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELED = 3
# `--timeout` ran out while the job was still going.
EXIT_GAVE_UP = 4
_END_CODES = {
    job_pb2.JOB_STATE_SUCCEEDED: EXIT_SUCCEEDED,
    job_pb2.JOB_STATE_FAILED: EXIT_FAILED,
    job_pb2.JOB_STATE_CANCELED: EXIT_CANCELED,
}
WATCH_EXIT_CODES = """exit codes:
  0  the job SUCCEEDED
  1  the job FAILED (it is in the dead-letter queue), or the gateway failed or could not be reached
  2  invalid input, or no such job
  3  the job was CANCELED
  4  --timeout ran out before the job ended (it keeps running)"""
EXIT_CODES = """exit codes:
  0  done
  1  the gateway failed or could not be reached
  2  invalid input, or no such job"""
DEFAULT_TIMEOUT = 30.0
DEFAULT_LIMIT = 20
JOB_ORDERS = {
    "created": job_service_pb2.JOB_ORDER_CREATE_TIME_DESC,
    "ended": job_service_pb2.JOB_ORDER_END_TIME_DESC,
}

Handler = Callable[[SyllabusClient, argparse.Namespace], Awaitable[int]]


def gateway_options(
    timeout_help: str = f"how long to wait for each answer of the gateway (default {DEFAULT_TIMEOUT:g})",
) -> argparse.ArgumentParser:
    """--addr and --timeout, the options of every command that calls the gateway (a parent parser)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--addr",
        metavar="HOST:PORT",
        help="the gateway's gRPC address (default: $SYLLABUS_GRPC_ADDR, else 127.0.0.1:50051)",
    )
    common.add_argument("--timeout", metavar="SECONDS", help=timeout_help)
    return common


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    common = gateway_options(
        f"how long to wait for each answer of the gateway (default {DEFAULT_TIMEOUT:g}); "
        "for watch, how long to watch (default: until the job ends)"
    )
    _add_submit(subparsers, common)
    _add_get(subparsers, common)
    _add_jobs(subparsers, common)
    _add_watch(subparsers, common)
    _add_cancel(subparsers, common)
    _add_deadletters(subparsers, common)
    _add_artifact(subparsers, common)


def _parser(
    subparsers: argparse._SubParsersAction[Any], name: str, common: argparse.ArgumentParser, help: str, epilog: str
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        parents=[common],
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


# -- running a command ------------------------------------------------------------------------------------


def _command(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        try:
            addr = _addr(args.addr)
            given = (
                jobargs.parse_seconds(args.timeout, "--timeout", positive=True) if args.timeout is not None else None
            )
            # A watch runs as long as the job unless --timeout bounds it; single calls get a default deadline.
            args.watch_deadline = given
            return asyncio.run(_with_client(handler, args, addr, given or DEFAULT_TIMEOUT))
        except UsageError as exc:
            return _fail(str(exc), EXIT_USAGE)
        except GatewayUnreachable as exc:
            return _fail(f"cannot reach the gateway at {exc.addr} (is `syllabus up` running?)", EXIT_FAILED)
        except SyllabusError as exc:
            return _print_error(exc)
        except BrokenPipeError:
            # The reader (e.g. `| head`) is gone; nothing left to say, and nowhere to say it.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_FAILED

    return run


async def _with_client(handler: Handler, args: argparse.Namespace, addr: str, timeout: float) -> int:
    identity = ClientConfig.from_env()
    files = identity.tls_files
    async with SyllabusClient.connect(
        addr,
        timeout=timeout,
        token=identity.token or None,
        tenant=identity.tenant or None,
        tls=identity.tls,
        tls_ca=files.ca,
        tls_cert=files.cert,
        tls_key=files.key,
    ) as client:
        return await handler(client, args)


def _addr(given: str | None) -> str:
    if given is None:
        return GatewayConfig.from_env().grpc_addr
    host, sep, port = given.rpartition(":")
    if not given.startswith("unix:") and (not sep or not host or not port.isdigit()):
        raise UsageError(f"--addr {given!r} is not host:port")
    return given


def _fail(message: str, code: int) -> int:
    print(f"syllabus: {message}", file=sys.stderr)
    return code


def _print_error(exc: SyllabusError) -> int:
    lines = [f"syllabus: {exc.code.name}: {exc.message}"]
    lines += [f"  {v.field}: {v.description}" for v in exc.field_violations]
    if exc.retry_delay is not None:
        lines.append(f"  try again in {jobtext.seconds_text(exc.retry_delay)}")
    print("\n".join(lines), file=sys.stderr)
    return EXIT_USAGE if exc.code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND) else EXIT_FAILED


def _out(text: str = "") -> None:
    print(text, flush=True)


# -- submit -----------------------------------------------------------------------------------------------


def _add_submit(subparsers: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    parser = _parser(
        subparsers,
        "submit",
        common,
        "submit a job and print its id",
        "examples:\n"
        '  syllabus submit summarize --text "NATS JetStream keeps messages until they are acknowledged."\n'
        "  syllabus submit summarize --text - --watch < notes.txt\n"
        '  syllabus submit summarize_text --json \'{"summarizeText": {"text": "...", "maxWords": 40}}\'\n'
        '  syllabus submit course --json \'{"prompt": "Rust for Python developers", "modules": 4}\'\n'
        "  syllabus submit task math.stats --json '{\"numbers\": [1, 2, 3]}'\n"
        "  syllabus submit report --file report.json   # then: syllabus artifact JOB report.pdf\n\n"
        + WATCH_EXIT_CODES.replace("exit codes:", "exit codes with --watch:"),
    )
    parser.add_argument(
        "kind", metavar="KIND", help="job kind: summarize (summarize_text), course, render, report, task, ..."
    )
    parser.add_argument("name", metavar="TASK", nargs="?", help="the task's name (task jobs only), e.g. math.stats")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--text", help="the text to summarize (summarize only); - reads it from stdin")
    what.add_argument(
        "--json",
        metavar="SPEC_JSON",
        help="the job as protojson: a JobSpec, or just the message of KIND; for a task, its input",
    )
    what.add_argument("--file", metavar="PATH", help="--json read from a file (- reads stdin), e.g. a report")
    parser.add_argument("--priority", choices=["interactive", "batch"], help="interactive jobs are served first")
    when = parser.add_mutually_exclusive_group()
    when.add_argument("--run-at", metavar="ISO_TIME", help="run no earlier than this, e.g. 2030-01-31T09:00:00Z")
    when.add_argument("--delay", metavar="SECONDS", help="run no earlier than this many seconds from now")
    parser.add_argument("--key", metavar="IDEMPOTENCY_KEY", help="submitting again with this key returns the job")
    parser.add_argument("--max-attempts", metavar="N", help="attempts before the job is dead-lettered")
    parser.add_argument("--attempt-timeout", metavar="SECONDS", help="time limit of one attempt of the job")
    parser.add_argument(
        "--label", metavar="KEY=VALUE", action="append", default=[], help="a label to filter by (repeatable)"
    )
    parser.add_argument("--watch", action="store_true", help="then follow the job until it ends (see `watch`)")
    parser.set_defaults(func=_command(_submit))


def _spec(args: argparse.Namespace) -> job_pb2.JobSpec:
    kind = jobargs.resolve_kind(args.kind)
    if args.file is not None:
        args.json = jobargs.read_text_file(args.file, "--file")
    if kind == TASK_KIND:
        if args.text is not None:
            raise UsageError("--text is for summarize; give a task's input as --json '{...}'")
        return jobargs.task_spec(args.name, args.json)
    if args.name is not None:
        raise UsageError(f"unexpected {args.name!r}: only task jobs take a name")
    if args.json is not None:
        return jobargs.parse_spec(args.json, kind)
    if args.text is None:
        if kind == "summarize_text":
            raise UsageError("give the text to summarize as --text TEXT (- reads stdin), or the job as --json")
        raise UsageError(f"give the job as --json SPEC_JSON, e.g. {jobargs.example_spec(kind)}")
    if kind != "summarize_text":
        raise UsageError(f"--text is for summarize; give a {kind} job as --json, e.g. {jobargs.example_spec(kind)}")
    text = sys.stdin.read() if args.text == "-" else args.text
    return job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text=text))


def _options(args: argparse.Namespace) -> job_pb2.JobOptions:
    options = job_pb2.JobOptions(labels=jobargs.parse_labels(args.label), idempotency_key=args.key or "")
    if args.priority is not None:
        options.priority = job_pb2.PRIORITY_BATCH if args.priority == "batch" else job_pb2.PRIORITY_INTERACTIVE
    if args.run_at is not None:
        options.run_at.CopyFrom(jobargs.parse_time(args.run_at))
    if args.delay is not None:
        options.run_at.CopyFrom(jobargs.delay_to_time(jobargs.parse_seconds(args.delay, "--delay")))
    if args.max_attempts is not None:
        if not args.max_attempts.isdigit():
            raise UsageError(f"--max-attempts {args.max_attempts!r} is not a whole number")
        options.max_attempts = int(args.max_attempts)
    if args.attempt_timeout is not None:
        options.timeout.CopyFrom(
            jobargs.duration(jobargs.parse_seconds(args.attempt_timeout, "--attempt-timeout", positive=True))
        )
    return options


async def _submit(client: SyllabusClient, args: argparse.Namespace) -> int:
    spec, options = _spec(args), _options(args)
    if args.watch:
        return await _run(client, spec, options, args)
    job, created = await client.submit(spec, options)
    _print_submitted(job, created, args.key)
    return EXIT_SUCCEEDED


def _print_submitted(job: job_pb2.Job, created: bool, key: str | None) -> None:
    _out(job.id)
    if not created:
        # On stderr, so `JOB=$(syllabus submit ...)` still gets the bare id.
        print(f"(existing job) the idempotency key {key!r} matched job {job.id}", file=sys.stderr)


async def _run(
    client: SyllabusClient, spec: job_pb2.JobSpec, options: job_pb2.JobOptions, args: argparse.Namespace
) -> int:
    """Submit and follow in one call (RunJob): the id as soon as the job is accepted, then its events live."""
    shown: list[_Progress] = []

    def submitted(job: job_pb2.Job, created: bool) -> None:
        _print_submitted(job, created, args.key)
        shown.append(_Progress(job))

    try:
        async with asyncio.timeout(args.watch_deadline):
            await client.run(spec, options, on_event=lambda event: shown[0].show(event), on_submitted=submitted)
    except TimeoutError:
        if not shown:
            return _fail(f"gave up after {args.watch_deadline:g}s: the gateway did not answer", EXIT_GAVE_UP)
        return await shown[0].gave_up(client, args.watch_deadline)
    return await shown[0].ended(client)


# -- artifact --------------------------------------------------------------------------------------------


def _add_artifact(subparsers: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    parser = _parser(
        subparsers,
        "artifact",
        common,
        "download a file a job stored, e.g. a report's PDF (`syllabus get JOB` lists them)",
        "examples:\n"
        "  syllabus artifact $JOB report.pdf                # writes the file under the name the gateway gives it\n"
        "  syllabus artifact $JOB report.html -o q1.html\n"
        "  syllabus artifact $COURSE_JOB course.pdf -o -   # to stdout\n\n" + EXIT_CODES,
    )
    parser.add_argument("job", metavar="JOB", help="the job id")
    parser.add_argument("name", metavar="NAME", help="the artifact's name, e.g. report.pdf")
    parser.add_argument("-o", "--out", metavar="FILE", help="where to write it; - is stdout")
    parser.set_defaults(func=_command(_artifact))


async def _artifact(client: SyllabusClient, args: argparse.Namespace) -> int:
    body, filename = await client.artifact(args.job, args.name)
    if args.out == "-":
        sys.stdout.buffer.write(body.data)
        sys.stdout.buffer.flush()
        return EXIT_SUCCEEDED
    # Only the file name the gateway suggests, never a path of its choosing.
    out = args.out or Path(filename).name or args.name
    try:
        await asyncio.to_thread(Path(out).write_bytes, body.data)
    except OSError as exc:
        return _fail(f"cannot write {out}: {exc.strerror or exc}", EXIT_FAILED)
    print(f"wrote {out} ({len(body.data)} bytes, {body.content_type})", file=sys.stderr)
    return EXIT_SUCCEEDED


# -- get, jobs --------------------------------------------------------------------------------------------


def _add_get(subparsers: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    parser = _parser(subparsers, "get", common, "show one job: state, attempts, times, result, errors", EXIT_CODES)
    parser.add_argument("job", metavar="JOB", help="the job id")
    parser.add_argument("--json", action="store_true", help="print the job as protojson")
    parser.set_defaults(func=_command(_get))


async def _get(client: SyllabusClient, args: argparse.Namespace) -> int:
    job = await client.get(args.job)
    _out(jobtext.to_json(job) if args.json else jobtext.job_summary(job))
    return EXIT_SUCCEEDED


def _limit(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"--limit {text!r} is not a whole number >= 1")
    return int(text)


def _add_jobs(subparsers: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    parser = _parser(subparsers, "jobs", common, "list jobs, newest first (or most recently ended)", EXIT_CODES)
    parser.add_argument(
        "--state",
        action="append",
        default=[],
        help=f"only jobs in this state (repeatable or comma-separated): {', '.join(jobargs.STATES)}",
    )
    parser.add_argument("--kind", default="", help="only jobs of this kind, e.g. summarize_text")
    parser.add_argument("--label", metavar="KEY=VALUE", action="append", default=[], help="only jobs with this label")
    parser.add_argument("--limit", metavar="N", default=str(DEFAULT_LIMIT), help=f"at most N jobs ({DEFAULT_LIMIT})")
    parser.add_argument(
        "--order",
        choices=sorted(JOB_ORDERS),
        default="created",
        help="created: newest first (default); ended: ended jobs only, most recently ended first",
    )
    parser.add_argument("--schedule", metavar="SCHEDULE_ID", default="", help="only jobs made by this schedule")
    parser.add_argument("--task", metavar="NAME", default="", help="only task jobs of this task name")
    parser.add_argument("--since", metavar="TIME", default="", help="only jobs created at or after TIME (ISO 8601)")
    parser.add_argument("--until", metavar="TIME", default="", help="only jobs created before TIME (ISO 8601)")
    parser.add_argument("--json", action="store_true", help="print a JSON array of jobs (protojson)")
    parser.set_defaults(func=_command(_jobs))
    # Without an action it lists, as it always did.
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    add_purge(actions, common, _command, EXIT_CODES)


async def _jobs(client: SyllabusClient, args: argparse.Namespace) -> int:
    states = jobargs.parse_states(args.state)
    labels = jobargs.parse_labels(args.label)
    limit = _limit(args.limit)
    if args.kind and args.task:
        raise UsageError("give --kind or --task, not both")
    kind = jobargs.resolve_kind(args.kind) if args.kind else args.task
    since = jobargs.parse_time(args.since, "--since") if args.since else None
    until = jobargs.parse_time(args.until, "--until") if args.until else None
    jobs: list[job_pb2.Job] = []
    token, total = "", 0
    while len(jobs) < limit:
        page = await client.list(
            states=states,
            kind=kind,
            labels=labels,
            page_size=min(limit - len(jobs), 1000),
            page_token=token,
            order_by=JOB_ORDERS[args.order],
            schedule_id=args.schedule,
            created_after=since,
            created_before=until,
        )
        jobs += page.items
        token, total = page.next_page_token, page.total_size
        if not token:
            break
    if args.json:
        _out(json.dumps([anyjson.to_dict(job) for job in jobs], indent=2))
    else:
        _out(jobtext.jobs_table(jobs) if jobs else "no jobs")
        if jobs:
            # On stderr, so the table stays the whole of stdout for scripts.
            print(f"{len(jobs)} of {total} job(s)", file=sys.stderr)
    return EXIT_SUCCEEDED


# -- watch ------------------------------------------------------------------------------------------------


def _add_watch(subparsers: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    parser = _parser(
        subparsers,
        "watch",
        common,
        "follow a job's progress until it ends (--timeout: give up after that long)",
        "On a terminal the line is redrawn with a progress bar; otherwise every event is one line.\n\n"
        + WATCH_EXIT_CODES,
    )
    parser.add_argument("job", metavar="JOB", help="the job id")
    parser.set_defaults(func=_command(_watch))


async def _watch(client: SyllabusClient, args: argparse.Namespace) -> int:
    return await _follow(client, await client.get(args.job), args.watch_deadline)


async def _follow(client: SyllabusClient, job: job_pb2.Job, deadline: float | None) -> int:
    """Show the job's events as they come; the exit code says how it ended."""
    progress = _Progress(job)
    try:
        async with asyncio.timeout(deadline):
            async for event in client.watch(job.id):
                progress.show(event)
    except TimeoutError:
        assert deadline is not None
        return await progress.gave_up(client, deadline)
    return await progress.ended(client)


class _Progress:
    """A job's events shown as they come, then how it ended."""

    def __init__(self, job: job_pb2.Job) -> None:
        self._job_id = job.id
        self._view = jobtext.WatchView(max_attempts=job.max_attempts)
        self._display = _Display(sys.stdout)

    def show(self, event: job_pb2.JobEvent) -> None:
        self._view.apply(event)
        # Errors and the end stay on screen; other updates replace each other.
        self._display.show(self._view, keep=event.HasField("error") or event.terminal)

    async def ended(self, client: SyllabusClient) -> int:
        self._display.close()
        final = await client.get(self._job_id)
        _print_outcome(final)
        return _END_CODES.get(final.state, EXIT_FAILED)

    async def gave_up(self, client: SyllabusClient, deadline: float) -> int:
        self._display.close()
        now = await client.get(self._job_id)
        state = jobtext.state_name(now.state)
        return _fail(f"gave up after {deadline:g}s: job {self._job_id} is still {state}", EXIT_GAVE_UP)


def _print_outcome(job: job_pb2.Job) -> None:
    if job.state == job_pb2.JOB_STATE_SUCCEEDED:
        if job.result.reference:
            _out(f"reference: {job.result.reference}")
        for text in (job.result.text, jobtext.result_output(job.result)):
            if text:
                _out("result:")
                _out("\n".join("  " + line for line in text.splitlines()))
    elif job.state == job_pb2.JOB_STATE_FAILED:
        _out(f"job {job.id} FAILED after {job.attempt} attempt(s); see `syllabus deadletters show {job.id}`")


class _Display:
    """A redrawn line on a terminal, one line per update anywhere else (pipes, logs, CI)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._tty = stream.isatty()
        self._open = False

    def show(self, view: jobtext.WatchView, keep: bool) -> None:
        if not self._tty:
            self._stream.write(view.line() + "\n")
        else:
            width = shutil.get_terminal_size().columns - 1
            self._stream.write("\r\x1b[K" + view.tty_line()[:width])
            self._open = not keep
            if keep:
                self._stream.write("\n")
        self._stream.flush()

    def close(self) -> None:
        if self._open:
            self._stream.write("\n")
            self._stream.flush()
            self._open = False


# -- cancel -----------------------------------------------------------------------------------------------


def _add_cancel(subparsers: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    parser = _parser(subparsers, "cancel", common, "cancel a job that has not finished", EXIT_CODES)
    parser.add_argument("job", metavar="JOB", help="the job id")
    parser.add_argument("--reason", default="", help="why, passed to the running attempt")
    parser.set_defaults(func=_command(_cancel))


async def _cancel(client: SyllabusClient, args: argparse.Namespace) -> int:
    job = await client.cancel(args.job, args.reason)
    if job.state == job_pb2.JOB_STATE_CANCELED:
        _out(f"canceled job {job.id}")
    elif job.cancel_requested:
        _out(f"cancel requested: job {job.id} is stopping its running attempt (`syllabus watch {job.id}` follows it)")
    else:
        _out(f"job {job.id} already {jobtext.state_name(job.state)}: nothing to cancel")
    return EXIT_SUCCEEDED


# -- deadletters ------------------------------------------------------------------------------------------


def _add_deadletters(subparsers: argparse._SubParsersAction[Any], common: argparse.ArgumentParser) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "deadletters",
        help="list, show, retry and purge jobs that failed for good",
        description="Jobs that failed permanently or ran out of attempts wait in the dead-letter queue, "
        "with their payload and every error, until they are retried or purged.",
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    listing = _parser(actions, "list", common, "list dead letters, oldest first", EXIT_CODES)
    listing.add_argument("--kind", default="", help="only dead jobs of this kind")
    listing.add_argument("--limit", metavar="N", default=str(DEFAULT_LIMIT), help=f"at most N ({DEFAULT_LIMIT})")
    listing.add_argument("--json", action="store_true", help="print a JSON array of dead letters (protojson)")
    listing.set_defaults(func=_command(_dl_list))

    show = _parser(actions, "show", common, "show a dead letter: its job, payload and error history", EXIT_CODES)
    show.add_argument("job", metavar="JOB", help="the dead job's id")
    show.add_argument("--json", action="store_true", help="print the dead letter as protojson")
    show.set_defaults(func=_command(_dl_show))

    retry = _parser(
        actions,
        "retry",
        common,
        "queue a dead job again, as it was or with an edited payload",
        'example:\n  syllabus deadletters retry JOB --json \'{"text": "a corrected text"}\'\n\n' + EXIT_CODES,
    )
    retry.add_argument("job", metavar="JOB", help="the dead job's id")
    retry.add_argument(
        "--json",
        metavar="SPEC_JSON",
        help="replace the payload: a JobSpec of the same kind, or just its message (for a task: its new input)",
    )
    retry.set_defaults(func=_command(_dl_retry))

    purge = _parser(actions, "purge", common, "remove dead letters for good (their jobs stay FAILED)", EXIT_CODES)
    purge.add_argument("--kind", default="", help="only dead jobs of this kind")
    purge.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    purge.set_defaults(func=_command(_dl_purge))


async def _dl_list(client: SyllabusClient, args: argparse.Namespace) -> int:
    limit = _limit(args.limit)
    kind = jobargs.resolve_kind(args.kind) if args.kind else ""
    letters = []
    async for dead in client.iter_dead_letters(kind, page_size=min(limit, 1000)):
        letters.append(dead)
        if len(letters) == limit:
            break
    if args.json:
        _out(json.dumps([anyjson.to_dict(dead) for dead in letters], indent=2))
    else:
        _out(jobtext.dead_letters_table(letters) if letters else "no dead letters")
    return EXIT_SUCCEEDED


async def _dl_show(client: SyllabusClient, args: argparse.Namespace) -> int:
    dead = await client.dead_letter(args.job)
    _out(jobtext.to_json(dead) if args.json else jobtext.dead_letter_summary(dead))
    return EXIT_SUCCEEDED


async def _dl_retry(client: SyllabusClient, args: argparse.Namespace) -> int:
    spec = None
    if args.json is not None:
        jobargs.parse_json(args.json)  # bad JSON is reported before anything is asked of the gateway
        dead = await client.dead_letter(args.job)
        if dead.job.kind == TASK_KIND:
            # A task's edit is its new input; the name stays.
            spec = jobargs.task_spec(dead.job.spec.task.name, args.json)
        else:
            spec = jobargs.parse_spec(args.json, dead.job.kind)
    job = await client.retry_dead_letter(args.job, spec)
    edited = " with the edited payload" if spec is not None else ""
    _out(f"queued job {job.id} again{edited} (state {jobtext.state_name(job.state)}); `syllabus watch {job.id}`")
    return EXIT_SUCCEEDED


async def _dl_purge(client: SyllabusClient, args: argparse.Namespace) -> int:
    kind = jobargs.resolve_kind(args.kind) if args.kind else ""
    if not args.yes:
        if not sys.stdin.isatty():
            raise UsageError("purge removes dead letters for good: add --yes (there is no terminal to ask)")
        count = 0
        async for _ in client.iter_dead_letters(kind, page_size=1000):
            count += 1
        if count == 0:
            _out("no dead letters to purge")
            return EXIT_SUCCEEDED
        which = f" of kind {kind}" if kind else ""
        prompt = f"Purge {count} dead letter(s){which} for good? Their jobs stay FAILED. [y/N] "
        with contextlib.suppress(EOFError):
            answer = await asyncio.to_thread(input, prompt)
            if answer.strip().lower() in ("y", "yes"):
                return await _purge(client, kind)
        _out("nothing purged")
        return EXIT_SUCCEEDED
    return await _purge(client, kind)


async def _purge(client: SyllabusClient, kind: str) -> int:
    purged = await client.purge_dead_letters(kind)
    _out(f"purged {purged} dead letter(s)")
    return EXIT_SUCCEEDED
