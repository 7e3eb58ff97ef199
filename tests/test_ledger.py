"""The fault scenarios' ledger counts what it is meant to: a job completed twice, by its events or its attempts, and
a job lost, without a record or not ended, are each counted, whatever else the run did."""

from __future__ import annotations

from typing import Any, cast

from syllabus.client import SyllabusClient
from syllabus.v1 import job_pb2
from tests.ledger import Ledger, Tally

E = job_pb2


def job(job_id: str, state: job_pb2.JobState, *outcomes: job_pb2.JobState) -> job_pb2.Job:
    return E.Job(
        id=job_id,
        state=state,
        attempts=[E.JobAttempt(attempt=n, outcome=o) for n, o in enumerate(outcomes, 1)],
    )


def events(*types: job_pb2.JobEventType) -> list[job_pb2.JobEvent]:
    return [E.JobEvent(type=t) for t in types]


def test_the_tally_counts_completions_duplicates_and_losses() -> None:
    ledger = Ledger(cast(SyllabusClient, cast(Any, None)))
    done, queued, stalled, retried = (
        E.JOB_EVENT_TYPE_SUCCEEDED,
        E.JOB_EVENT_TYPE_QUEUED,
        E.JOB_EVENT_TYPE_STALLED,
        E.JOB_EVENT_TYPE_RETRYING,
    )
    rows = {
        "once": (job("once", E.JOB_STATE_SUCCEEDED, E.JOB_STATE_SUCCEEDED), events(queued, done)),
        # Run again after a stall, and completed by both attempts: its record says so.
        "twice-by-attempts": (
            job("twice-by-attempts", E.JOB_STATE_SUCCEEDED, E.JOB_STATE_SUCCEEDED, E.JOB_STATE_SUCCEEDED),
            events(queued, done),
        ),
        # Two SUCCEEDED events, though the record kept one attempt.
        "twice-by-events": (
            job("twice-by-events", E.JOB_STATE_SUCCEEDED, E.JOB_STATE_QUEUED, E.JOB_STATE_SUCCEEDED),
            events(queued, stalled, done, done),
        ),
        "dead-lettered": (
            job("dead-lettered", E.JOB_STATE_FAILED, E.JOB_STATE_RETRYING, E.JOB_STATE_FAILED),
            events(queued, retried),
        ),
        "still-queued": (job("still-queued", E.JOB_STATE_QUEUED), events(queued)),
    }
    for job_id, (record, history) in rows.items():
        ledger.record(record)
        ledger.jobs[job_id] = record
        ledger.histories[job_id] = history
    ledger.record(E.Job(id="no-record"))

    assert ledger.tally() == Tally(accepted=6, completed=3, duplicated=2, lost=2, failed=1, canceled=0)
    assert ledger.tally(["once", "dead-lettered"]) == Tally(accepted=2, completed=1, duplicated=0, lost=0, failed=1)
    assert [line.split(" ")[0].rstrip(":") for line in ledger.unfinished()] == ["still-queued", "no-record"]
