"""The job state machine, as change functions for Store.update_job.

Each function returns a change that the store applies atomically to the record as it is at write time. A
change returns None to refuse: that is how a stale attempt (a worker whose lease was taken over) is kept from
completing a job, and how a finished job is kept finished. Pure logic, no I/O.

An attempt holds its job by a Lease: the attempt number, for people, and the job's lease number, a fencing token
that every claim and every dead-letter retry raises. The attempt number alone cannot fence: a hand-back gives it
back and a dead-letter retry starts it again from 0, so a stalled attempt and a later one can share it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from google.protobuf.timestamp_pb2 import Timestamp

from syllabus.config import RetryPolicy
from syllabus.store.base import JobChange
from syllabus.v1 import job_pb2

S = job_pb2
TERMINAL_STATES = frozenset({S.JOB_STATE_SUCCEEDED, S.JOB_STATE_FAILED, S.JOB_STATE_CANCELED})


def is_terminal(state: int) -> bool:
    return state in TERMINAL_STATES


def now() -> Timestamp:
    """The time now, to the nanosecond (Timestamp.GetCurrentTime goes through a datetime: microseconds, and
    about nine times slower, on every transition of every job)."""
    nanos = time.time_ns()
    return Timestamp(seconds=nanos // 1_000_000_000, nanos=nanos % 1_000_000_000)


def _copy(job: job_pb2.Job) -> job_pb2.Job:
    new = job_pb2.Job()
    new.CopyFrom(job)
    new.update_time.CopyFrom(now())
    return new


@dataclass(frozen=True)
class Lease:
    """What an attempt holds its job by. Both numbers are checked: the attempt number too, so that a claim by a
    worker from before lease numbers (which raised only the attempt) still fences this one out."""

    attempt: int
    number: int

    @classmethod
    def of(cls, job: job_pb2.Job) -> Lease:
        return cls(job.attempt, job.lease)


def _holds_lease(job: job_pb2.Job, lease: Lease) -> bool:
    return job.state == S.JOB_STATE_RUNNING and job.lease == lease.number and job.attempt == lease.attempt


def recorded(job: job_pb2.Job | None, lease: Lease, state: job_pb2.JobState) -> bool:
    """Whether `job` shows that the attempt holding `lease` already moved it to `state`.

    A write retried after an outage may find its first try landed (the answer was lost, not the write); only
    that attempt can have made this record, because nothing else leaves a job with its lease number. A
    hand-back (QUEUED) gives the attempt back, so it shows as the attempt before.
    """
    if job is None or job.state != state or job.lease != lease.number:
        return False
    return job.attempt == (lease.attempt - 1 if state == S.JOB_STATE_QUEUED else lease.attempt)


def _ended(job: job_pb2.Job, state: job_pb2.JobState, error: job_pb2.JobError | None = None) -> job_pb2.Job:
    """A copy of `job` in a final state, stamped with its end time (and the error that ended it)."""
    new = _copy(job)
    new.state = state
    if error is not None:
        new.errors.append(error)
    new.end_time.CopyFrom(new.update_time)
    _end_attempt(new, state)
    return new


def _open_attempt(job: job_pb2.Job) -> job_pb2.JobAttempt | None:
    """The attempt that started and has not ended, if any: only the newest can be."""
    if job.attempts and not job.attempts[-1].HasField("end_time"):
        return job.attempts[-1]
    return None


def _end_attempt(new: job_pb2.Job, outcome: job_pb2.JobState) -> None:
    """The open attempt of `new` (a changed copy) ends with the change, in `outcome`."""
    attempt = _open_attempt(new)
    if attempt is not None:
        attempt.end_time.CopyFrom(new.update_time)
        attempt.outcome = outcome


@dataclass
class Claim:
    """What a claim found. The worker reads it after update_job to decide what to do with the message.

    Each attempt records the stream sequence of the message it ran from. A job has one message at a time (retries,
    deferrals and hand-backs redeliver it, even after a server restart that forgot how often it was delivered), so
    a message of another sequence, while the job's attempts ran from one, is the same job published twice (e.g. by
    the orphan sweep while its first message still waited) and is dropped. A dead-letter retry, which publishes
    anew, starts with no attempts. A message delivered again while
    its job is RUNNING with an attempt that never ended means that attempt's worker stopped heart-beating: the
    attempt is closed as QUEUED and the stall counted; past `max_stalls` the job fails.
    """

    worker_id: str = ""
    host: str = ""
    # The stream sequence of the message claiming the job; 0 when unknown.
    sequence: int = 0
    max_stalls: int = RetryPolicy.max_stalls
    # "run": the attempt is ours; "finished": nothing to do; "exhausted": out of attempts before running;
    # "stalled": stalled more often than max_stalls; "duplicate": another message of the job was claimed.
    outcome: str = ""
    # The attempt this claim found abandoned (its worker stopped heart-beating), as the claim closed it.
    stalled: job_pb2.JobAttempt | None = None

    def change(self) -> JobChange:
        def claim(job: job_pb2.Job) -> job_pb2.Job | None:
            self.stalled = None
            if is_terminal(job.state):
                self.outcome = "finished"
                return None
            if self.sequence and job.attempts and job.attempts[-1].message_sequence not in (0, self.sequence):
                self.outcome = "duplicate"
                return None
            new = _copy(job)
            closed = False
            if job.state == S.JOB_STATE_RUNNING and (_open_attempt(job) is not None or not job.attempts):
                closed = True
                own = bool(self.worker_id and job.attempts) and job.attempts[-1].worker_id == self.worker_id
                _end_attempt(new, S.JOB_STATE_QUEUED)
                # Fences the abandoned attempt out, should its worker come back.
                new.lease += 1
                if not own:
                    # This worker's own open attempt is a claim whose answer it lost (an outage): no stall.
                    new.stall_count += 1
                    self.stalled = job_pb2.JobAttempt()
                    if new.attempts:
                        self.stalled.CopyFrom(new.attempts[-1])
            if new.state == S.JOB_STATE_RUNNING and new.stall_count > self.max_stalls:
                self.outcome = "stalled"
                return new if closed else None
            if job.attempt >= job.max_attempts:
                # The last attempt was lost (its worker died); the job is dead-lettered, not run again.
                self.outcome = "exhausted"
                return new if closed else None
            self.outcome = "run"
            new.state = S.JOB_STATE_RUNNING
            new.attempt = job.attempt + 1
            new.lease += 1
            new.cancel_requested = False
            if not job.HasField("start_time"):
                new.start_time.CopyFrom(new.update_time)
            started = new.attempts.add(
                attempt=new.attempt, worker_id=self.worker_id, host=self.host, message_sequence=self.sequence
            )
            started.start_time.CopyFrom(new.update_time)
            return new

        return claim


def succeed(lease: Lease, result: job_pb2.JobResult, parent_result: job_pb2.JobResult | None = None) -> JobChange:
    """The attempt's success; `parent_result`, if any, is what the job's waiting parent is then finished with."""

    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        if not _holds_lease(job, lease):
            return None
        new = _ended(job, S.JOB_STATE_SUCCEEDED)
        new.result.CopyFrom(result)
        if parent_result is not None:
            new.parent_result.CopyFrom(parent_result)
        new.progress.percent = 100
        return new

    return change


def retry(lease: Lease, error: job_pb2.JobError) -> JobChange:
    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        if not _holds_lease(job, lease):
            return None
        new = _copy(job)
        new.state = S.JOB_STATE_RETRYING
        new.errors.append(error)
        _end_attempt(new, S.JOB_STATE_RETRYING)
        return new

    return change


def fail(lease: Lease | None, error: job_pb2.JobError) -> JobChange:
    """Dead-lettered: out of attempts or a permanent error. lease None: no attempt holds the job (exhausted)."""

    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        if is_terminal(job.state) or (lease is not None and not _holds_lease(job, lease)):
            return None
        return _ended(job, S.JOB_STATE_FAILED, error)

    return change


def canceled_by_worker(lease: Lease) -> JobChange:
    """The running attempt stopped because CancelJob asked it to."""

    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        if not _holds_lease(job, lease):
            return None
        return _ended(job, S.JOB_STATE_CANCELED)

    return change


def requeue(lease: Lease) -> JobChange:
    """A draining worker gave the job back before it finished: that attempt does not count."""

    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        if not _holds_lease(job, lease):
            return None
        new = _copy(job)
        new.state = S.JOB_STATE_QUEUED
        new.attempt = lease.attempt - 1
        _end_attempt(new, S.JOB_STATE_QUEUED)
        return new

    return change


def progress(lease: Lease, percent: float, message: str) -> JobChange:
    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        if not _holds_lease(job, lease):
            return None
        new = _copy(job)
        new.progress.percent = max(0.0, min(100.0, percent))
        new.progress.message = message
        return new

    return change


@dataclass
class Cancel:
    """CancelJob: a waiting job is canceled at once; a running one is asked to stop."""

    # "canceled", "requested" (running: the worker will finish it), or "finished" (nothing to do).
    outcome: str = ""

    def change(self) -> JobChange:
        def cancel(job: job_pb2.Job) -> job_pb2.Job | None:
            if is_terminal(job.state):
                self.outcome = "finished"
                return None
            if job.state != S.JOB_STATE_RUNNING:
                self.outcome = "canceled"
                return _ended(job, S.JOB_STATE_CANCELED)
            self.outcome = "requested"
            new = _copy(job)
            new.cancel_requested = True
            return new

        return cancel


def revive(spec: job_pb2.JobSpec | None, options: job_pb2.JobOptions | None, default_max_attempts: int) -> JobChange:
    """A dead letter retried: the job is queued again with a fresh attempt history, under a new lease (an attempt
    from before that is still running, believed lost, must not settle the retried job)."""

    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        if job.state != S.JOB_STATE_FAILED:
            return None
        new = _copy(job)
        if spec is not None:
            new.spec.CopyFrom(spec)
        if options is not None:
            new.options.CopyFrom(options)
        delayed = (
            new.options.HasField("run_at") and new.options.run_at.ToNanoseconds() > new.update_time.ToNanoseconds()
        )
        new.state = S.JOB_STATE_SCHEDULED if delayed else S.JOB_STATE_QUEUED
        new.attempt = 0
        new.stall_count = 0
        new.lease = job.lease + 1
        new.max_attempts = new.options.max_attempts or default_max_attempts
        del new.errors[:]
        del new.attempts[:]
        new.ClearField("result")
        new.ClearField("progress")
        new.ClearField("start_time")
        new.ClearField("end_time")
        return new

    return change


def unrevive(failed: job_pb2.Job, revived: job_pb2.Job) -> JobChange:
    """A dead-letter retry that could not be queued: the job is failed again as it was, unless something changed
    it since the retry. It keeps the retry's lease: a lease number is never lowered, so never reused."""

    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        if job.state != revived.state or job.lease != revived.lease:
            return None
        new = _copy(failed)
        new.lease = job.lease
        return new

    return change


def wait_for_children(lease: Lease, message: str) -> JobChange:
    """The attempt did its own part and fanned out children; the job now waits for them, off the queue."""

    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        if not _holds_lease(job, lease):
            return None
        new = _copy(job)
        new.state = S.JOB_STATE_WAITING
        new.progress.message = message
        _end_attempt(new, S.JOB_STATE_WAITING)
        return new

    return change


# A parent may still be RUNNING when its last child ends: it submitted the children but has not yet recorded
# WAITING. The children's outcome decides either way.
_PARENT_STATES = frozenset({S.JOB_STATE_RUNNING, S.JOB_STATE_WAITING})


def finish_waiting(result: job_pb2.JobResult) -> JobChange:
    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        if job.state not in _PARENT_STATES:
            return None
        new = _ended(job, S.JOB_STATE_SUCCEEDED)
        new.result.CopyFrom(result)
        new.progress.percent = 100
        return new

    return change


def fail_waiting(error: job_pb2.JobError) -> JobChange:
    """A child failed for good, so its parent cannot finish: it fails too (and resumes if the child is retried)."""

    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        if job.state not in _PARENT_STATES:
            return None
        return _ended(job, S.JOB_STATE_FAILED, error)

    return change


def resume_waiting(child_id: str) -> JobChange:
    """The failed child `child_id` was retried: its parent waits again, if that child is what failed it."""

    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        if job.state != S.JOB_STATE_FAILED or not job.errors or job.errors[-1].type != CHILD_FAILED:
            return None
        if child_id not in job.errors[-1].message:
            return None
        new = _copy(job)
        new.state = S.JOB_STATE_WAITING
        new.ClearField("end_time")
        return new

    return change


CHILD_FAILED = "ChildFailed"


# --- Progress of a waiting parent ----------------------------------------------------------------------------------
def waiting_progress(percent: float, message: str) -> JobChange:
    """Progress a waiting parent's children report for it (no attempt holds its lease).

    Children finish concurrently and their reports may land out of order, so one that would move the
    progress backwards is refused: the bar only grows.
    """

    def change(job: job_pb2.Job) -> job_pb2.Job | None:
        clamped = max(0.0, min(100.0, percent))
        if job.state != S.JOB_STATE_WAITING or clamped <= job.progress.percent:
            return None
        new = _copy(job)
        new.progress.percent = clamped
        new.progress.message = message
        return new

    return change
