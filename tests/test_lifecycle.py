"""The job state machine, change by change: what each transition writes, and every record it must refuse."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from syllabus import lifecycle
from syllabus.store.base import JobChange
from syllabus.v1 import job_pb2

E = job_pb2
ALL_STATES = [s for s in E.JobState.values() if s != E.JOB_STATE_UNSPECIFIED]
TERMINAL = [E.JOB_STATE_SUCCEEDED, E.JOB_STATE_FAILED, E.JOB_STATE_CANCELED]
LONG_AGO = Timestamp(seconds=1_000_000_000)


# The lease of the attempt the records below are held by: its lease number differs from its attempt number, so a
# change that compared the wrong one is caught.
HELD = lifecycle.Lease(attempt=2, number=5)


def job(
    state: int = E.JOB_STATE_RUNNING, attempt: int = 2, max_attempts: int = 3, lease: int = 5, **fields: object
) -> job_pb2.Job:
    record = E.Job(id="j1", state=state, attempt=attempt, max_attempts=max_attempts, lease=lease, **fields)  # type: ignore[arg-type]
    record.update_time.CopyFrom(LONG_AGO)
    return record


def apply(change: JobChange, record: job_pb2.Job) -> job_pb2.Job | None:
    """The change's result; the record it was given stays as it was (the store may apply a change again)."""
    before = E.Job()
    before.CopyFrom(record)
    after = change(record)
    assert record == before
    return after


def error(type_: str = "Boom", message: str = "it broke") -> job_pb2.JobError:
    return E.JobError(attempt=2, type=type_, message=message)


# Every change that only the attempt holding the lease may make.
LEASED: dict[str, Callable[[lifecycle.Lease], JobChange]] = {
    "succeed": lambda lease: lifecycle.succeed(lease, E.JobResult(text="r")),
    "retry": lambda lease: lifecycle.retry(lease, error()),
    "fail": lambda lease: lifecycle.fail(lease, error()),
    "canceled_by_worker": lifecycle.canceled_by_worker,
    "requeue": lifecycle.requeue,
    "progress": lambda lease: lifecycle.progress(lease, 50, "half"),
    "wait_for_children": lambda lease: lifecycle.wait_for_children(lease, "waiting"),
}
# Leases the records above are not held by: an earlier or later lease number with the same attempt number (a
# stalled attempt from before a hand-back or a dead-letter retry), or the same number with another attempt (a
# claim by a worker from before lease numbers, which raised only the attempt).
NOT_HELD = [
    lifecycle.Lease(attempt=2, number=4),
    lifecycle.Lease(attempt=2, number=6),
    lifecycle.Lease(attempt=1, number=5),
    lifecycle.Lease(attempt=3, number=5),
]


@pytest.mark.parametrize("name", sorted(LEASED))
@pytest.mark.parametrize("other", NOT_HELD, ids=str)
def test_a_leased_change_is_refused_to_any_other_lease(name: str, other: lifecycle.Lease) -> None:
    change = LEASED[name]
    assert apply(change(HELD), job()) is not None
    assert apply(change(other), job()) is None


@pytest.mark.parametrize("name", sorted(LEASED))
@pytest.mark.parametrize("state", [s for s in ALL_STATES if s != E.JOB_STATE_RUNNING])
def test_a_leased_change_is_refused_unless_the_job_runs(name: str, state: int) -> None:
    assert apply(LEASED[name](HELD), job(state=state)) is None


@pytest.mark.parametrize("state", ALL_STATES)
def test_terminal_states_are_the_three_ends(state: int) -> None:
    assert lifecycle.is_terminal(state) == (state in TERMINAL)


def test_recorded_knows_a_write_of_this_lease_from_any_other() -> None:
    assert lifecycle.recorded(job(E.JOB_STATE_SUCCEEDED), HELD, E.JOB_STATE_SUCCEEDED)
    assert not lifecycle.recorded(job(E.JOB_STATE_SUCCEEDED, attempt=3), HELD, E.JOB_STATE_SUCCEEDED)
    assert not lifecycle.recorded(job(E.JOB_STATE_SUCCEEDED, lease=6), HELD, E.JOB_STATE_SUCCEEDED)
    assert not lifecycle.recorded(job(E.JOB_STATE_FAILED), HELD, E.JOB_STATE_SUCCEEDED)
    assert not lifecycle.recorded(None, HELD, E.JOB_STATE_SUCCEEDED)
    # A hand-back gives the attempt back: the record shows the attempt before it, under the same lease.
    assert lifecycle.recorded(job(E.JOB_STATE_QUEUED, attempt=1), HELD, E.JOB_STATE_QUEUED)
    assert not lifecycle.recorded(job(E.JOB_STATE_QUEUED, attempt=2), HELD, E.JOB_STATE_QUEUED)
    assert not lifecycle.recorded(job(E.JOB_STATE_QUEUED, attempt=1, lease=4), HELD, E.JOB_STATE_QUEUED)


def test_a_claim_starts_the_next_attempt() -> None:
    claim = lifecycle.Claim()
    claimed = apply(claim.change(), job(E.JOB_STATE_QUEUED, attempt=1, cancel_requested=True))
    assert claim.outcome == "run"
    assert claimed is not None
    assert (claimed.state, claimed.attempt, claimed.lease, claimed.cancel_requested) == (
        E.JOB_STATE_RUNNING,
        2,
        6,
        False,
    )
    assert claimed.update_time.ToNanoseconds() > LONG_AGO.ToNanoseconds()
    assert claimed.start_time == claimed.update_time


def test_a_claim_keeps_the_first_start_time() -> None:
    first = job(E.JOB_STATE_RETRYING, attempt=1)
    first.start_time.CopyFrom(LONG_AGO)
    claimed = apply(lifecycle.Claim().change(), first)
    assert claimed is not None and claimed.start_time == LONG_AGO


def test_a_claim_of_a_job_whose_attempts_are_spent_is_refused_as_exhausted() -> None:
    claim = lifecycle.Claim()
    # The lost last attempt is recorded as a stall; nothing runs.
    stalled = apply(claim.change(), job(E.JOB_STATE_RUNNING, attempt=3, max_attempts=3))
    assert stalled is not None and (stalled.attempt, stalled.stall_count) == (3, 1)
    assert claim.outcome == "exhausted"
    assert apply(claim.change(), job(E.JOB_STATE_RETRYING, attempt=3, max_attempts=3)) is None
    assert claim.outcome == "exhausted"
    last_but_one = lifecycle.Claim()
    assert apply(last_but_one.change(), job(E.JOB_STATE_RUNNING, attempt=2, max_attempts=3)) is not None
    assert last_but_one.outcome == "run"


@pytest.mark.parametrize("state", TERMINAL)
def test_a_claim_of_an_ended_job_is_refused_as_finished(state: int) -> None:
    claim = lifecycle.Claim()
    assert apply(claim.change(), job(state, attempt=1)) is None
    assert claim.outcome == "finished"


def test_success_stores_the_result_the_parents_result_and_the_end() -> None:
    succeeded = apply(
        lifecycle.succeed(HELD, E.JobResult(text="r"), E.JobResult(reference="courses/c1")),
        job(progress=E.JobProgress(percent=40, message="writing")),
    )
    assert succeeded is not None
    assert (succeeded.state, succeeded.result.text, succeeded.parent_result.reference) == (
        E.JOB_STATE_SUCCEEDED,
        "r",
        "courses/c1",
    )
    assert succeeded.progress.percent == 100
    assert succeeded.end_time == succeeded.update_time
    assert succeeded.update_time.ToNanoseconds() > LONG_AGO.ToNanoseconds()
    plain = apply(lifecycle.succeed(HELD, E.JobResult(text="r")), job())
    assert plain is not None and not plain.HasField("parent_result")


def test_a_retry_keeps_the_attempt_and_adds_its_error() -> None:
    retrying = apply(lifecycle.retry(HELD, error()), job(errors=[error("Earlier")]))
    assert retrying is not None
    assert (retrying.state, retrying.attempt) == (E.JOB_STATE_RETRYING, 2)
    assert [e.type for e in retrying.errors] == ["Earlier", "Boom"]
    assert not retrying.HasField("end_time")


def test_a_failure_ends_the_job_with_its_error() -> None:
    failed = apply(lifecycle.fail(HELD, error()), job())
    assert failed is not None
    assert (failed.state, [e.type for e in failed.errors]) == (E.JOB_STATE_FAILED, ["Boom"])
    assert failed.end_time == failed.update_time


@pytest.mark.parametrize("state", [s for s in ALL_STATES if s not in TERMINAL])
def test_a_failure_no_attempt_holds_fails_any_unended_job(state: int) -> None:
    failed = apply(lifecycle.fail(None, error()), job(state))
    assert failed is not None and failed.state == E.JOB_STATE_FAILED


@pytest.mark.parametrize("state", TERMINAL)
def test_a_failure_no_attempt_holds_leaves_an_ended_job_alone(state: int) -> None:
    assert apply(lifecycle.fail(None, error()), job(state)) is None


def test_a_worker_cancel_ends_the_job_canceled() -> None:
    canceled = apply(lifecycle.canceled_by_worker(HELD), job(cancel_requested=True))
    assert canceled is not None
    assert canceled.state == E.JOB_STATE_CANCELED
    assert canceled.end_time == canceled.update_time


def test_a_requeue_gives_the_attempt_back() -> None:
    requeued = apply(lifecycle.requeue(HELD), job())
    assert requeued is not None
    assert (requeued.state, requeued.attempt, requeued.lease) == (E.JOB_STATE_QUEUED, 1, 5)
    assert requeued.update_time.ToNanoseconds() > LONG_AGO.ToNanoseconds()


@pytest.mark.parametrize(("percent", "stored"), [(42.5, 42.5), (-5, 0), (250, 100), (0, 0), (100, 100)])
def test_progress_is_clamped_to_a_percentage(percent: float, stored: float) -> None:
    reported = apply(lifecycle.progress(HELD, percent, "step"), job())
    assert reported is not None
    assert (reported.progress.percent, reported.progress.message) == (stored, "step")
    assert reported.state == E.JOB_STATE_RUNNING


def test_waiting_for_children_parks_the_job_with_its_message() -> None:
    waiting = apply(lifecycle.wait_for_children(HELD, "3 lessons to write"), job())
    assert waiting is not None
    assert (waiting.state, waiting.progress.message, waiting.attempt) == (E.JOB_STATE_WAITING, "3 lessons to write", 2)


@pytest.mark.parametrize("state", [E.JOB_STATE_QUEUED, E.JOB_STATE_SCHEDULED, E.JOB_STATE_RETRYING])
def test_a_cancel_ends_a_job_that_is_not_running_at_once(state: int) -> None:
    cancel = lifecycle.Cancel()
    canceled = apply(cancel.change(), job(state))
    assert cancel.outcome == "canceled"
    assert canceled is not None and canceled.state == E.JOB_STATE_CANCELED
    assert canceled.end_time == canceled.update_time


def test_a_cancel_asks_a_running_job_to_stop() -> None:
    cancel = lifecycle.Cancel()
    asked = apply(cancel.change(), job())
    assert cancel.outcome == "requested"
    assert asked is not None
    assert (asked.state, asked.cancel_requested) == (E.JOB_STATE_RUNNING, True)
    assert asked.update_time.ToNanoseconds() > LONG_AGO.ToNanoseconds()


@pytest.mark.parametrize("state", TERMINAL)
def test_a_cancel_leaves_an_ended_job_alone(state: int) -> None:
    cancel = lifecycle.Cancel()
    assert apply(cancel.change(), job(state)) is None
    assert cancel.outcome == "finished"


def failed_job() -> job_pb2.Job:
    record = job(
        E.JOB_STATE_FAILED,
        attempt=3,
        max_attempts=3,
        spec=E.JobSpec(summarize_text=E.SummarizeText(text="old")),
        errors=[error()],
        result=E.JobResult(text="partial"),
        progress=E.JobProgress(percent=80),
    )
    record.start_time.CopyFrom(LONG_AGO)
    record.end_time.CopyFrom(LONG_AGO)
    return record


def test_a_revived_job_is_queued_with_a_fresh_history() -> None:
    revived = apply(lifecycle.revive(None, None, default_max_attempts=5), failed_job())
    assert revived is not None
    assert (revived.state, revived.attempt, revived.max_attempts) == (E.JOB_STATE_QUEUED, 0, 5)
    # A new lease: the dead-lettered attempt's lease never holds the job again.
    assert revived.lease == 6
    assert revived.spec.summarize_text.text == "old"
    assert list(revived.errors) == []
    for cleared in ("result", "progress", "start_time", "end_time"):
        assert not revived.HasField(cleared), cleared


def test_a_revived_job_takes_the_edited_spec_and_options() -> None:
    spec = E.JobSpec(summarize_text=E.SummarizeText(text="new"))
    later = Timestamp()
    later.GetCurrentTime()
    later.seconds += 3600
    options = E.JobOptions(max_attempts=7, run_at=later)
    revived = apply(lifecycle.revive(spec, options, default_max_attempts=5), failed_job())
    assert revived is not None
    assert (revived.spec.summarize_text.text, revived.max_attempts) == ("new", 7)
    # Due later: it waits for its time again.
    assert revived.state == E.JOB_STATE_SCHEDULED


def test_a_revived_job_due_in_the_past_is_queued() -> None:
    options = E.JobOptions(run_at=LONG_AGO)
    revived = apply(lifecycle.revive(None, options, default_max_attempts=5), failed_job())
    assert revived is not None and revived.state == E.JOB_STATE_QUEUED


@pytest.mark.parametrize("state", [s for s in ALL_STATES if s != E.JOB_STATE_FAILED])
def test_only_a_failed_job_is_revived(state: int) -> None:
    assert apply(lifecycle.revive(None, None, 5), job(state)) is None


def claimed(record: job_pb2.Job) -> job_pb2.Job:
    # Claims of a running job count stalls: these tests are about leases, not the stall limit.
    claim = lifecycle.Claim(max_stalls=10)
    after = apply(claim.change(), record)
    assert claim.outcome == "run" and after is not None
    return after


def test_an_attempt_from_before_a_dead_letter_retry_never_holds_the_retried_job() -> None:
    """Its worker stalled on the last attempt and was taken for dead; the retried job reaches the same attempt
    number while it is still running."""
    stalled = claimed(claimed(job(E.JOB_STATE_QUEUED, attempt=0, max_attempts=2, lease=0)))
    stale = lifecycle.Lease.of(stalled)
    exhausted = lifecycle.Claim(max_stalls=10)
    apply(exhausted.change(), stalled)
    assert exhausted.outcome == "exhausted"
    failed = apply(lifecycle.fail(None, error()), stalled)
    assert failed is not None
    revived = apply(lifecycle.revive(None, None, default_max_attempts=2), failed)
    assert revived is not None
    again = claimed(claimed(revived))
    assert again.attempt == stale.attempt
    for name, change in LEASED.items():
        assert apply(change(stale), again) is None, name
    assert apply(LEASED["succeed"](lifecycle.Lease.of(again)), again) is not None


def test_an_attempt_handed_back_never_holds_the_job_again() -> None:
    """The next claim takes the attempt number the hand-back gave back, not its lease."""
    handed_back = apply(lifecycle.requeue(HELD), job())
    assert handed_back is not None
    again = claimed(handed_back)
    assert again.attempt == HELD.attempt
    for name, change in LEASED.items():
        assert apply(change(HELD), again) is None, name
    assert not lifecycle.recorded(apply(lifecycle.requeue(lifecycle.Lease.of(again)), again), HELD, E.JOB_STATE_QUEUED)


def test_a_retry_that_could_not_be_queued_fails_the_job_again_under_the_retrys_lease() -> None:
    failed = failed_job()
    revived = apply(lifecycle.revive(None, None, default_max_attempts=5), failed)
    assert revived is not None
    restored = apply(lifecycle.unrevive(failed, revived), revived)
    assert restored is not None
    assert (restored.state, restored.attempt, list(restored.errors)) == (failed.state, 3, list(failed.errors))
    assert restored.lease == revived.lease == failed.lease + 1
    # Something changed the job since the retry (claimed or canceled): it is left as it is.
    assert apply(lifecycle.unrevive(failed, revived), claimed(revived)) is None
    canceled = apply(lifecycle.Cancel().change(), revived)
    assert canceled is not None and apply(lifecycle.unrevive(failed, revived), canceled) is None


PARENT_STATES = [E.JOB_STATE_RUNNING, E.JOB_STATE_WAITING]


@pytest.mark.parametrize("state", ALL_STATES)
def test_a_parent_is_finished_only_while_in_its_attempt_or_waiting(state: int) -> None:
    finished = apply(lifecycle.finish_waiting(E.JobResult(reference="courses/c1")), job(state))
    if state not in PARENT_STATES:
        assert finished is None
        return
    assert finished is not None
    assert (finished.state, finished.result.reference, finished.progress.percent) == (
        E.JOB_STATE_SUCCEEDED,
        "courses/c1",
        100,
    )
    assert finished.end_time == finished.update_time


@pytest.mark.parametrize("state", ALL_STATES)
def test_a_parent_is_failed_by_its_child_only_while_in_its_attempt_or_waiting(state: int) -> None:
    failed = apply(lifecycle.fail_waiting(error(lifecycle.CHILD_FAILED, "child job c1 failed")), job(state))
    if state not in PARENT_STATES:
        assert failed is None
        return
    assert failed is not None
    assert (failed.state, [e.type for e in failed.errors]) == (E.JOB_STATE_FAILED, [lifecycle.CHILD_FAILED])
    assert failed.end_time == failed.update_time


def failed_by_child(child_id: str, type_: str = lifecycle.CHILD_FAILED) -> job_pb2.Job:
    record = job(E.JOB_STATE_FAILED, errors=[error("Earlier"), error(type_, f"child job {child_id} failed: boom")])
    record.end_time.CopyFrom(LONG_AGO)
    return record


def test_a_parent_failed_by_a_child_waits_again_when_that_child_is_retried() -> None:
    resumed = apply(lifecycle.resume_waiting("c1"), failed_by_child("c1"))
    assert resumed is not None
    assert resumed.state == E.JOB_STATE_WAITING
    assert not resumed.HasField("end_time")
    assert resumed.update_time.ToNanoseconds() > LONG_AGO.ToNanoseconds()


def test_a_parent_resumes_for_the_child_that_failed_it_last() -> None:
    # Failed by c2, resumed, then failed by c1: only the last failure counts.
    parent = failed_by_child("c1")
    parent.errors.insert(0, error(lifecycle.CHILD_FAILED, "child job c2 failed: boom"))
    resumed = apply(lifecycle.resume_waiting("c1"), parent)
    assert resumed is not None and resumed.state == E.JOB_STATE_WAITING
    assert apply(lifecycle.resume_waiting("c2"), parent) is None


def test_a_parent_resumes_only_for_the_child_that_failed_it() -> None:
    assert apply(lifecycle.resume_waiting("c2"), failed_by_child("c1")) is None
    assert apply(lifecycle.resume_waiting("c1"), failed_by_child("c1", type_="Boom")) is None
    assert apply(lifecycle.resume_waiting("c1"), job(E.JOB_STATE_FAILED)) is None
    assert apply(lifecycle.resume_waiting("c1"), job(E.JOB_STATE_WAITING)) is None


def test_a_waiting_parents_progress_only_grows() -> None:
    waiting = job(E.JOB_STATE_WAITING, progress=E.JobProgress(percent=40, message="lesson 2 of 5"))
    grown = apply(lifecycle.waiting_progress(60, "lesson 3 of 5"), waiting)
    assert grown is not None
    assert (grown.progress.percent, grown.progress.message) == (60, "lesson 3 of 5")
    assert grown.update_time.ToNanoseconds() > LONG_AGO.ToNanoseconds()
    assert apply(lifecycle.waiting_progress(40, "again"), waiting) is None
    assert apply(lifecycle.waiting_progress(30, "behind"), waiting) is None
    clamped = apply(lifecycle.waiting_progress(250, "done"), waiting)
    assert clamped is not None and clamped.progress.percent == 100
    assert apply(lifecycle.waiting_progress(-5, "below"), job(E.JOB_STATE_WAITING)) is None


@pytest.mark.parametrize("state", [s for s in ALL_STATES if s != E.JOB_STATE_WAITING])
def test_only_a_waiting_parent_takes_its_childrens_progress(state: int) -> None:
    assert apply(lifecycle.waiting_progress(60, "step"), job(state)) is None
