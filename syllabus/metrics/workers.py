"""What worker processes count about their jobs: a WorkerHook (syllabus.hooks) on every worker of the process.
The `kind` label is the job's kind, or for a task (syllabus.tasks) its task name, as `syllabus stats` shows them.

Attempt durations and queue waits are read from the job's stored record (its attempts' start and end times), so
the hook keeps nothing per job. The queue wait is measured for a job's first attempt only: from its creation (or
its run_at, for a delayed job) to the start of that attempt. Later attempts wait by design (retry back-off).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from google.protobuf import timestamp_pb2
from prometheus_client import Counter, Histogram

from syllabus.hooks import WorkerHook
from syllabus.topology import TASK_KIND
from syllabus.v1 import job_pb2

if TYPE_CHECKING:
    from syllabus.worker import JobContext

# Seconds: from a fraction of a millisecond (a task that returns at once) to an hour (a long course).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)

STARTED = Counter("syllabus_jobs_started", "Attempts whose handler started, by job kind.", ["kind"])
SUCCEEDED = Counter("syllabus_jobs_succeeded", "Jobs that succeeded.", ["kind"])
FAILED = Counter("syllabus_jobs_failed", "Attempts that failed, whether the job is retried or not.", ["kind"])
RETRIED = Counter("syllabus_jobs_retried", "Failed attempts after which the job runs again.", ["kind"])
DEAD_LETTERED = Counter(
    "syllabus_jobs_dead_lettered", "Jobs that failed for good (to the dead-letter queue).", ["kind"]
)
CANCELED = Counter("syllabus_jobs_canceled", "Running jobs stopped by CancelJob.", ["kind"])
ATTEMPT_DURATION = Histogram(
    "syllabus_attempt_duration_seconds",
    "How long attempts ran, from their claim to their stored outcome, by kind and outcome.",
    ["kind", "outcome"],
    buckets=DURATION_BUCKETS,
)
QUEUE_WAIT = Histogram(
    "syllabus_queue_wait_seconds",
    "How long jobs waited for their first attempt, from creation (or run_at) to its start.",
    ["kind"],
    buckets=DURATION_BUCKETS,
)
# The counter each outcome of after_attempt moves besides the duration ("failed" is counted with it).
_OUTCOME_COUNTERS: dict[str, tuple[Counter, ...]] = {
    "succeeded": (SUCCEEDED,),
    "retrying": (FAILED, RETRIED),
    "dead_lettered": (FAILED, DEAD_LETTERED),
    "canceled": (CANCELED,),
}


class _KindInstruments:
    """One job kind's bound instruments."""

    __slots__ = ("ended", "kind", "queue_wait", "started")

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.started: Counter = STARTED.labels(kind)
        self.queue_wait: Histogram = QUEUE_WAIT.labels(kind)
        # outcome -> (its duration histogram, the counters it moves)
        self.ended: dict[str, tuple[Histogram, tuple[Counter, ...]]] = {}

    def outcome(self, outcome: str) -> tuple[Histogram, tuple[Counter, ...]]:
        found = self.ended.get(outcome)
        if found is None:
            counters = tuple(counter.labels(self.kind) for counter in _OUTCOME_COUNTERS.get(outcome, ()))
            found = self.ended[outcome] = (ATTEMPT_DURATION.labels(self.kind, outcome), counters)
        return found


class WorkerMetrics(WorkerHook):
    """The hook every worker process runs (syllabus.process.serve_worker): counters and histograms by job kind."""

    def __init__(self) -> None:
        self._kinds: dict[str, _KindInstruments] = {}

    def _of(self, job: job_pb2.Job) -> _KindInstruments:
        kind = job.spec.task.name if job.kind == TASK_KIND else job.kind
        found = self._kinds.get(kind)
        if found is None:
            found = self._kinds[kind] = _KindInstruments(kind)
        return found

    async def before_attempt(self, ctx: JobContext) -> None:
        job = ctx.job
        kind = self._of(job)
        kind.started.inc()
        if len(job.attempts) == 1:
            start_ns = _ns(job.attempts[0].start_time)
            available_ns = max(_ns(job.create_time), _ns(job.options.run_at))
            kind.queue_wait.observe(max(0.0, (start_ns - available_ns) / 1e9))

    async def after_attempt(self, job: job_pb2.Job, outcome: str) -> None:
        duration, counters = self._of(job).outcome(outcome)
        for counter in counters:
            counter.inc()
        attempt = job.attempts[-1] if job.attempts else None
        if attempt is not None and attempt.HasField("end_time"):
            duration.observe(max(0.0, (_ns(attempt.end_time) - _ns(attempt.start_time)) / 1e9))


def _ns(stamp: timestamp_pb2.Timestamp) -> int:
    # Timestamp.ToNanoseconds validates the value first, in Python: a third of this hook's time.
    return stamp.seconds * 1_000_000_000 + stamp.nanos
