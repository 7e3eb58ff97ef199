"""Fault scenarios with every part a separate process, as in production: NATS and Valkey started here (so the test
can kill them), `syllabus up` supervising the gateway, the workers and the scheduler against them, and a ledger
(tests/ledger.py) counting each run's jobs: accepted, completed, completed twice and lost. The last two are 0 in
every scenario, and each scenario prints its counts (one "fault scenario ..." line).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import re
import signal
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc
import nats as nats_client
import pytest
import redis.asyncio
from google.protobuf import struct_pb2

from onemachine.servers import NatsServer, ValkeyServer
from onemachine.supervisor import RestartPolicy, SupervisedService
from renderer.documents import FORMATS
from syllabus.client import SyllabusClient, SyllabusError
from syllabus.topology import Topology
from syllabus.v1 import course_service_pb2, course_service_pb2_grpc, job_pb2
from tests.conditions import eventually
from tests.course.fake_http import FakeHTTP, Reply, Request, chat_error, chat_json
from tests.e2e.conftest import ROOT, Stack, running_stack
from tests.e2e.poison_tasks import HELD_RELEASE
from tests.e2e.test_tasks_e2e import declared
from tests.ledger import Ledger, Tally
from tests.ports import unassigned_port

pytestmark = pytest.mark.e2e
E = job_pb2
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE
# Generous bounds for a slow machine; a healthy run takes a fraction of them.
SETTLE = 90.0
# Short waits wherever the pipeline waits on purpose, so that a scenario's recovery takes seconds, not minutes.
QUICK = {
    "SYLLABUS_RESTART_BACKOFF_MAX": "1",
    "SYLLABUS_GENERATOR_ACK_WAIT": "3",
    "SYLLABUS_RENDERER_ACK_WAIT": "3",
    "SYLLABUS_BACKOFF": "0.2",
    "SYLLABUS_SCHEDULER_SWEEP_INTERVAL": "2",
    "SYLLABUS_SCHEDULER_ORPHAN_GRACE": "5",
}
# What no outage may make any process log.
FAILURE_LINE = re.compile(r" (ERROR|CRITICAL) |Traceback")


@dataclass
class Plant:
    """`syllabus up` on NATS and Valkey of the test's own, which it can kill and start again on their ports."""

    stack: Stack
    nats: NatsServer
    valkey: ValkeyServer
    client: SyllabusClient
    channel: grpc.aio.Channel

    @property
    def home(self) -> Path:
        return Path(self.stack.env["SYLLABUS_HOME"])

    def lines(self) -> list[str]:
        return self.stack.log.read_text(errors="replace").splitlines()

    def pid_of(self, name: str) -> int:
        """The pid of the latest start of a service `up` supervises, as it logged it."""
        started = re.compile(rf"syllabus\.up: {re.escape(name)} started \(pid (\d+)\)")
        for line in reversed(self.lines()):
            if match := started.search(line):
                return int(match.group(1))
        raise AssertionError(f"`syllabus up` never said {name} started:\n{self.stack.log_tail()}")

    async def logged(self, pattern: str, after: int = 0, timeout: float = 60.0) -> str:
        """The first line of `up`'s output (its services' included), from line `after` on, that matches."""
        regex = re.compile(pattern)
        found: list[str] = []

        async def seen() -> bool:
            found[:] = [line for line in self.lines()[after:] if regex.search(line)]
            return bool(found)

        try:
            await eventually(seen, timeout=timeout)
        except TimeoutError:
            raise AssertionError(f"nothing logged matching {pattern!r}:\n{self.stack.log_tail()}") from None
        return found[0]

    def restarts(self, after: int) -> list[str]:
        """Services that exited (and were restarted) since line `after`."""
        exited = re.compile(r"(gateway|generator|renderer|scheduler)\S* exited")
        return [line for line in self.lines()[after:] if exited.search(line)]

    def failures(self, after: int = 0) -> list[str]:
        return [line for line in self.lines()[after:] if FAILURE_LINE.search(line)]


async def kill(server: NatsServer | ValkeyServer) -> None:
    """SIGKILL, as the OOM killer or a crash would; nothing is flushed or closed."""
    process = server.process
    assert process is not None and process.returncode is None
    os.kill(process.pid, signal.SIGKILL)
    await process.wait()


@contextlib.asynccontextmanager
async def plant(
    base: Path, extra_env: Mapping[str, str] | None = None, *, nats: NatsServer | None = None
) -> AsyncIterator[Plant]:
    """NATS (`nats`, or one in `base/nats`) and Valkey on ports no one else is handed while they are down, and `up`
    on them with `extra_env`; whatever the scenario stopped is started again before `up` is stopped."""
    nats_server = nats or NatsServer(base / "nats", port=unassigned_port())
    valkey = ValkeyServer(base / "valkey", port=unassigned_port())
    await nats_server.start()
    try:
        await valkey.start()
        env = {"SYLLABUS_NATS_URL": nats_server.url, "SYLLABUS_REDIS_URL": valkey.url, **QUICK, **(extra_env or {})}
        async with running_stack(base, env) as stack:
            channel = grpc.aio.insecure_channel(stack.grpc_addr)
            async with SyllabusClient.connect(stack.grpc_addr, timeout=30) as client:
                try:
                    yield Plant(stack, nats_server, valkey, client, channel)
                finally:
                    await channel.close()
                    # `up` must stop cleanly, so what the scenario took away is given back first.
                    if not nats_server.running:
                        await nats_server.restart()
                    if not valkey.running:
                        await valkey.restart()
    finally:
        await valkey.stop()
        await nats_server.stop()


def summarize(text: str) -> job_pb2.JobSpec:
    return E.JobSpec(summarize_text=E.SummarizeText(text=text))


def task(name: str, **data: float) -> job_pb2.JobSpec:
    values = struct_pb2.Struct()
    values.update(data)
    return E.JobSpec(task=E.Task(name=name, json=values))


async def submit_all(
    ledger: Ledger,
    specs: Sequence[job_pb2.JobSpec],
    *,
    callers: int = 8,
    each: Callable[[int], Awaitable[None]] | None = None,
) -> None:
    """Every spec submitted (tried again while refused UNAVAILABLE, under its own idempotency key), by `callers`
    concurrent clients; `each` hears the number accepted so far after every acceptance."""
    batch = uuid.uuid4().hex[:8]

    async def caller(indices: range) -> None:
        for n in indices:
            await ledger.submit(specs[n], key=f"{ledger.run}-{batch}-{n}")
            if each is not None:
                await each(len(ledger.accepted))

    await asyncio.gather(*(caller(range(k, len(specs), callers)) for k in range(callers)))


def report(scenario: str, tally: Tally, ledger: Ledger) -> None:
    refused = ", ".join(
        f"{code.name} {n}" for code, n in sorted(ledger.refusals.items(), key=lambda item: item[0].name)
    )
    print(f"{tally.line(scenario)} refusals=[{refused}]")
    assert tally.duplicated == 0, [ledger.describe(i) for i in ledger.accepted if ledger.successes(i) > 1][:10]
    assert tally.lost == 0, ledger.unfinished()


def refusals_are_clean(ledger: Ledger, allowed: Sequence[grpc.StatusCode] = (UNAVAILABLE,)) -> None:
    unexpected = {code: n for code, n in ledger.refusals.items() if code not in allowed}
    assert not unexpected, (unexpected, ledger.refusal_messages)


# -- 1. a generator killed in the middle of courses ------------------------------------------------------------

COURSES = 10
MODULES = 5
# Lesson calls the model holds unanswered until the generator is killed: by construction, as many lesson jobs are
# claimed and running in it when it dies.
HELD_LESSONS = 5


class HeldAnswers(FakeHTTP):
    """A fake model API whose `hang` replies are held until `release()` instead of forever, then answered."""

    def __init__(self, default: Callable[[Request], Reply]) -> None:
        super().__init__(default)
        # FakeHTTP answers a `hang` reply once this event is set.
        self._never = self.released = asyncio.Event()

    def release(self) -> None:
        self.released.set()


class CourseModel:
    """An OpenAI-compatible model that writes outlines, quizzes and lessons, holding back every lesson until
    released; `holding` is set once `hold` lesson calls are waiting."""

    def __init__(self, hold: int) -> None:
        self.hold = hold
        self.lesson_calls = 0
        self.holding = asyncio.Event()
        self.api = HeldAnswers(self.answer)

    def env(self) -> dict[str, str]:
        """The generator's settings for this model (started: its URL is known)."""
        return {
            "SYLLABUS_LLM_PROVIDER": "openai",
            "SYLLABUS_OPENAI_BASE_URL": self.api.url,
            "SYLLABUS_OPENAI_MODEL": "fake-model",
            # Every lesson call reaches the model, the calls of a restarted generator included.
            "SYLLABUS_LLM_CACHE_TTL": "0",
        }

    def answer(self, request: Request) -> Reply:
        prompt = request.body["messages"][-1]["content"]
        if modules := re.search(r"exactly (\d+) modules", prompt):
            title = re.search(r"request: '(.*?)'", prompt)
            return chat_json(
                {
                    "title": title.group(1) if title else "A course",
                    "description": "How queues keep work through the failure of the processes that do it.",
                    "modules": [
                        {
                            "title": f"Module {n + 1}",
                            "summary": f"Part {n + 1} of the course.",
                            "objectives": [f"Explain part {n + 1}", f"Apply part {n + 1}"],
                        }
                        for n in range(int(modules.group(1)))
                    ],
                }
            )
        if questions := re.search(r"exactly (\d+) multiple-choice questions", prompt):
            question = {
                "text": "What does a queue keep until it is acknowledged?",
                "choices": ["The message", "Nothing", "The consumer", "The port"],
                "answer_index": 0,
                "explanation": "An unacknowledged message is delivered again.",
            }
            return chat_json({"questions": [question] * int(questions.group(1))})
        self.lesson_calls += 1
        if self.lesson_calls >= self.hold:
            self.holding.set()
        lesson = {
            "title": "Acknowledgements",
            "body_markdown": "## Why\n\nA message not acknowledged in time is delivered again.\n\n- at least once",
            "key_points": ["Work is acknowledged once it is done."],
        }
        return Reply(body=chat_json(lesson).body, hang=True)


async def test_a_generator_killed_mid_courses_leaves_every_course_complete_and_each_lesson_stored_once(
    tmp_path: Path,
) -> None:
    model = CourseModel(hold=HELD_LESSONS)
    await model.api.start()
    try:
        async with plant(tmp_path, model.env()) as p:
            await generator_killed_mid_courses(p, model)
    finally:
        await model.api.stop()


async def generator_killed_mid_courses(p: Plant, model: CourseModel) -> None:
    ledger = Ledger(p.client)
    courses = course_service_pb2_grpc.CourseServiceStub(p.channel)
    answers = await asyncio.gather(
        *(
            courses.CreateCourse(
                course_service_pb2.CreateCourseRequest(
                    course=E.GenerateCourse(prompt=f"Fault tolerance in queues, part {n}", modules=MODULES),
                    options=ledger.options(),
                ),
                timeout=30,
            )
            for n in range(COURSES)
        )
    )
    for answer in answers:
        ledger.record(answer.job)
    # Lessons are being written, and the model holds them: the generator dies with those jobs in hand.
    await asyncio.wait_for(model.holding.wait(), 60)
    mark = len(p.lines())
    # Each call so far is one lesson job running in this generator, waiting for its answer.
    held = model.lesson_calls
    os.kill(p.pid_of("generator"), signal.SIGKILL)
    await p.logged(r"generator exited with signal SIGKILL", after=mark)
    model.api.release()

    tally = await ledger.settle(SETTLE)
    report("1 generator SIGKILLed mid-courses (courses)", tally, ledger)
    assert tally.completed == COURSES, ledger.unfinished()
    # Every child the courses made, followed the same way.
    for job in ledger.jobs.values():
        ledger.record(job)
    everything = await ledger.settle(SETTLE)
    report("1 generator SIGKILLed mid-courses (all jobs)", everything, ledger)
    assert everything.accepted == COURSES * (1 + 2 * MODULES + 1)
    assert everything.completed == everything.accepted, ledger.unfinished()

    # Each lesson call held when the generator died was a job it had claimed and was running: each was found
    # stalled and ran again.
    stalled = [job for job in ledger.jobs.values() if job.stall_count > 0]
    assert len([job for job in stalled if job.kind == "generate_lesson"]) >= held >= HELD_LESSONS, (
        held,
        [ledger.describe(job.id) for job in stalled],
    )
    writes = await asyncio.to_thread(course_writes, p.home / "store.db")
    # Each write of a course raises its revision: its creation, the outline, each lesson and quiz, the documents.
    # A part stored twice would show as one write more.
    assert {writes[answer.course.id] for answer in answers} == {3 + 2 * MODULES}, writes
    topology = Topology()
    nc = await nats_client.connect(p.nats.url, name="fault-scenarios")
    try:
        artifacts = await nc.jetstream().object_store(topology.artifacts_bucket)
        objects = [info.name for info in await artifacts.list()]
    finally:
        await nc.close()
    for answer in answers:
        course_job = answer.job.id
        children = [job for job in ledger.jobs.values() if job.parent_id == course_job]
        kinds = sorted(job.kind for job in children)
        assert kinds == sorted(["generate_lesson", "generate_quiz"] * MODULES + ["render_document"]), kinds
        course = (
            await courses.GetCourse(course_service_pb2.GetCourseRequest(course_id=answer.course.id), timeout=30)
        ).course
        assert all(module.HasField("lesson") and module.HasField("quiz") for module in course.modules)
        # One cost item per job that wrote a part: a lesson stored twice would be billed twice.
        cost_jobs = [cost.job_id for cost in course.costs]
        assert len(cost_jobs) == len(set(cost_jobs)), cost_jobs
        lessons = {job.id for job in children if job.kind == "generate_lesson"}
        assert sorted(c.job_id for c in course.costs if c.kind == "generate_lesson") == sorted(lessons)
        assert sorted(doc.format for doc in course.documents) == sorted(FORMATS)
        assert len([name for name in objects if name.startswith(f"courses/{course.id}/")]) == len(FORMATS)
    print(
        f"fault scenario 1: {len(stalled)} jobs were running in the killed generator (their claims stored), "
        f"{held} of them lessons whose model calls were held; "
        f"{sum(writes.values())} course writes for {COURSES} courses of {MODULES} modules"
    )


def course_writes(store: Path) -> dict[str, int]:
    """How many times each course record was written, read from the embedded store's file."""
    conn = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        return dict(conn.execute("SELECT id, revision FROM courses").fetchall())
    finally:
        conn.close()


# -- 2. nats-server killed and restarted under 500 jobs --------------------------------------------------------

NATS_JOBS = 500


async def test_nats_killed_and_restarted_during_500_jobs_completes_each_once(tmp_path: Path) -> None:
    async with plant(tmp_path) as p:
        ledger = Ledger(p.client)
        halfway = asyncio.Event()

        async def each(accepted: int) -> None:
            if accepted >= NATS_JOBS // 3:
                halfway.set()

        submitting = asyncio.create_task(
            submit_all(
                ledger, [summarize(f"job {n} of a run across a NATS crash") for n in range(NATS_JOBS)], each=each
            )
        )
        await asyncio.wait_for(halfway.wait(), 60)
        mark = len(p.lines())
        await kill(p.nats)

        # While it is down, callers are told UNAVAILABLE (and try again); nothing else.
        async def refused() -> bool:
            return ledger.refusals[UNAVAILABLE] > 0

        await eventually(refused, timeout=30, every=0.05)
        await p.nats.restart()
        await asyncio.wait_for(submitting, 120)

        tally = await ledger.settle(SETTLE)
        report("2 nats-server SIGKILLed and restarted", tally, ledger)
        assert tally.accepted == tally.completed == NATS_JOBS
        refusals_are_clean(ledger)
        assert p.restarts(mark) == []
        assert p.failures(mark) == []


# -- 3. Valkey down and back ------------------------------------------------------------------------------------

REDIS_JOBS = 20


async def test_valkey_down_and_back_submissions_and_reads_go_on_and_nothing_restarts(tmp_path: Path) -> None:
    fake = await FakeHTTP(lambda request: chat_json({"summary": "Valkey came back."})).start()
    # A model behind the generator, so that it uses Valkey (its LLM cache and circuit breaker), and a short leader
    # lease, so that the scheduler's next renewal meets the outage.
    env = {
        "SYLLABUS_LLM_PROVIDER": "openai",
        "SYLLABUS_OPENAI_BASE_URL": fake.url,
        "SYLLABUS_OPENAI_MODEL": "fake-model",
        "SYLLABUS_SCHEDULER_LEADER_LEASE": "3",
    }
    try:
        async with plant(tmp_path, env) as p:
            ledger = Ledger(p.client)
            before = [await ledger.try_submit(summarize(f"before {n}")) for n in range(REDIS_JOBS)]
            mark = len(p.lines())
            await kill(p.valkey)

            during = [await ledger.try_submit(summarize(f"while Valkey is away {n}")) for n in range(REDIS_JOBS)]
            taken = [job.id for job in during if job is not None]
            assert len(taken) == REDIS_JOBS, ledger.refusal_messages
            # Reads go on: one job, a page of the run's jobs.
            assert (await p.client.get(taken[0])).id == taken[0]
            page = await p.client.list(labels=ledger.labels, page_size=100)
            assert {job.id for job in page.items} >= set(taken)
            # So does the work, without the cache: these end while Valkey is still away.
            await eventually(lambda: ledger.all_ended(taken), timeout=60)
            await p.logged(r"scheduler .*no longer leading the sweeps", after=mark)
            # Each part of the generator that needs Redis says once that it is away, not once a job.
            said = [line for line in p.lines()[mark:] if re.search(r"generator .*Redis is unreachable", line)]
            assert len(said) == 2, said

            back = len(p.lines())
            await p.valkey.restart()
            # Each part finds it again by itself: the scheduler leads again, the generator's cache answers again.
            await p.logged(r"scheduler .*leading the sweeps \(token", after=back)
            repeat = summarize("the same text twice, once Valkey is back")
            for _ in range(2):
                job = await ledger.try_submit(repeat)
                assert job is not None, ledger.refusal_messages
                await eventually(functools.partial(ledger.all_ended, [job.id]), timeout=60)
            assert sum(1 for r in fake.requests if "once Valkey is back" in str(r.body)) == 1
            assert len([line for line in p.lines()[back:] if re.search(r"generator .*Redis answers again", line)]) == 2
            after = [await ledger.try_submit(summarize(f"after {n}")) for n in range(REDIS_JOBS)]
            assert all(job is not None for job in before + after), ledger.refusal_messages

            tally = await ledger.settle(SETTLE)
            report("3 Valkey down and back", tally, ledger)
            assert tally.accepted == tally.completed == 3 * REDIS_JOBS + 2
            assert not ledger.refusals
            assert p.restarts(mark) == []
            assert p.failures(mark) == []
    finally:
        await fake.stop()


# -- 4. the store unavailable: locked by another process, and on a full disk -----------------------------------

STORE_JOBS = 100


@contextlib.contextmanager
def exclusive_lock(path: Path) -> Iterator[None]:
    """The store file write-locked by another connection, as a backup tool or an operator's sqlite3 shell can."""
    # Entered and exited off the event loop, each through asyncio.to_thread, so in two different threads; it is
    # used by one at a time.
    conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("BEGIN EXCLUSIVE")
        yield
        conn.execute("ROLLBACK")
    finally:
        conn.close()


# Heart-beats every 3.3 s: a beat waits up to the store's busy timeout (5 s) for a job's cancel flag, and each job's
# lease must still be renewed within AckWait.
STORE_ENV = {"SYLLABUS_GENERATOR_ACK_WAIT": "10", "SYLLABUS_RENDERER_ACK_WAIT": "10"}


async def store_outage(
    p: Plant, begin: Callable[[], object], end: Callable[[], object], reason: str, text: str = ""
) -> tuple[Ledger, int]:
    """A backlog queued, then the store taken away (`begin`, run off the event loop, as `end` is) while the workers
    take the backlog and callers keep submitting, until both have met the outage; then given back. Returns the
    ledger, settled, and the line of `up`'s output where the outage began."""
    ledger = Ledger(p.client)
    # A backlog for the workers to meet the outage with: queued while the queue is paused.
    await p.client.pause_queue("generator")
    await submit_all(ledger, [summarize(f"queued before the outage {n}") for n in range(STORE_JOBS)])
    mark = len(p.lines())
    await asyncio.to_thread(begin)
    try:
        # The pause is lifted in NATS; the answer, which counts the queue's jobs in the store, may be refused.
        with contextlib.suppress(SyllabusError):
            await p.client.resume_queue("generator")
        submitting = asyncio.create_task(
            submit_all(ledger, [summarize(f"{text}submitted during the outage {n}") for n in range(STORE_JOBS)])
        )
        # Callers are refused (and try again); the workers meet it too, and hand jobs back or hold their outcomes.
        await eventually(lambda: _at_least(ledger.refusals[UNAVAILABLE], 3), timeout=60)
        await p.logged(rf"generator .*the store is unreachable \({re.escape(reason)}\)", after=mark)
        # A worker that starts now meets the outage rather than exiting again and again (the restarts are counted
        # below): it waits for the store if opening it fails (opening writes the schema), or starts and hands its
        # jobs back (on a full disk, opening succeeds when the store's log has room for that write).
        killed, killed_pid = len(p.lines()), p.pid_of("generator")
        os.kill(killed_pid, signal.SIGKILL)
        await p.logged(rf"generator .*the store is unreachable \({re.escape(reason)}\)", after=killed)
    finally:
        await asyncio.to_thread(end)
    await asyncio.wait_for(submitting, 120)
    tally = await ledger.settle(SETTLE)
    assert tally.accepted == tally.completed == 2 * STORE_JOBS, tally
    refusals_are_clean(ledger)
    assert set(ledger.refusal_messages) == {f"UNAVAILABLE: the store is unavailable ({reason}); try again shortly"}
    # No attempt was spent on the outage. The generator killed above may have held jobs (on a full disk, a write
    # that fits in the store's log still succeeds): each of those stalled with it once and ran again, no more.
    spent = [
        i for i, job in ledger.jobs.items() if (job.errors or job.attempt != 1) and not _lost_with(job, killed_pid)
    ]
    assert [ledger.describe(i) for i in spent] == []
    assert [line.split("syllabus.up: ")[1][:40] for line in p.restarts(mark)] == [
        "generator exited with signal SIGKILL aft"
    ]
    assert p.failures(mark) == []
    return ledger, mark


def _lost_with(job: job_pb2.Job, pid: int) -> bool:
    """The job's first attempt ran in the process `pid` (killed), and a second one, started after its stall, ran it
    to its end without an error."""
    first = job.attempts[0] if job.attempts else None
    return (
        job.attempt == 2
        and job.stall_count == 1
        and not job.errors
        and first is not None
        and f"-{pid}-" in first.worker_id
        and job.state == job_pb2.JOB_STATE_SUCCEEDED
    )


async def test_the_store_locked_by_another_process_refuses_cleanly_and_loses_nothing(tmp_path: Path) -> None:
    async with plant(tmp_path, STORE_ENV) as p:
        lock = exclusive_lock(p.home / "store.db")
        ledger, _ = await store_outage(p, lock.__enter__, lambda: lock.__exit__(None, None, None), "database is locked")
        report("4 store locked by another process", ledger.tally(), ledger)


async def _at_least(value: int, least: int) -> bool:
    return value >= least


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A size-limited tmpfs at `path`, or the test skipped with the reason this machine cannot mount one."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root with CAP_SYS_ADMIN is needed): {mounted.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> Path:
    """A file taking every free byte of `directory`'s file system."""
    filler = directory / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in (1 << 20, 4096, 1):
            with contextlib.suppress(OSError):
                while True:
                    os.write(fd, bytes(chunk))
    finally:
        os.close(fd)
    return filler


async def test_the_store_on_a_full_disk_refuses_cleanly_and_loses_nothing(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "home", "64m") as home:
        async with plant(tmp_path, STORE_ENV) as p:
            assert p.home == home
            # Jobs too big for the pages the store has free: each needs the disk.
            big = "a full disk under the store " * 1000
            ledger, _ = await store_outage(
                p, lambda: fill(home), lambda: (home / "filler").unlink(), "database or disk is full", big
            )
            report("4b store on a full disk", ledger.tally(), ledger)


# -- 5. a provider outage -----------------------------------------------------------------------------------------

PROVIDER_JOBS = 40


async def test_a_provider_outage_opens_the_breaker_and_jobs_wait_without_spending_attempts(tmp_path: Path) -> None:
    down = True
    failed_calls = 0

    def answer(request: Request) -> Reply:
        nonlocal failed_calls
        if down:
            failed_calls += 1
            return chat_error(503, "the model is overloaded")
        return chat_json({"summary": "Queues keep messages until they are acknowledged."})

    fake = await FakeHTTP(answer).start()
    env = {
        "SYLLABUS_LLM_PROVIDER": "openai",
        "SYLLABUS_OPENAI_BASE_URL": fake.url,
        "SYLLABUS_OPENAI_MODEL": "fake-model",
        "SYLLABUS_LLM_CACHE_TTL": "0",
        "SYLLABUS_LLM_BREAKER_THRESHOLD": "3",
        "SYLLABUS_LLM_BREAKER_COOLDOWN": "1",
        "SYLLABUS_BACKOFF": "0.5",
        "SYLLABUS_SERVICES": "gateway,generator,scheduler",
    }
    try:
        async with plant(tmp_path, env) as p:
            ledger = Ledger(p.client)
            subscribed = asyncio.Event()
            deferrals = 0
            waited = asyncio.Event()

            async def count_deferrals() -> None:
                nonlocal deferrals
                async for event in p.client.watch_all(subscribed=subscribed):
                    if event.type == E.JOB_EVENT_TYPE_QUEUED and event.error.type == "Deferred":
                        deferrals += 1
                        if deferrals >= PROVIDER_JOBS:
                            waited.set()

            counting = asyncio.create_task(count_deferrals())
            await asyncio.wait_for(subscribed.wait(), 30)
            await submit_all(
                ledger,
                [summarize(f"text {n} to summarize while the provider is down") for n in range(PROVIDER_JOBS)],
            )
            # The breaker is open: jobs are handed back again and again, waiting for the provider.
            await asyncio.wait_for(waited.wait(), 60)
            down = False
            tally = await ledger.settle(SETTLE)
            counting.cancel()
            report("5 provider outage (circuit breaker)", tally, ledger)
            assert tally.accepted == tally.completed == PROVIDER_JOBS
            # Attempts were spent only on calls that really failed (before the breaker opened, and its probes);
            # all the waiting behind the open breaker spent none.
            retries = sum(
                1
                for job_id in ledger.accepted
                for event in ledger.histories[job_id]
                if event.type == E.JOB_EVENT_TYPE_RETRYING
            )
            assert retries == failed_calls, (retries, failed_calls)
            assert failed_calls < PROVIDER_JOBS, failed_calls
            print(f"fault scenario 5: {failed_calls} failed calls, {deferrals} deferrals while the breaker was open")
    finally:
        await fake.stop()


# -- 6. poison jobs ---------------------------------------------------------------------------------------------

POISON_NEIGHBOURS = 100
POOL_ENV = {
    "SYLLABUS_WORKER_ACK_WAIT": "3",
    "SYLLABUS_WORKER_CONCURRENCY": "4",
    "SYLLABUS_SERVICES": "gateway,scheduler",
}
# The neighbours take well under a second on an idle machine, a few on a loaded one. The poison job's later
# attempts wait, by policy, for more than that many times over, so that "it holds no one up" is an order that
# holds by construction, not a race between two activities.
# Three retries 4 s (+-20%) apart: its last attempt begins at least 9.6 s after its first.
RAISING_ENV = POOL_ENV | {"SYLLABUS_BACKOFF": "4"}
# A killed attempt is taken up again once its AckWait (10 s) has passed. One job at a time in each process: the
# poison job is alone in the process it kills. (A process killed with jobs in hand takes them along, those it had
# received but not yet claimed too; these leave no trace of it, and come back after their AckWait, with the
# poison job itself.)
KILLING_ENV = POOL_ENV | {"SYLLABUS_WORKER_ACK_WAIT": "10", "SYLLABUS_WORKER_CONCURRENCY": "1"}


@contextlib.asynccontextmanager
async def task_pool(p: Plant, processes: int) -> AsyncIterator[list[SupervisedService]]:
    """`syllabus worker tests.e2e.poison_tasks:app` processes, each restarted when it dies, as `up` restarts its
    services."""
    child_env = p.stack.env | {"PYTHONPATH": str(ROOT)}
    pool = [
        SupervisedService(
            f"faults-{n}",
            [sys.executable, "-m", "syllabus", "worker", "tests.e2e.poison_tasks:app"],
            child_env,
            RestartPolicy(max_delay=1.0),
            stop_timeout=20.0,
        )
        for n in range(1, processes + 1)
    ]
    for worker in pool:
        worker.start()
    try:
        for name in ("faults.ok", "faults.raise", "faults.exit", "faults.held"):
            await declared(p.nats.url, name)
        yield pool
    finally:
        await asyncio.gather(*(worker.stop() for worker in pool))


async def poison_run(ledger: Ledger, poison: str) -> str:
    """Ordinary jobs around one poison job: half submitted before it, half after. Returns the poison job's id."""
    await submit_all(ledger, [task("faults.ok", n=n) for n in range(POISON_NEIGHBOURS // 2)])
    job = await ledger.submit(task(poison))
    await submit_all(ledger, [task("faults.ok", n=n) for n in range(POISON_NEIGHBOURS // 2, POISON_NEIGHBOURS)])
    return job.id


async def test_a_poison_job_that_always_raises_is_dead_lettered_with_every_error_and_holds_no_one_up(
    tmp_path: Path,
) -> None:
    async with plant(tmp_path, RAISING_ENV) as p:
        async with task_pool(p, 2) as pool:
            ledger = Ledger(p.client)
            poison_id = await poison_run(ledger, "faults.raise")
            tally = await ledger.settle(SETTLE)
            restarts = sum(worker.restarts for worker in pool)
        others = [i for i in ledger.accepted if i != poison_id]
        report("6a poison job that raises (its neighbours)", ledger.tally(others), ledger)
        print(tally.line("6a poison job that raises (all)"))
        assert ledger.tally(others).completed == POISON_NEIGHBOURS
        poison = ledger.jobs[poison_id]
        assert poison.state == E.JOB_STATE_FAILED
        assert [(e.attempt, e.type) for e in poison.errors] == [(n, "RuntimeError") for n in range(1, 5)]
        letter = await p.client.dead_letter(poison_id)
        assert letter.reason == "max attempts (4) exhausted"
        assert [e.message for e in letter.job.errors] == [
            f"poison job: attempt {n} fails as every attempt does" for n in range(1, 5)
        ]
        neighbours_held_up_by_none("6a", ledger, poison, others)
        assert restarts == 0


async def test_a_poison_job_that_kills_its_process_is_dead_lettered_and_the_process_restarted(
    tmp_path: Path,
) -> None:
    async with plant(tmp_path, KILLING_ENV) as p:
        exits: list[int | None] = []
        async with task_pool(p, 2) as pool:
            for worker in pool:
                worker.on_exit = exits.append
            ledger = Ledger(p.client)
            poison_id = await poison_run(ledger, "faults.exit")
            tally = await ledger.settle(SETTLE)
            # The pool is whole again once the poison job is gone.
            await eventually(lambda: _all_running(pool), timeout=30)
        others = [i for i in ledger.accepted if i != poison_id]
        report("6b poison job that kills its process (its neighbours)", ledger.tally(others), ledger)
        print(tally.line("6b poison job that kills its process (all)"))
        assert ledger.tally(others).completed == POISON_NEIGHBOURS
        poison = ledger.jobs[poison_id]
        assert poison.state == E.JOB_STATE_FAILED
        letter = await p.client.dead_letter(poison_id)
        assert letter.reason == "stalled more than 1 times", letter.reason
        assert poison.errors[-1].type == "Stalled"
        assert exits == [-signal.SIGKILL, -signal.SIGKILL], exits
        assert [(a.attempt, a.outcome) for a in poison.attempts] == [(1, E.JOB_STATE_QUEUED), (2, E.JOB_STATE_QUEUED)]
        # No neighbour was in a process the poison job killed (each process runs one job at a time).
        neighbours_held_up_by_none("6b", ledger, poison, others)


def neighbours_held_up_by_none(scenario: str, ledger: Ledger, poison: job_pb2.Job, others: Sequence[str]) -> None:
    """Every job around the poison job succeeded in its first attempt, with no error, and had ended before the
    poison job's last attempt began: its retries held no one up."""
    disturbed = [
        ledger.describe(i)
        for i in others
        if (job := ledger.jobs[i]).state != E.JOB_STATE_SUCCEEDED
        or [a.attempt for a in job.attempts] != [1]
        or job.errors
        or job.stall_count
    ]
    assert disturbed == [], disturbed
    first_submitted = min(ledger.jobs[i].create_time.ToNanoseconds() for i in others)
    ended = max(ledger.jobs[i].end_time.ToNanoseconds() for i in others)
    first_attempt, last_attempt = (poison.attempts[n].start_time.ToNanoseconds() for n in (0, -1))
    assert ended < last_attempt
    print(
        f"fault scenario {scenario}: the neighbours ended {(ended - first_submitted) / 1e9:.2f} s after the first "
        f"was submitted, {(last_attempt - ended) / 1e9:.2f} s before the poison job's last attempt began "
        f"({(last_attempt - first_attempt) / 1e9:.2f} s after its first)"
    )


async def _all_running(pool: Sequence[SupervisedService]) -> bool:
    return all(worker.pid is not None for worker in pool)


# -- 7. the disk under NATS fills up ------------------------------------------------------------------------------


DISK_JOBS = 300


class OvercommittedNats(NatsServer):
    """nats-server allowed to store more than its disk holds, as one whose disk other data shares, or that was sized
    when the disk was emptier, is. (JetStream otherwise sizes its store to 75% of the free space it finds at start,
    and the JOBS stream alone reserves 1 GiB, so on a small disk the topology could not even be declared.)"""

    def config_text(self) -> str:
        return super().config_text().replace("jetstream {\n", "jetstream {\n  max_file_store: 4GB\n", 1)


async def test_the_disk_under_nats_fills_up_submissions_are_refused_cleanly_and_succeed_once_it_has_room(
    tmp_path: Path,
) -> None:
    with tmpfs(tmp_path / "nats", "64m") as nats_dir:
        nats_server = OvercommittedNats(nats_dir, port=unassigned_port())
        async with plant(tmp_path, {"SYLLABUS_PUBLISH_TIMEOUT": "2"}, nats=nats_server) as p:
            ledger = Ledger(p.client)
            flowing = asyncio.Event()

            async def each(accepted: int) -> None:
                if accepted >= DISK_JOBS // 3:
                    flowing.set()

            submitting = asyncio.create_task(
                submit_all(ledger, [summarize(f"a job beside a filling disk {n}") for n in range(DISK_JOBS)], each=each)
            )
            await asyncio.wait_for(flowing.wait(), 60)
            mark = len(p.lines())
            filler = await asyncio.to_thread(fill, nats_dir)
            try:
                refused = ledger.refusals[UNAVAILABLE]
                await eventually(lambda: _at_least(ledger.refusals[UNAVAILABLE], refused + 3), timeout=60)
                # The server goes on (its log no longer fits on the disk, and must not stop it).
                assert p.nats.running
                # A worker that starts now waits for room (declaring its streams writes to the disk), as it waits
                # for a NATS it cannot reach, rather than exiting again and again.
                os.kill(p.pid_of("generator"), signal.SIGKILL)
                await p.logged(r"generator .*NATS is unreachable .*: the service starts once it answers", after=mark)
            finally:
                filler.unlink()
            # nats-server keeps a stream that met a full disk failed until it starts again; then all goes on.
            alone = await ledger.try_submit(summarize("once the disk has room, before nats-server restarts"))
            await p.nats.restart()
            await asyncio.wait_for(submitting, 120)

            tally = await ledger.settle(SETTLE)
            report("7 disk under NATS full", tally, ledger)
            assert tally.completed == tally.accepted == DISK_JOBS + (alone is not None)
            refusals_are_clean(ledger)
            # Refused while the disk was full, and while nats-server restarted.
            assert set(ledger.refusal_messages) <= {
                "UNAVAILABLE: the message broker did not acknowledge the job in time",
                "UNAVAILABLE: no connection to NATS (reconnecting)",
            }, ledger.refusal_messages
            assert [line.split("syllabus.up: ")[1][:40] for line in p.restarts(mark)] == [
                "generator exited with signal SIGKILL aft"
            ]
            assert p.failures(mark) == []
            before_restart = "taken" if alone else "refused"
            print(f"fault scenario 7: with room again, a submission before nats-server restarted was {before_restart}")


# -- 8. the gateway killed under submissions and runs ------------------------------------------------------------

GATEWAY_JOBS = 300
GATEWAY_KILLS = 3
# RunJob calls in flight, past their answer and their job started, at each kill.
HELD_RUNS = 4


async def test_the_gateway_killed_three_times_under_submissions_and_runs_loses_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """SIGKILLed while callers submit, and while RunJob calls wait for held jobs: every submission is sent again
    until answered, under its idempotency key; every run's stream drops after its answer, so each is followed on
    with WatchJob from the last event it heard."""
    caplog.set_level(logging.INFO, logger="syllabus.client")
    async with plant(tmp_path) as p, task_pool(p, processes=1):
        ledger = Ledger(p.client)
        mark = len(p.lines())
        submitted = 0

        async def count(_: int) -> None:
            nonlocal submitted
            submitted += 1

        specs = [summarize(f"a job across gateway crashes {n}") for n in range(GATEWAY_JOBS)]
        submitting = asyncio.create_task(submit_all(ledger, specs, each=count))
        valkey = redis.asyncio.from_url(p.valkey.url)
        ran: list[tuple[job_pb2.Job, job_pb2.JobEvent]] = []
        try:
            for kill in range(1, GATEWAY_KILLS + 1):
                started = [asyncio.Event() for _ in range(HELD_RUNS)]
                runs = [asyncio.create_task(held_run(ledger, f"{kill}.{n}", started[n])) for n in range(HELD_RUNS)]
                await asyncio.wait_for(asyncio.gather(*(event.wait() for event in started)), SETTLE)
                # Spread over the submissions: after a quarter, a half and three quarters of them were accepted.
                share = kill * GATEWAY_JOBS // (GATEWAY_KILLS + 1)
                await eventually(lambda: _at_least(submitted, share), timeout=SETTLE)  # noqa: B023
                before = len(p.lines())
                os.kill(p.pid_of("gateway"), signal.SIGKILL)
                await p.logged(r"syllabus\.up: gateway started", after=before)
                await valkey.rpush(HELD_RELEASE, *["go"] * HELD_RUNS)
                ran += await asyncio.wait_for(asyncio.gather(*runs), SETTLE)
            await asyncio.wait_for(submitting, SETTLE)
        finally:
            await valkey.aclose()

        tally = await ledger.settle(SETTLE)
        report("8 gateway SIGKILLed three times", tally, ledger)
        assert tally.accepted == tally.completed == GATEWAY_JOBS + GATEWAY_KILLS * HELD_RUNS
        refusals_are_clean(ledger)
        followed_on = [r for r in caplog.records if r.getMessage().startswith("run of job ")]
        assert len(followed_on) == GATEWAY_KILLS * HELD_RUNS, [r.getMessage() for r in followed_on]
        # Each run ended on the job's stored end, heard on the watch that followed on.
        assert all(end == ledger.histories[job.id][-1] for job, end in ran), [
            ledger.describe(job.id) for job, end in ran if end != ledger.histories[job.id][-1]
        ][:5]
        exits = [line.split("syllabus.up: ")[1] for line in p.restarts(mark)]
        assert len(exits) == GATEWAY_KILLS, exits
        assert all(exit.startswith("gateway exited with signal SIGKILL") for exit in exits), exits
        assert p.failures(mark) == []


async def held_run(ledger: Ledger, name: str, started: asyncio.Event) -> tuple[job_pb2.Job, job_pb2.JobEvent]:
    """A held job submitted and waited for in one RunJob call, sent again under its idempotency key while refused
    before its answer (a gateway still starting); `started` is set once the run heard the job start. The job, and
    the end the run gave."""

    def heard(event: job_pb2.JobEvent) -> None:
        if event.type == E.JOB_EVENT_TYPE_STARTED:
            started.set()

    options = ledger.options(idempotency_key=f"{ledger.run}-held-{name}")
    pause = 0.1
    while True:
        try:
            result = await ledger.client.run(task("faults.held"), options, on_event=heard)
        except SyllabusError as exc:
            ledger.refused(exc)
            if exc.code != UNAVAILABLE:
                raise
        else:
            ledger.record(result.job)
            return result.job, result.end
        await asyncio.sleep(pause)  # a client's back-off before trying again, not a synchronisation
        pause = min(pause * 2, 1.0)
