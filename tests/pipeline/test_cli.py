"""The job commands of `syllabus` against the in-process pipeline on real NATS.

The CLI runs its own event loop (asyncio.run), so each command runs in a thread, in this process, with its
output captured; one test runs `syllabus watch` as a process on a pseudo-terminal to see the redrawn line.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import pty
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from google.protobuf import json_format
from google.protobuf.timestamp_pb2 import Timestamp

from cli.main import main
from syllabus.client import SyllabusClient
from syllabus.errors import QueueFull
from syllabus.jetstream import StreamLimits, ensure_topology
from syllabus.taskregistry import TaskDeclaration, TaskRegistry
from syllabus.v1 import admin_service_pb2, job_pb2, job_service_pb2
from tests.pipeline import handlers
from tests.pipeline.conftest import Pipeline, StartWorker
from tests.pipeline.served import Requests, serve

E = job_pb2
DEADLINE = 30.0
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Run:
    code: int
    out: str
    err: str


Syllabus = Callable[..., Coroutine[Any, Any, Run]]


async def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return Run(code, captured.out, captured.err)


@pytest.fixture
def job_requests() -> Requests:
    """The job calls' requests the gateway got."""
    return []


@pytest_asyncio.fixture
async def addr(pipeline: Pipeline, job_requests: Requests) -> AsyncIterator[str]:
    async with serve(pipeline, requests=job_requests) as (_, address):
        yield address


@pytest.fixture
def syllabus(addr: str, capsys: pytest.CaptureFixture[str]) -> Syllabus:
    """`syllabus ARGS --addr <the pipeline's gateway>`, run in a thread: its exit code and output."""

    async def run(*argv: str) -> Run:
        return await run_cli(capsys, *argv, "--addr", addr)

    return run


@pytest_asyncio.fixture
async def client(addr: str) -> AsyncIterator[SyllabusClient]:
    async with SyllabusClient.connect(addr, timeout=DEADLINE) as client:
        yield client


async def submit(syllabus: Syllabus, text: str, *options: str) -> str:
    result = await syllabus("submit", "summarize", "--text", text, *options)
    assert result.code == 0, result.err
    return result.out.strip()


async def anext_event(events: AsyncIterator[job_pb2.JobEvent]) -> job_pb2.JobEvent:
    return await anext(events)


async def wait_end(client: SyllabusClient, job_id: str) -> list[job_pb2.JobEvent]:
    return [event async for event in client.watch(job_id)]


# -- submit -----------------------------------------------------------------------------------------------


async def test_submit_prints_the_id_and_sends_every_option(syllabus: Syllabus, pipeline: Pipeline) -> None:
    # A week ahead whenever the test runs, to the second as --run-at takes it.
    expected = Timestamp(seconds=int(time.time()) + 7 * 24 * 3600)
    result = await syllabus(
        "submit",
        "summarize",
        "--text",
        "Some text.",
        "--priority",
        "batch",
        "--key",
        "order-1",
        "--max-attempts",
        "2",
        "--attempt-timeout",
        "1.5",
        "--label",
        "team=docs",
        "--label",
        "env=a=b",
        "--run-at",
        expected.ToJsonString(),
    )
    assert result.code == 0 and result.err == ""
    job_id = result.out.strip()
    assert result.out == job_id + "\n"
    job = await pipeline.store.get_job(job_id)
    assert job is not None
    assert job.spec.summarize_text.text == "Some text."
    assert job.state == E.JOB_STATE_SCHEDULED
    options = job.options
    assert options.priority == E.PRIORITY_BATCH and options.idempotency_key == "order-1"
    assert options.max_attempts == 2 and options.timeout.ToNanoseconds() == 1_500_000_000
    assert dict(options.labels) == {"team": "docs", "env": "a=b"}
    assert options.run_at == expected

    again = await syllabus("submit", "summarize", "--text", "Some text.", "--key", "order-1")
    assert again.code == 0 and again.out == job_id + "\n"
    assert "(existing job)" in again.err and job_id in again.err


async def test_submit_delay_schedules_the_job(syllabus: Syllabus, pipeline: Pipeline) -> None:
    job_id = await submit(syllabus, "later", "--delay", "3600")
    job = await pipeline.store.get_job(job_id)
    assert job is not None and job.state == E.JOB_STATE_SCHEDULED
    assert job.options.run_at.ToNanoseconds() > job.create_time.ToNanoseconds()


async def test_submit_text_dash_reads_stdin(
    syllabus: Syllabus, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("Piped in.\nTwo lines.\n"))
    job = await pipeline.store.get_job(await submit(syllabus, "-"))
    assert job is not None and job.spec.summarize_text.text == "Piped in.\nTwo lines.\n"


@pytest.mark.parametrize(
    ("kind", "spec_json"),
    [
        ("summarize", '{"summarizeText": {"text": "camel", "maxWords": 7}}'),
        ("summarize_text", '{"summarize_text": {"text": "snake", "max_words": 7}}'),
        ("summarize-text", '{"text": "just the message", "maxWords": 7}'),
    ],
)
async def test_submit_json_takes_a_spec_or_the_kinds_message(
    syllabus: Syllabus, pipeline: Pipeline, kind: str, spec_json: str
) -> None:
    result = await syllabus("submit", kind, "--json", spec_json)
    assert result.code == 0, result.err
    job = await pipeline.store.get_job(result.out.strip())
    assert job is not None and job.kind == "summarize_text" and job.spec.summarize_text.max_words == 7


async def test_submit_task_sends_the_name_and_its_json_input(syllabus: Syllabus, pipeline: Pipeline) -> None:
    declaration = TaskDeclaration(name="cli.echo", pool="cli", max_attempts=2, timeout=5.0)
    await TaskRegistry(pipeline.nc, pipeline.topology).declare("cli", [declaration])
    result = await syllabus("submit", "task", "cli.echo", "--json", '{"numbers": [1, 2, 3]}', "--priority", "batch")
    assert result.code == 0, result.err
    job = await pipeline.store.get_job(result.out.strip())
    assert job is not None and (job.kind, job.spec.task.name, job.max_attempts) == ("task", "cli.echo", 2)
    assert json_format.MessageToDict(job.spec.task.json) == {"numbers": [1.0, 2.0, 3.0]}
    unknown = await syllabus("submit", "task", "cli.nope")
    assert unknown.code == 2
    assert unknown.err.splitlines()[1] == (
        "  spec.task.name: no worker pool serves task 'cli.nope' (start one with `syllabus worker`)"
    )


async def test_submit_watch_follows_the_job_to_its_result(
    syllabus: Syllabus, start_worker: StartWorker, client: SyllabusClient, job_requests: Requests
) -> None:
    # The worker starts once the job is queued, so the lines come in an order the test can spell out.
    subscribed = asyncio.Event()
    everything = client.watch_all(subscribed=subscribed)
    first_event = asyncio.create_task(anext_event(everything))
    await asyncio.wait_for(subscribed.wait(), DEADLINE)
    submitting = asyncio.create_task(syllabus("submit", "summarize", "--text", "progress", "--watch"))
    assert (await asyncio.wait_for(first_event, DEADLINE)).type == E.JOB_EVENT_TYPE_QUEUED
    await everything.aclose()
    await start_worker()
    result = await asyncio.wait_for(submitting, DEADLINE)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    job_id = lines[0]
    assert re.fullmatch(r"[0-9a-z]{20,}", job_id)
    assert lines[1] == "QUEUED     waiting for a worker"
    assert lines[2] == "RUNNING    attempt 1/3    0%  attempt 1 started"
    assert lines[3] == "RUNNING    attempt 1/3   50%  half way"
    assert lines[4] == "SUCCEEDED  attempt 1/3  100%  done"
    assert lines[5:] == ["result:", "  done by attempt 1: progress"]
    # One call did it all: the events came live on RunJob's stream, none read back by a watch.
    assert [type(r) for r in job_requests] == [job_service_pb2.RunJobRequest]


async def test_submit_watch_of_an_existing_key_replays_that_job(
    syllabus: Syllabus, start_worker: StartWorker, client: SyllabusClient
) -> None:
    await start_worker()
    job_id = await submit(syllabus, "progress", "--key", "again-1")
    await wait_end(client, job_id)
    result = await syllabus("submit", "summarize", "--text", "progress", "--key", "again-1", "--watch")
    assert result.code == 0, result.err
    assert result.err == f"(existing job) the idempotency key 'again-1' matched job {job_id}\n"
    lines = result.out.splitlines()
    assert lines[0] == job_id
    assert [line.split()[0] for line in lines[1:5]] == ["QUEUED", "RUNNING", "RUNNING", "SUCCEEDED"]
    assert lines[5:] == ["result:", "  done by attempt 1: progress"]


async def test_submit_watch_timeout_gives_up_with_exit_4(
    syllabus: Syllabus, start_worker: StartWorker, client: SyllabusClient
) -> None:
    await start_worker()
    result = await syllabus("submit", "summarize", "--text", "block", "--watch", "--timeout", "2")
    assert result.code == 4
    job_id = result.out.splitlines()[0]
    assert re.fullmatch(rf"syllabus: gave up after 2s: job {job_id} is still (QUEUED|RUNNING)\n", result.err)
    handlers.release.set()
    assert (await wait_end(client, job_id))[-1].state == E.JOB_STATE_SUCCEEDED


# -- watch ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "code", "last_state"), [("ok", 0, "SUCCEEDED"), ("fail-permanent", 1, "FAILED")])
async def test_watch_exit_code_tells_how_the_job_ended(
    syllabus: Syllabus, start_worker: StartWorker, text: str, code: int, last_state: str
) -> None:
    job_id = await submit(syllabus, text)
    await start_worker()
    result = await syllabus("watch", job_id)
    assert result.code == code, result.err
    states = [line.split()[0] for line in result.out.splitlines() if line.split()[0].isupper()]
    assert states[0] == "QUEUED" and states[-1] == last_state


async def test_watch_of_a_failed_job_names_the_error_and_the_dead_letter(
    syllabus: Syllabus, start_worker: StartWorker
) -> None:
    await start_worker()
    job_id = await submit(syllabus, "fail-permanent")
    result = await syllabus("watch", job_id)
    assert result.code == 1
    assert "BadInput: this input can never work" in result.out
    assert (
        result.out.splitlines()[-1]
        == f"job {job_id} FAILED after 1 attempt(s); see `syllabus deadletters show {job_id}`"
    )


async def test_watch_shows_retries(syllabus: Syllabus, start_worker: StartWorker) -> None:
    await start_worker()
    job_id = await submit(syllabus, "fail-retryable:1")
    result = await syllabus("watch", job_id)
    assert result.code == 0
    retrying = [line for line in result.out.splitlines() if line.startswith("RETRYING")]
    assert len(retrying) == 1
    assert re.fullmatch(
        r"RETRYING   attempt 1/3  RetryableError: flaky on attempt 1; next attempt in \S+s", retrying[0]
    )


async def test_watch_of_a_canceled_job_exits_3(syllabus: Syllabus) -> None:
    job_id = await submit(syllabus, "later", "--delay", "3600")
    assert (await syllabus("cancel", job_id)).code == 0
    result = await syllabus("watch", job_id)
    assert result.code == 3
    assert [line.split()[0] for line in result.out.splitlines()] == ["SCHEDULED", "CANCELED"]


async def test_watch_timeout_gives_up_with_exit_4(
    syllabus: Syllabus, start_worker: StartWorker, client: SyllabusClient
) -> None:
    await start_worker()
    job_id = await submit(syllabus, "block")
    result = await syllabus("watch", job_id, "--timeout", "0.5")
    assert result.code == 4
    assert re.fullmatch(rf"syllabus: gave up after 0\.5s: job {job_id} is still (QUEUED|RUNNING)\n", result.err)
    handlers.release.set()
    assert (await wait_end(client, job_id))[-1].state == E.JOB_STATE_SUCCEEDED


async def test_watch_on_a_terminal_redraws_one_line_with_a_bar(
    addr: str, start_worker: StartWorker, client: SyllabusClient
) -> None:
    await start_worker()
    job, _ = await client.submit(E.JobSpec(summarize_text=E.SummarizeText(text="progress")))
    await wait_end(client, job.id)
    main_fd, terminal_fd = pty.openpty()
    try:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "syllabus",
            "watch",
            job.id,
            "--addr",
            addr,
            stdin=subprocess.DEVNULL,
            stdout=terminal_fd,
            stderr=terminal_fd,
            cwd=ROOT,
        )
    finally:
        os.close(terminal_fd)
    try:
        output = await asyncio.wait_for(asyncio.to_thread(read_until_closed, main_fd), DEADLINE)
        assert await asyncio.wait_for(process.wait(), DEADLINE) == 0
    finally:
        os.close(main_fd)
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert "\r\x1b[KRUNNING    attempt 1/3  [##########----------]   50%  half way" in output
    assert "\r\x1b[KSUCCEEDED  attempt 1/3  [####################]  100%  done\r\n" in output
    # Updates replace each other: only the end (and the result) start new lines.
    assert output.count("\n") == 3


def read_until_closed(fd: int) -> str:
    chunks = []
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # EIO: every process holding the terminal has closed it
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode()


# -- get, jobs, cancel ------------------------------------------------------------------------------------


async def test_get_shows_a_summary_or_protojson(
    syllabus: Syllabus, start_worker: StartWorker, client: SyllabusClient, pipeline: Pipeline
) -> None:
    await start_worker()
    job_id = await submit(syllabus, "fail-retryable:1", "--label", "team=docs")
    await wait_end(client, job_id)
    result = await syllabus("get", job_id)
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0] == f"job       {job_id}"
    assert "state     SUCCEEDED" in lines and "attempts  2 of 3" in lines and "labels    team=docs" in lines
    assert any(line.startswith("started   ") for line in lines) and any(line.startswith("ended     ") for line in lines)
    assert lines[lines.index("result") + 1] == "  done by attempt 2: 1"
    errors = lines[lines.index("errors (1)") + 1]
    assert re.fullmatch(r"  attempt 1  \S+ \S+ UTC  RetryableError: flaky on attempt 1", errors)

    as_json = await syllabus("get", job_id, "--json")
    assert as_json.code == 0
    parsed = json_format.Parse(as_json.out, E.Job())
    assert parsed == await pipeline.store.get_job(job_id)


async def test_jobs_lists_newest_first_with_filters(
    syllabus: Syllabus, start_worker: StartWorker, client: SyllabusClient
) -> None:
    assert (await syllabus("jobs")).out == "no jobs\n"
    ids = [await submit(syllabus, "later", "--delay", "3600", "--label", f"n={i % 2}") for i in range(3)]

    table = (await syllabus("jobs")).out.splitlines()
    assert table[0].split() == ["ID", "KIND", "STATE", "ATTEMPT", "CREATED", "LABELS", "PROGRESS"]
    assert [line.split()[0] for line in table[1:]] == ids[::-1]
    assert all(line.split()[1:3] == ["summarize_text", "SCHEDULED"] for line in table[1:])

    def listed(result_out: str) -> list[str]:
        return [line.split()[0] for line in result_out.splitlines()[1:]]

    assert listed((await syllabus("jobs", "--limit", "2")).out) == ids[::-1][:2]
    assert listed((await syllabus("jobs", "--label", "n=0")).out) == [ids[2], ids[0]]
    assert listed((await syllabus("jobs", "--kind", "summarize", "--state", "queued,scheduled")).out) == ids[::-1]
    assert (await syllabus("jobs", "--state", "succeeded")).out == "no jobs\n"
    as_json = json.loads((await syllabus("jobs", "--json", "--limit", "2")).out)
    assert [job["id"] for job in as_json] == ids[::-1][:2]
    assert as_json[0]["state"] == "JOB_STATE_SCHEDULED"


async def test_cancel_says_what_happened(syllabus: Syllabus, start_worker: StartWorker, client: SyllabusClient) -> None:
    waiting = await submit(syllabus, "later", "--delay", "3600")
    result = await syllabus("cancel", waiting, "--reason", "not needed")
    assert (result.code, result.out) == (0, f"canceled job {waiting}\n")

    await start_worker()
    running = await submit(syllabus, "block")
    events = client.watch(running)
    async for event in events:
        if event.type == E.JOB_EVENT_TYPE_STARTED:
            break
    result = await syllabus("cancel", running)
    assert result.code == 0 and result.out.startswith(f"cancel requested: job {running} is stopping")
    async for event in events:
        last = event
    assert last.state == E.JOB_STATE_CANCELED

    done = await submit(syllabus, "ok")
    await wait_end(client, done)
    result = await syllabus("cancel", done)
    assert (result.code, result.out) == (0, f"job {done} already SUCCEEDED: nothing to cancel\n")


# -- deadletters ------------------------------------------------------------------------------------------


async def test_deadletters_list_show_retry_purge(
    syllabus: Syllabus, start_worker: StartWorker, client: SyllabusClient
) -> None:
    await start_worker()
    assert (await syllabus("deadletters", "list")).out == "no dead letters\n"
    dead = [await submit(syllabus, "fail-permanent") for _ in range(2)]
    for job_id in dead:
        await wait_end(client, job_id)

    table = (await syllabus("deadletters", "list")).out.splitlines()
    assert table[0].split()[:3] == ["JOB", "KIND", "ERRORS"]
    assert sorted(line.split()[0] for line in table[1:]) == sorted(dead)
    assert all("permanent error" in line and "BadInput: this input can never work" in line for line in table[1:])
    as_json = json.loads((await syllabus("deadletters", "list", "--json", "--kind", "summarize")).out)
    assert sorted(item["jobId"] for item in as_json) == sorted(dead)

    shown = await syllabus("deadletters", "show", dead[0])
    assert shown.code == 0
    assert shown.out.splitlines()[0] == f"dead letter of job {dead[0]}"
    assert (
        "  reason       permanent error" in shown.out and "BadInput: this input can never work (permanent)" in shown.out
    )
    shown_json = json_format.Parse(
        (await syllabus("deadletters", "show", dead[0], "--json")).out, admin_service_pb2.DeadLetter()
    )
    assert shown_json.job.spec.summarize_text.text == "fail-permanent"

    retried = await syllabus("deadletters", "retry", dead[0], "--json", '{"text": "ok:edited"}')
    assert retried.code == 0, retried.err
    assert retried.out.startswith(f"queued job {dead[0]} again with the edited payload (state QUEUED)")
    watched = await syllabus("watch", dead[0])
    assert watched.code == 0 and "done by attempt 1: edited" in watched.out

    gone = await syllabus("deadletters", "retry", dead[0])
    assert gone.code == 2 and gone.err.startswith("syllabus: NOT_FOUND: ")

    refused = await syllabus("deadletters", "purge")
    assert refused.code == 2
    assert refused.err == "syllabus: purge removes dead letters for good: add --yes (there is no terminal to ask)\n"
    purged = await syllabus("deadletters", "purge", "--yes")
    assert (purged.code, purged.out) == (0, "purged 1 dead letter(s)\n")
    assert (await syllabus("deadletters", "list")).out == "no dead letters\n"


class TerminalInput(io.StringIO):
    """Typed answers, on what claims to be a terminal."""

    def isatty(self) -> bool:
        return True


async def test_purge_asks_on_a_terminal(
    syllabus: Syllabus, start_worker: StartWorker, client: SyllabusClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await start_worker()
    job_id = await submit(syllabus, "fail-permanent")
    await wait_end(client, job_id)
    monkeypatch.setattr(sys, "stdin", TerminalInput("n\n"))
    kept = await syllabus("deadletters", "purge")
    assert kept.code == 0
    assert kept.out == "Purge 1 dead letter(s) for good? Their jobs stay FAILED. [y/N] nothing purged\n"
    assert [dead.job_id async for dead in client.iter_dead_letters()] == [job_id]
    monkeypatch.setattr(sys, "stdin", TerminalInput("y\n"))
    purged = await syllabus("deadletters", "purge", "--kind", "summarize")
    assert purged.out.endswith("[y/N] purged 1 dead letter(s)\n")
    assert not (await client.dead_letters()).items


# -- errors -----------------------------------------------------------------------------------------------


async def test_gateway_errors_print_code_message_and_violations(syllabus: Syllabus, pipeline: Pipeline) -> None:
    missing = await syllabus("get", "nope")
    assert (missing.code, missing.out, missing.err) == (2, "", "syllabus: NOT_FOUND: job 'nope' not found\n")
    for command in (["watch", "nope"], ["cancel", "nope"], ["deadletters", "show", "nope"]):
        assert (await syllabus(*command)).code == 2

    for watch in ([], ["--watch"]):
        invalid = await syllabus("submit", "summarize", "--text", "", "--label", "Bad Key=x", *watch)
        assert invalid.code == 2 and invalid.out == ""
        lines = invalid.err.splitlines()
        assert lines[0].startswith("syllabus: INVALID_ARGUMENT: invalid request: ")
        assert sorted(line.split(":")[0] for line in lines[1:]) == [
            '  options.labels["Bad Key"]',
            "  spec.summarize_text.text",
        ]

    await ensure_topology(pipeline.nc, pipeline.topology, StreamLimits(max_jobs=1))
    await submit(syllabus, "ok")
    full = await syllabus("submit", "summarize", "--text", "ok")
    assert full.code == 1
    assert full.err.startswith("syllabus: RESOURCE_EXHAUSTED: the job queue is full")
    assert full.err.endswith(f"\n  try again in {QueueFull().retry_after:.1f}s\n")


async def test_unreachable_gateway_is_one_line_with_a_hint(
    capsys: pytest.CaptureFixture[str], closed_addr: str
) -> None:
    addr = closed_addr
    commands = (["get", "x"], ["jobs"], ["watch", "x"], ["submit", "summarize", "--text", "x"])
    for command in (*commands, ["submit", "summarize", "--text", "x", "--watch"]):
        result = await run_cli(capsys, *command, "--addr", addr)
        assert (result.code, result.out) == (1, "")
        assert result.err == f"syllabus: cannot reach the gateway at {addr} (is `syllabus up` running?)\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["submit", "summarize", "--json", "{bad"], "--json is not valid JSON: "),
        (["submit", "summarize", "--json", "[1]"], "--json must be a JSON object"),
        (["submit", "summarize", "--json", '{"summarizeText": {"txt": "x"}}'], "--json does not fit a JobSpec: "),
        (["submit", "summarize", "--json", '{"renderDocument": {"courseId": "c"}}'], "--json holds a render_document"),
        (["submit", "summarize", "--text", "x", "--label", "nolabel"], "--label 'nolabel' is not key=value"),
        (["submit", "poem", "--text", "x"], "unknown job kind 'poem': use one of summarize, "),
        (["submit", "course", "--text", "x"], "--text is for summarize; give a generate_course job as --json"),
        (["submit", "summarize"], "give the text to summarize as --text TEXT"),
        (["submit", "summarize", "--text", "x", "--run-at", "tomorrow"], "--run-at 'tomorrow' is not an ISO 8601"),
        (["submit", "summarize", "--text", "x", "--delay", "-1"], "--delay '-1' is not a number of seconds"),
        (["submit", "summarize", "--text", "x", "--max-attempts", "many"], "--max-attempts 'many' is not a whole"),
        (["submit", "summarize", "--text", "x", "--attempt-timeout", "0"], "--attempt-timeout '0' is not a number"),
        (["jobs", "--state", "bogus"], "--state 'bogus' is not a job state: use one of scheduled, queued, "),
        (["jobs", "--limit", "0"], "--limit '0' is not a whole number >= 1"),
        (["get", "x", "--timeout", "soon"], "--timeout 'soon' is not a number of seconds > 0"),
        (["get", "x", "--addr", "nonsense"], "--addr 'nonsense' is not host:port"),
        (["deadletters", "retry", "x", "--json", "{"], "--json is not valid JSON: "),
        (["submit", "task"], "give the task's name: syllabus submit task NAME --json '{...}'"),
        (["submit", "task", "a.b", "--json", "[1]"], "--json must be a JSON object"),
        (["submit", "task", "a.b", "--text", "x"], "--text is for summarize; give a task's input as --json"),
        (["submit", "summarize", "extra", "--text", "x"], "unexpected 'extra': only task jobs take a name"),
    ],
)
async def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str, closed_addr: str
) -> None:
    # Nothing listens at this address: input errors must be caught before any call is made.
    addr = [] if "--addr" in argv else ["--addr", closed_addr]
    result = await run_cli(capsys, *argv, *addr)
    assert (result.code, result.out) == (2, "")
    assert result.err.startswith(f"syllabus: {message}") and result.err.count("\n") == 1, result.err


async def test_the_address_comes_from_the_environment(
    addr: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SYLLABUS_GRPC_ADDR", addr)
    assert await run_cli(capsys, "jobs") == Run(0, "no jobs\n", "")
    monkeypatch.setenv("SYLLABUS_GRPC_ADDR", "nowhere")
    bad = await run_cli(capsys, "jobs")
    assert bad.code == 2 and bad.err.startswith("syllabus: configuration error: SYLLABUS_GRPC_ADDR='nowhere'")


def test_help_documents_the_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    for command in (["watch"], ["submit"]):
        with pytest.raises(SystemExit) as done:
            main([*command, "--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        for line in ("0  the job SUCCEEDED", "1  the job FAILED", "3  the job was CANCELED", "4  --timeout ran out"):
            assert line in out
