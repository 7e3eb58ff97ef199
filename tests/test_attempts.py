"""Attempts with their worker, stalls and duplicate messages, as the claim and the settling changes write them."""

from __future__ import annotations

import pytest

from syllabus import lifecycle
from syllabus.v1 import job_pb2
from tests.test_lifecycle import apply, job

E = job_pb2


def claimed_by(worker: str, record: job_pb2.Job, **fields: object) -> tuple[lifecycle.Claim, job_pb2.Job | None]:
    claim = lifecycle.Claim(worker_id=worker, host=f"{worker}-host", **fields)  # type: ignore[arg-type]
    return claim, apply(claim.change(), record)


def test_a_claim_opens_an_attempt_naming_its_worker() -> None:
    claim, claimed = claimed_by("w1", job(E.JOB_STATE_QUEUED, attempt=0, lease=0))
    assert claim.outcome == "run" and claimed is not None
    [attempt] = claimed.attempts
    assert (attempt.attempt, attempt.worker_id, attempt.host) == (1, "w1", "w1-host")
    assert attempt.start_time == claimed.update_time and not attempt.HasField("end_time")


@pytest.mark.parametrize(
    ("settle", "outcome"),
    [
        (lambda lease: lifecycle.succeed(lease, E.JobResult(text="r")), E.JOB_STATE_SUCCEEDED),
        (lambda lease: lifecycle.retry(lease, E.JobError(type="Boom")), E.JOB_STATE_RETRYING),
        (lambda lease: lifecycle.fail(lease, E.JobError(type="Boom")), E.JOB_STATE_FAILED),
        (lifecycle.canceled_by_worker, E.JOB_STATE_CANCELED),
        (lifecycle.requeue, E.JOB_STATE_QUEUED),
        (lambda lease: lifecycle.wait_for_children(lease, "children"), E.JOB_STATE_WAITING),
    ],
)
def test_the_attempt_ends_with_its_outcome(settle: object, outcome: int) -> None:
    _, claimed = claimed_by("w1", job(E.JOB_STATE_QUEUED, attempt=0, lease=0))
    assert claimed is not None
    settled = apply(settle(lifecycle.Lease.of(claimed)), claimed)  # type: ignore[operator]
    assert settled is not None
    [attempt] = settled.attempts
    assert attempt.outcome == outcome and attempt.end_time == settled.update_time


def test_a_redelivered_running_job_is_a_stall_that_closes_the_attempt_and_fences_it() -> None:
    _, first = claimed_by("w1", job(E.JOB_STATE_QUEUED, attempt=0, lease=0))
    assert first is not None
    claim, second = claimed_by("w2", first)
    assert claim.outcome == "run" and second is not None
    assert claim.stalled is not None and claim.stalled.worker_id == "w1"
    assert second.stall_count == 1
    assert [(a.worker_id, a.outcome) for a in second.attempts] == [
        ("w1", E.JOB_STATE_QUEUED),
        ("w2", E.JOB_STATE_UNSPECIFIED),
    ]
    assert second.attempts[0].HasField("end_time")
    # The stalled attempt can no longer settle the job.
    assert apply(lifecycle.succeed(lifecycle.Lease.of(first), E.JobResult()), second) is None


def test_past_the_stall_limit_the_claim_records_the_stall_and_runs_nothing() -> None:
    _, first = claimed_by("w1", job(E.JOB_STATE_QUEUED, attempt=0, lease=0, max_attempts=5))
    assert first is not None
    _, second = claimed_by("w2", first, max_stalls=1)
    assert second is not None
    claim, third = claimed_by("w3", second, max_stalls=1)
    assert claim.outcome == "stalled" and third is not None
    assert third.stall_count == 2 and third.attempt == 2
    assert all(a.HasField("end_time") for a in third.attempts)
    # Its message delivered again before the job was failed: the same verdict, nothing counted twice.
    again, unchanged = claimed_by("w4", third, max_stalls=1)
    assert again.outcome == "stalled" and unchanged is None and again.stalled is None
    failed = apply(lifecycle.fail(None, E.JobError(type="Stalled")), third)
    assert failed is not None and failed.state == E.JOB_STATE_FAILED


def test_max_stalls_zero_fails_the_first_stall() -> None:
    _, first = claimed_by("w1", job(E.JOB_STATE_QUEUED, attempt=0, lease=0))
    assert first is not None
    claim, _ = claimed_by("w2", first, max_stalls=0)
    assert claim.outcome == "stalled"


def test_a_workers_own_lost_claim_is_no_stall() -> None:
    _, first = claimed_by("w1", job(E.JOB_STATE_QUEUED, attempt=0, lease=0))
    assert first is not None
    claim, again = claimed_by("w1", first)
    assert claim.outcome == "run" and claim.stalled is None and again is not None
    assert again.stall_count == 0 and again.attempt == 2


def test_a_message_of_another_sequence_than_the_attempts_ran_from_is_a_duplicate() -> None:
    _, running = claimed_by("w1", job(E.JOB_STATE_QUEUED, attempt=0, lease=0), sequence=7)
    assert running is not None and running.attempts[-1].message_sequence == 7
    retrying = apply(lifecycle.retry(lifecycle.Lease.of(running), E.JobError()), running)
    for current in (running, retrying):
        assert current is not None
        claim, refused = claimed_by("w2", current, sequence=9)
        assert claim.outcome == "duplicate" and refused is None
    # Its own message, delivered again (a retry, a stall, or a server restart that forgot the delivery count).
    claim, again = claimed_by("w2", running, sequence=7)
    assert claim.outcome == "run" and claim.stalled is not None and again is not None
    assert retrying is not None and claimed_by("w2", retrying, sequence=7)[0].outcome == "run"
    # Unknown sequences (a record from before they were kept, or not a JetStream delivery) are not refused.
    assert claimed_by("w2", running, sequence=0)[0].outcome == "run"
    running.attempts[-1].message_sequence = 0
    assert claimed_by("w2", running, sequence=9)[0].outcome == "run"


def test_a_revived_job_starts_a_fresh_attempt_history() -> None:
    _, first = claimed_by("w1", job(E.JOB_STATE_QUEUED, attempt=0, lease=0))
    assert first is not None
    _, second = claimed_by("w2", first)
    assert second is not None
    failed = apply(lifecycle.fail(lifecycle.Lease.of(second), E.JobError(type="Boom")), second)
    assert failed is not None
    revived = apply(lifecycle.revive(None, None, 3), failed)
    assert revived is not None
    assert (len(revived.attempts), revived.stall_count, revived.attempt) == (0, 0, 0)
