"""Outages do not spend attempts: NATS stopped for real, and the store cut off, while jobs run and finish.

The store outage is injected around the real embedded store (no MongoDB server can run here): while it is
"down", every call raises pymongo's AutoReconnect, the error the MongoDB store raises when its server is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pymongo.errors
import pytest
import pytest_asyncio
from google.protobuf.timestamp_pb2 import Timestamp
from grpc_health.v1 import health_pb2, health_pb2_grpc
from nats.aio.client import Client as NatsClient
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import KeyNotFoundError

from gateway.readiness import Readiness
from gateway.services import add_health_and_reflection, add_services
from onemachine.servers import NatsServer
from scheduler.relay import DueRelay
from syllabus import outages
from syllabus.deadletters import DeadLetters
from syllabus.errors import BrokerUnavailable
from syllabus.jetstream import connect, ensure_topology
from syllabus.presence import Presence, workers_bucket
from syllabus.runtime import Runtime
from syllabus.store.base import JobChange, Updated
from syllabus.store.embedded import EmbeddedStore
from syllabus.submit import build_job
from syllabus.topology import Topology
from syllabus.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from syllabus.worker import Defer, JobContext, PermanentError, Worker
from tests.pipeline.conftest import WORKER_CONFIG, wiring
from tests.pipeline.logwatch import LogWatch
from tests.pipeline.test_jobs import types
from tests.storefaults import one_by_one

E = job_pb2


class FlakyStore(EmbeddedStore):
    """The real embedded store, cut off on demand as a MongoDB store is when its server goes away."""

    down = False
    # Writes that would fail a job, refused this many times before the store answers again.
    refuse_failing = 0
    # Writes that leave a job in a state, stored but their answer lost (the connection dropped after): how many
    # times, by that state.
    lose_answer: dict[int, int]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lose_answer = {}

    def _check(self) -> None:
        if self.down:
            raise pymongo.errors.AutoReconnect("connection refused (injected)")

    async def get_job(self, job_id: str) -> job_pb2.Job | None:
        self._check()
        return await super().get_job(job_id)

    async def update_job(self, job_id: str, change: JobChange) -> Updated:
        self._check()
        if self.refuse_failing:
            current = await super().get_job(job_id)
            after = change(current) if current is not None else None
            if after is not None and after.state == E.JOB_STATE_FAILED:
                self.refuse_failing -= 1
                raise pymongo.errors.AutoReconnect("connection lost mid-write (injected)")
        updated = await super().update_job(job_id, change)
        if updated.applied and updated.job and self.lose_answer.get(updated.job.state, 0):
            self.lose_answer[updated.job.state] -= 1
            raise pymongo.errors.AutoReconnect("connection lost before the answer (injected)")
        return updated

    async def update_jobs(self, changes: Sequence[tuple[str, JobChange]]) -> list[Updated]:
        return await one_by_one(self)(changes)


@dataclass
class Rig:
    """A pipeline on a NATS server of its own (stopped and started by the test) and a store it can cut off."""

    home: Path
    server: NatsServer
    store: FlakyStore
    jobs: job_service_pb2_grpc.JobServiceStub
    health: health_pb2_grpc.HealthStub
    logs: LogWatch
    nc: NatsClient
    topology: Topology
    go: asyncio.Event = field(default_factory=asyncio.Event)
    finished: asyncio.Event = field(default_factory=asyncio.Event)
    nats_lost: asyncio.Event = field(default_factory=asyncio.Event)
    nats_back: asyncio.Event = field(default_factory=asyncio.Event)
    deferred: bool = False

    async def stop_nats(self) -> None:
        self.nats_lost.clear()
        self.nats_back.clear()
        await self.server.stop()
        await self.nats_lost.wait()

    async def start_nats(self) -> None:
        """Start NATS again, on its port and data, and wait for the rig's connection to be back."""
        port = int(self.server.url.rsplit(":", 1)[1])
        self.server = NatsServer(self.home / "nats", port=port)
        await self.server.start()
        await self.nats_back.wait()

    async def submit(self, text: str, **options: Any) -> job_pb2.Job:
        request = job_service_pb2.SubmitJobRequest(
            spec=E.JobSpec(summarize_text=E.SummarizeText(text=text)), options=E.JobOptions(**options)
        )
        response: job_service_pb2.SubmitJobResponse = await self.jobs.SubmitJob(request, timeout=30)
        return response.job

    async def outcome(self, job_id: str) -> tuple[list[job_pb2.JobEvent], job_pb2.Job]:
        """The job's events until it ends, and its record then."""
        history = await self.history(job_id)
        stored = await self.store.get_job(job_id)
        assert stored is not None
        return history, stored

    async def history(self, job_id: str) -> list[job_pb2.JobEvent]:
        call = self.jobs.WatchJob(job_service_pb2.WatchJobRequest(job_id=job_id), timeout=90)
        return [response.event async for response in call]

    async def until_started(self, job_id: str) -> None:
        call = self.jobs.WatchJob(job_service_pb2.WatchJobRequest(job_id=job_id), timeout=30)
        async for response in call:
            if response.event.type == E.JOB_EVENT_TYPE_STARTED:
                call.cancel()
                return


@pytest_asyncio.fixture
async def rig(tmp_path: Path) -> AsyncIterator[Rig]:
    watch = LogWatch()
    root = logging.getLogger()
    root.addHandler(watch)
    previous_level = root.level
    root.setLevel(logging.INFO)
    server = NatsServer(tmp_path / "nats")
    await server.start()
    topology = Topology("outages")
    store = FlakyStore(tmp_path / "store.db")
    await store.open()
    rig_holder: list[Rig] = []
    readiness = Readiness()

    async def on_change(connected: bool) -> None:
        await readiness.on_nats(connected)
        (rig_holder[0].nats_back if connected else rig_holder[0].nats_lost).set()

    nc = await connect(server.url, "pytest-outages", on_change=on_change)
    await ensure_topology(nc, topology)
    grpc_server = grpc.aio.server()
    streams = add_services(grpc_server, wiring(nc, store, topology))
    await readiness.attach(add_health_and_reflection(grpc_server))
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    await grpc_server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    rig = Rig(
        tmp_path,
        server,
        store,
        job_service_pb2_grpc.JobServiceStub(channel),
        health_pb2_grpc.HealthStub(channel),
        watch,
        nc,
        topology,
    )
    rig_holder.append(rig)

    async def scripted(ctx: JobContext) -> job_pb2.JobResult:
        command = ctx.job.spec.summarize_text.text
        if command == "wait":
            await rig.go.wait()
        elif command == "publish":
            # Needs NATS while it runs: during an outage this fails as any handler's broker call would.
            await rig.go.wait()
            await nc.jetstream(timeout=2).publish(topology.dead_letter_subject("probe"), b"")
        elif command == "read-store":
            await rig.go.wait()
            await store.get_job(ctx.job.id)
        elif command == "fail":
            raise PermanentError("this job cannot work")
        elif command == "defer-once" and ctx.attempt == 1 and not rig.deferred:
            rig.deferred = True
            raise Defer(0.05, "not yet")
        elif command == "own-verdict":
            raise PermanentError("the handler gives up on its own") from pymongo.errors.AutoReconnect("gone")
        rig.finished.set()
        return E.JobResult(text=f"done by attempt {ctx.attempt}")

    worker = Worker(
        service="generator",
        handlers={"summarize_text": scripted},
        runtime=Runtime.build(nc, store, topology),
        config=WORKER_CONFIG,
    )
    running = asyncio.create_task(worker.run())
    try:
        yield rig
    finally:
        rig.go.set()
        store.down = False
        if not rig.server.running:
            await rig.start_nats()
        worker.stop()
        await running
        await channel.close()
        await grpc_server.stop(grace=None)
        await streams.close()
        with contextlib.suppress(Exception):
            await nc.close()
        await store.close()
        await rig.server.stop()
        root.removeHandler(watch)
        root.setLevel(previous_level)


def warnings_of(logs: LogWatch) -> list[str]:
    return logs.at_least(logging.WARNING)


def no_errors(logs: LogWatch) -> list[str]:
    return logs.at_least(logging.ERROR)


async def test_a_job_finished_while_nats_is_down_succeeds_on_its_first_attempt(rig: Rig) -> None:
    job = await rig.submit("wait", max_attempts=1)
    await rig.until_started(job.id)
    await rig.stop_nats()
    rig.go.set()
    await rig.finished.wait()
    await rig.logs.wait_for("finished jobs keep their outcome until it answers")
    await rig.start_nats()

    history, stored = await rig.outcome(job.id)
    assert (stored.state, stored.attempt, list(stored.errors)) == (E.JOB_STATE_SUCCEEDED, 1, [])
    assert types(history).count("SUCCEEDED") == 1
    assert "RETRYING" not in types(history)
    assert no_errors(rig.logs) == []
    # One line for the lost connection; the reconnect and the waiting outcome are said at INFO.
    assert [line for line in warnings_of(rig.logs) if "syllabus" in line] == [
        f"WARNING syllabus.jetstream: lost the connection to NATS at {rig.server.url}; reconnecting"
    ]


async def test_a_job_that_meets_a_nats_outage_is_handed_back_without_spending_its_attempt(rig: Rig) -> None:
    job = await rig.submit("publish", max_attempts=1)
    await rig.until_started(job.id)
    await rig.stop_nats()
    rig.go.set()
    await rig.logs.wait_for("handed back without spending an attempt")
    await rig.start_nats()

    history, stored = await rig.outcome(job.id)
    # With one attempt allowed, a counted attempt would have dead-lettered it.
    assert (stored.state, stored.attempt) == (E.JOB_STATE_SUCCEEDED, 1)
    assert types(history) == ["QUEUED", "STARTED", "QUEUED", "STARTED", "SUCCEEDED"]
    handed_back = history[2]
    assert (handed_back.error.type, handed_back.error.attempt) == ("Deferred", 1)
    assert "NATS is unreachable" in handed_back.error.message
    assert no_errors(rig.logs) == []


async def test_a_job_finished_while_the_store_is_down_succeeds_on_its_first_attempt(rig: Rig) -> None:
    job = await rig.submit("wait", max_attempts=1)
    await rig.until_started(job.id)
    rig.store.down = True
    rig.go.set()
    await rig.logs.wait_for("the store is unreachable")
    rig.store.down = False

    history, stored = await rig.outcome(job.id)
    assert (stored.state, stored.attempt, list(stored.errors)) == (E.JOB_STATE_SUCCEEDED, 1, [])
    assert types(history) == ["QUEUED", "STARTED", "SUCCEEDED"]
    assert no_errors(rig.logs) == []
    assert [line for line in warnings_of(rig.logs) if "syllabus" in line] == [
        "WARNING syllabus.worker: the store is unreachable (connection refused (injected)): "
        "finished jobs keep their outcome until it answers"
    ]


async def test_a_job_that_meets_a_store_outage_is_handed_back_and_runs_again(rig: Rig) -> None:
    job = await rig.submit("read-store", max_attempts=1)
    await rig.until_started(job.id)
    rig.store.down = True
    rig.go.set()
    await rig.logs.wait_for("handed back without spending an attempt")
    rig.store.down = False

    history, stored = await rig.outcome(job.id)
    assert (stored.state, stored.attempt) == (E.JOB_STATE_SUCCEEDED, 1)
    assert types(history) == ["QUEUED", "STARTED", "QUEUED", "STARTED", "SUCCEEDED"]
    assert no_errors(rig.logs) == []


async def test_a_handlers_own_verdict_on_an_outage_stands(rig: Rig) -> None:
    """A JobError is the handler deciding, even when an outage caused it: here it gives up for good."""
    job = await rig.submit("own-verdict")
    history = await rig.history(job.id)
    assert types(history) == ["QUEUED", "STARTED", "DEAD_LETTERED", "FAILED"]
    assert history[-1].error.message == "the handler gives up on its own"


async def test_a_frozen_nats_fails_a_submission_and_a_dead_letter_copy_at_their_timeouts(rig: Rig) -> None:
    # Connected but answering nothing (a stopped process, a partition the client has not noticed yet): no
    # acknowledgement ever comes, so the submission ends at its own deadline, its record removed again.
    submitter = Runtime.build(rig.nc, rig.store, rig.topology, 0.5).submitter
    job = build_job(
        E.JobSpec(summarize_text=E.SummarizeText(text="ok")), E.JobOptions(), tenant="t", default_max_attempts=1
    )
    assert rig.server.pid is not None
    os.kill(rig.server.pid, signal.SIGSTOP)
    try:
        with pytest.raises(BrokerUnavailable, match="did not acknowledge the job in time"):
            await submitter.submit([job])
        # The worker's copy of a dead letter likewise: it fails, so the job keeps its message (tested apart).
        with pytest.raises(NatsTimeout):
            await DeadLetters(rig.nc, rig.topology, timeout=0.5).put(job, "subject", "permanent error")
    finally:
        os.kill(rig.server.pid, signal.SIGCONT)
    assert await rig.store.get_job(job.id) is None


async def test_a_presence_stopped_while_its_write_waits_on_a_frozen_nats_ends_and_deletes_its_entry(rig: Rig) -> None:
    presence = Presence(rig.nc, rig.topology, "generator", 1, lambda: ())
    assert rig.server.pid is not None
    os.kill(rig.server.pid, signal.SIGSTOP)
    try:
        running = asyncio.create_task(presence.run())
        await asyncio.sleep(0)  # one step of the loop: the run goes as far as its first request, then waits
        assert rig.nc._resp_map, "the presence's first request is out, unanswered"
        presence.stop()
    finally:
        os.kill(rig.server.pid, signal.SIGCONT)
    # The answer comes once NATS runs again, as the stop is already asked for: the run still ends.
    await asyncio.wait_for(running, 30)
    kv = await workers_bucket(rig.nc, rig.topology)
    with pytest.raises(KeyNotFoundError):
        await kv.get(presence.key)


async def test_while_nats_is_down_health_is_not_serving_and_submissions_fail_fast(rig: Rig) -> None:
    Status = health_pb2.HealthCheckResponse
    watch = rig.health.Watch(health_pb2.HealthCheckRequest(service="syllabus.v1.JobService"), timeout=60)
    statuses = watch.__aiter__()
    assert (await anext(statuses)).status == Status.SERVING
    await rig.stop_nats()
    assert (await anext(statuses)).status == Status.NOT_SERVING
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await rig.submit("wait")
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    # Refused for the lost connection, not after waiting out the publish timeout for an ack.
    assert refused.value.details() == "no connection to NATS (reconnecting)"
    await rig.start_nats()
    assert (await anext(statuses)).status == Status.SERVING
    watch.cancel()
    job = await rig.submit("ok")
    assert types(await rig.history(job.id))[-1] == "SUCCEEDED"


async def test_a_worker_started_while_nats_is_away_starts_once_it_answers(rig: Rig) -> None:
    await rig.stop_nats()
    late = Worker(
        service="renderer", handlers={}, runtime=Runtime.build(rig.nc, rig.store, rig.topology), config=WORKER_CONFIG
    )
    running = asyncio.create_task(late.run())
    await rig.logs.wait_for("the worker starts once it answers")
    await rig.start_nats()
    await rig.logs.wait_for("renderer worker running")
    info = await rig.nc.jetstream().consumer_info(
        rig.topology.jobs_stream, rig.topology.consumer("renderer", "interactive")
    )
    assert info.config.durable_name == rig.topology.consumer("renderer", "interactive")
    late.stop()
    await running
    assert no_errors(rig.logs) == []


async def test_a_worker_stopped_before_nats_answers_exits_without_starting(rig: Rig) -> None:
    await rig.stop_nats()
    late = Worker(
        service="renderer", handlers={}, runtime=Runtime.build(rig.nc, rig.store, rig.topology), config=WORKER_CONFIG
    )
    running = asyncio.create_task(late.run())
    await rig.logs.wait_for("the worker starts once it answers")
    late.stop()
    await running
    assert not any("renderer worker running" in record.getMessage() for record in rig.logs.records)


def in_seconds(seconds: float) -> Timestamp:
    at = Timestamp()
    at.FromNanoseconds(time.time_ns() + int(seconds * 1e9))
    return at


@contextlib.asynccontextmanager
async def relaying(rig: Rig) -> AsyncIterator[asyncio.Task[None]]:
    stop = asyncio.Event()
    task = asyncio.create_task(DueRelay(Runtime.build(rig.nc, rig.store, rig.topology)).run(stop))
    try:
        yield task
    finally:
        stop.set()
        await task


async def test_the_relay_outlives_a_nats_outage_and_relays_after_it(rig: Rig) -> None:
    async with relaying(rig) as relay:
        await rig.logs.wait_for("scheduler relaying delayed jobs")
        await rig.stop_nats()
        await rig.logs.wait_for("lost the connection to NATS")
        await rig.start_nats()
        job = await rig.submit("ok", run_at=in_seconds(1))
        history = await rig.history(job.id)
        assert not relay.done()
    assert types(history) == ["SCHEDULED", "QUEUED", "STARTED", "SUCCEEDED"]
    assert no_errors(rig.logs) == []


async def test_a_due_job_met_by_a_store_outage_is_relayed_once_the_store_answers(rig: Rig) -> None:
    job = await rig.submit("ok", run_at=in_seconds(1))
    rig.store.down = True
    async with relaying(rig) as relay:
        await rig.logs.wait_for("the store is unreachable (connection refused (injected)): delayed jobs wait for it")
        rig.store.down = False
        history = await rig.history(job.id)
        assert not relay.done()
    assert types(history) == ["SCHEDULED", "QUEUED", "STARTED", "SUCCEEDED"]
    assert no_errors(rig.logs) == []
    assert any("the store answers again" in record.getMessage() for record in rig.logs.records)


async def test_a_dead_letter_whose_failure_could_not_be_stored_is_kept_once(rig: Rig) -> None:
    """The letter is stored, then the store loses the write that fails the job; the step is tried again, past
    JetStream's duplicate window, and the job still has one letter (the DLQ keeps one per job)."""
    js = rig.nc.jetstream()
    dlq = (await js.stream_info(rig.topology.dlq_stream)).config
    dlq.duplicate_window = 0.1  # the least JetStream allows, shorter than the first retry back-off
    await js.update_stream(dlq)
    rig.store.refuse_failing = 3
    job = await rig.submit("fail")
    history = await rig.history(job.id)
    assert types(history) == ["QUEUED", "STARTED", "DEAD_LETTERED", "FAILED"]
    assert rig.store.refuse_failing == 0
    subject = rig.topology.dead_letter_subject(job.id)
    stored = await js.stream_info(rig.topology.dlq_stream, subjects_filter=subject)
    assert stored.state.subjects == {subject: 1}
    assert no_errors(rig.logs) == []


async def test_a_dead_letter_whose_stored_failure_lost_its_answer_is_announced_once(rig: Rig) -> None:
    """The failure is stored but the worker never hears so: trying again, it finds the failure it stored and
    announces it, with its error, instead of failing the job a second time."""
    rig.store.lose_answer[E.JOB_STATE_FAILED] = 1
    job = await rig.submit("fail")
    history = await rig.history(job.id)
    assert rig.store.lose_answer == {E.JOB_STATE_FAILED: 0}
    assert types(history) == ["QUEUED", "STARTED", "DEAD_LETTERED", "FAILED"]
    stored = await rig.store.get_job(job.id)
    assert stored is not None and len(stored.errors) == 1
    assert [event.error for event in history[2:]] == [stored.errors[0]] * 2
    assert (stored.errors[0].attempt, stored.errors[0].message) == (1, "this job cannot work")
    subject = rig.topology.dead_letter_subject(job.id)
    letters = await rig.nc.jetstream().stream_info(rig.topology.dlq_stream, subjects_filter=subject)
    assert letters.state.subjects == {subject: 1}
    error = stored.errors[0]
    assert (
        f"WARNING syllabus.worker: job {job.id} dead-lettered: permanent error ({error.type}: {error.message})"
        in warnings_of(rig.logs)
    )
    assert no_errors(rig.logs) == []


async def test_a_deferral_whose_stored_hand_back_lost_its_answer_is_announced_once(rig: Rig) -> None:
    """Trying again, the worker finds its hand-back stored (under its lease, with the attempt given back)."""
    rig.store.lose_answer[E.JOB_STATE_QUEUED] = 1
    job = await rig.submit("defer-once")
    history, stored = await rig.outcome(job.id)
    assert rig.store.lose_answer == {E.JOB_STATE_QUEUED: 0}
    assert types(history) == ["QUEUED", "STARTED", "QUEUED", "STARTED", "SUCCEEDED"]
    assert (history[2].error.type, history[2].error.message) == ("Deferred", "not yet")
    assert (stored.attempt, stored.result.text) == (1, "done by attempt 1")
    assert f"INFO syllabus.worker: job {job.id} deferred for 0.1s: not yet" in rig.logs.at_least(logging.INFO)
    assert no_errors(rig.logs) == []


async def test_a_cancel_whose_stored_end_lost_its_answer_is_announced_once(rig: Rig) -> None:
    rig.store.lose_answer[E.JOB_STATE_CANCELED] = 1
    job = await rig.submit("wait")
    await rig.until_started(job.id)
    await rig.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=job.id), timeout=30)
    history, stored = await rig.outcome(job.id)
    assert rig.store.lose_answer == {E.JOB_STATE_CANCELED: 0}
    assert types(history) == ["QUEUED", "STARTED", "CANCEL_REQUESTED", "CANCELED"]
    assert stored.state == E.JOB_STATE_CANCELED
    assert int((await rig.nc.jetstream().stream_info(rig.topology.jobs_stream)).state.messages) == 0
    assert no_errors(rig.logs) == []


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (BrokerUnavailable("x"), outages.NATS),
        (pymongo.errors.ServerSelectionTimeoutError("x"), outages.STORE),
        (RuntimeError("wrapped"), None),
        (TimeoutError(), None),
        (ValueError("bad input"), None),
    ],
)
def test_what_counts_as_an_outage(exc: BaseException, expected: str | None) -> None:
    assert outages.unreachable(exc) == expected


def test_an_outage_is_found_through_explicit_causes_only() -> None:
    def raised(exc: BaseException, cause: BaseException | None, context: BaseException | None) -> BaseException:
        exc.__cause__ = cause
        exc.__context__ = context
        return exc

    assert outages.unreachable(raised(RuntimeError(), pymongo.errors.AutoReconnect("x"), None)) == outages.STORE
    assert outages.unreachable(raised(RuntimeError(), None, pymongo.errors.AutoReconnect("x"))) is None


def _lines(records: Sequence[logging.LogRecord]) -> list[str]:
    return [record.getMessage() for record in records]


def test_an_outage_is_logged_once_until_it_ends() -> None:
    logger = logging.getLogger("tests.outages")
    watch = LogWatch()
    logger.addHandler(watch)
    logger.setLevel(logging.INFO)
    try:
        log = outages.OutageLog(logger)
        for _ in range(3):
            log.down(outages.STORE, RuntimeError("gone"), "waiting")
        log.up(outages.STORE)
        log.up(outages.STORE)
        log.down(outages.STORE, RuntimeError("gone again"), "waiting")
    finally:
        logger.removeHandler(watch)
    assert _lines(watch.records) == [
        "the store is unreachable (gone): waiting",
        "the store answers again",
        "the store is unreachable (gone again): waiting",
    ]


async def test_closing_a_connection_on_purpose_is_no_lost_connection(nats_url: str) -> None:
    watch = LogWatch()
    logger = logging.getLogger("syllabus.jetstream")
    logger.addHandler(watch)
    heard: list[bool] = []

    async def on_change(connected: bool) -> None:
        heard.append(connected)

    try:
        nc = await connect(nats_url, "pytest-close", on_change=on_change)
        await nc.close()
        drained = await connect(nats_url, "pytest-drain", on_change=on_change)
        await drained.drain()
    finally:
        logger.removeHandler(watch)
    assert (heard, warnings_of(watch)) == ([], [])
