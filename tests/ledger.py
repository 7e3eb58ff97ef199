"""A ledger of the jobs a fault test submits: which the gateway accepted, which it refused and with what status,
and, read back once the run is over, how each accepted job ended: completed, completed twice, or lost.

Every job the ledger submits carries the label `ledger=<run>`, so the jobs of one run are found with one ListJobs
filter, children included (a course's lesson, quiz and render jobs inherit their parent's labels). A job counts as
completed twice when its history holds more than one SUCCEEDED event or its record more than one attempt that
ended SUCCEEDED; as lost when it was accepted and has no record, or has not ended by the deadline.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import grpc

from syllabus.client import SyllabusClient, SyllabusError
from syllabus.v1 import job_pb2

E = job_pb2
ENDED = (E.JOB_STATE_SUCCEEDED, E.JOB_STATE_FAILED, E.JOB_STATE_CANCELED)
# WatchJob streams open at once while histories are read back.
_HISTORY_READERS = 16
# Pauses between tries of a refused submission: a client's back-off, doubling up to the last.
_RETRY_FIRST = 0.1
_RETRY_MAX = 1.0


@dataclass(frozen=True)
class Tally:
    """What became of a run's accepted jobs."""

    accepted: int
    completed: int
    duplicated: int
    lost: int
    # Accepted jobs that ended FAILED (dead-lettered), and CANCELED.
    failed: int = 0
    canceled: int = 0

    def line(self, scenario: str) -> str:
        return (
            f"fault scenario {scenario}: accepted={self.accepted} completed={self.completed} "
            f"duplicated={self.duplicated} lost={self.lost} failed={self.failed} canceled={self.canceled}"
        )


@dataclass
class Ledger:
    client: SyllabusClient
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:12])
    # Accepted jobs in the order the gateway accepted them.
    accepted: dict[str, job_pb2.Job] = field(default_factory=dict)
    # Every refusal the gateway answered, by status code (a submission tried again counts each refusal).
    refusals: collections.Counter[grpc.StatusCode] = field(default_factory=collections.Counter)
    refusal_messages: list[str] = field(default_factory=list)
    # Read back by settle().
    jobs: dict[str, job_pb2.Job] = field(default_factory=dict)
    histories: dict[str, list[job_pb2.JobEvent]] = field(default_factory=dict)

    @property
    def labels(self) -> dict[str, str]:
        return {"ledger": self.run}

    def options(self, **fields: object) -> job_pb2.JobOptions:
        """JobOptions carrying the ledger's label, with `fields` set."""
        options = job_pb2.JobOptions(**fields)  # type: ignore[arg-type]
        options.labels.update(self.labels)
        return options

    def record(self, job: job_pb2.Job) -> None:
        """A job accepted by another call (CreateCourse, say) that the ledger is to follow."""
        self.accepted.setdefault(job.id, job)

    def refused(self, error: SyllabusError) -> None:
        self.refusals[error.code] += 1
        if len(self.refusal_messages) < 20:
            self.refusal_messages.append(f"{error.code.name}: {error.message}")

    async def try_submit(self, spec: job_pb2.JobSpec, options: job_pb2.JobOptions | None = None) -> job_pb2.Job | None:
        """One submission: the job if accepted, None (and the refusal noted) if the gateway refused it."""
        try:
            job, _ = await self.client.submit(spec, options or self.options())
        except SyllabusError as exc:
            self.refused(exc)
            return None
        self.accepted.setdefault(job.id, job)
        return job

    async def submit(
        self,
        spec: job_pb2.JobSpec,
        options: job_pb2.JobOptions | None = None,
        *,
        key: str = "",
        retry: Iterable[grpc.StatusCode] = (grpc.StatusCode.UNAVAILABLE,),
        deadline: float = 60.0,
    ) -> job_pb2.Job:
        """Submit until accepted, trying again after the refusals in `retry` as a client would, with back-off. The
        idempotency key (made up when not given) makes a try whose answer was lost return the first job."""
        options = options or self.options()
        options.idempotency_key = options.idempotency_key or key or f"{self.run}-{uuid.uuid4().hex}"
        again = frozenset(retry)
        pause = _RETRY_FIRST
        async with asyncio.timeout(deadline):
            while True:
                try:
                    job, _ = await self.client.submit(spec, options)
                except SyllabusError as exc:
                    self.refused(exc)
                    if exc.code not in again:
                        raise
                else:
                    self.accepted.setdefault(job.id, job)
                    return job
                await asyncio.sleep(pause)  # a client's back-off before trying again, not a synchronisation
                pause = min(pause * 2, _RETRY_MAX)

    async def ended(self) -> dict[str, job_pb2.Job]:
        """The run's jobs that have ended (children included), read with one filtered ListJobs."""
        found: dict[str, job_pb2.Job] = {}
        async for job in self.client.iter_jobs(states=ENDED, labels=self.labels, page_size=1000):
            found[job.id] = job
        return found

    async def all_ended(self, ids: Iterable[str] | None = None) -> bool:
        wanted = set(self.accepted if ids is None else ids)
        with contextlib.suppress(SyllabusError):
            return wanted <= set(await self.ended())
        return False

    async def settle(self, timeout: float = 60.0) -> Tally:
        """Wait (up to `timeout`) for every accepted job to end, then read each one's record and history."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                while not await self.all_ended():  # noqa: ASYNC110  a condition re-checked, not a fixed wait
                    await asyncio.sleep(0.2)
        self.jobs = {}
        async for job in self.client.iter_jobs(labels=self.labels, page_size=1000):
            self.jobs[job.id] = job
        for job_id in self.accepted.keys() - self.jobs.keys():
            with contextlib.suppress(SyllabusError):
                self.jobs[job_id] = await self.client.get(job_id)
        readers = asyncio.Semaphore(_HISTORY_READERS)

        async def read(job_id: str) -> None:
            async with readers:
                self.histories[job_id] = await self.history(job_id)

        ended = [job_id for job_id in self.accepted if job_id in self.jobs and self.jobs[job_id].state in ENDED]
        await asyncio.gather(*(read(job_id) for job_id in ended))
        return self.tally()

    async def history(self, job_id: str, timeout: float = 30.0) -> list[job_pb2.JobEvent]:
        """Every stored event of an ended job (the watch replays them and ends after the final one)."""
        events: list[job_pb2.JobEvent] = []
        async with asyncio.timeout(timeout):
            async for event in self.client.watch(job_id):
                events.append(event)
        return events

    def successes(self, job_id: str) -> int:
        """How many times the job completed: its SUCCEEDED events, or its attempts that ended SUCCEEDED."""
        events = sum(1 for e in self.histories.get(job_id, ()) if e.type == E.JOB_EVENT_TYPE_SUCCEEDED)
        job = self.jobs.get(job_id)
        attempts = 0 if job is None else sum(1 for a in job.attempts if a.outcome == E.JOB_STATE_SUCCEEDED)
        return max(events, attempts)

    def tally(self, ids: Iterable[str] | None = None) -> Tally:
        """The counts over `ids` (by default every accepted job), from what settle() read."""
        chosen = list(self.accepted if ids is None else ids)
        states = [self.jobs[i].state if i in self.jobs else E.JOB_STATE_UNSPECIFIED for i in chosen]
        return Tally(
            accepted=len(chosen),
            completed=sum(1 for i, s in zip(chosen, states, strict=True) if s == E.JOB_STATE_SUCCEEDED),
            duplicated=sum(1 for i in chosen if self.successes(i) > 1),
            lost=sum(1 for s in states if s not in ENDED),
            failed=states.count(E.JOB_STATE_FAILED),
            canceled=states.count(E.JOB_STATE_CANCELED),
        )

    def describe(self, job_id: str) -> str:
        """One job as the run left it, for an assertion message."""
        job = self.jobs.get(job_id)
        if job is None:
            return f"{job_id}: no record"
        events = [E.JobEventType.Name(e.type).removeprefix("JOB_EVENT_TYPE_") for e in self.histories.get(job_id, ())]
        return f"{job_id} ({job.kind}): {E.JobState.Name(job.state)}, attempt {job.attempt}, events {events}"

    def unfinished(self, ids: Iterable[str] | None = None) -> list[str]:
        chosen = self.accepted if ids is None else ids
        return [self.describe(i) for i in chosen if i not in self.jobs or self.jobs[i].state not in ENDED][:10]
