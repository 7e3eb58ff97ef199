"""AdminService.GetActivity: the caller's jobs over time, from the store's grouped counts (Store.activity)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from google.protobuf import duration_pb2, timestamp_pb2

from syllabus.errors import InvalidRequest
from syllabus.store.base import Activity, ActivityQuery, Store
from syllabus.v1 import admin_service_pb2 as pb
from syllabus.v1 import job_pb2

SECOND = 1_000_000_000
DEFAULT_WINDOW = 3600 * SECOND
DEFAULT_BUCKET = 60 * SECOND
MAX_BUCKETS = 1440
# Upper bounds of the run-duration buckets, seconds; one more bucket holds longer runs.
DURATION_BOUNDS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}
_ENDED_FIELDS = {
    job_pb2.JOB_STATE_SUCCEEDED: "succeeded",
    job_pb2.JOB_STATE_FAILED: "failed",
    job_pb2.JOB_STATE_CANCELED: "canceled",
}


def _ns(duration: duration_pb2.Duration, default: int) -> int:
    ns: int = duration.ToNanoseconds()
    return ns or default


async def activity(store: Store, tenant: str, request: pb.GetActivityRequest) -> pb.GetActivityResponse:
    window = _ns(request.window, DEFAULT_WINDOW)
    width = _ns(request.bucket, DEFAULT_BUCKET)
    count = -(-window // width)
    if count > MAX_BUCKETS:
        raise InvalidRequest("bucket", f"makes {count} buckets of the window; at most {MAX_BUCKETS} fit")
    until = time.time_ns()
    since = until - window
    bounds = tuple(int(bound * SECOND) for bound in DURATION_BOUNDS)
    found = await store.activity(
        ActivityQuery(tenant, since, until, width, kind=request.kind, duration_bounds_ns=bounds)
    )
    response = pb.GetActivityResponse(
        buckets=_buckets(found, since, width, count), durations=_durations(found, len(bounds))
    )
    response.start_time.FromNanoseconds(since)
    response.end_time.FromNanoseconds(until)
    response.bucket.FromNanoseconds(width)
    for name, quantile in PERCENTILES.items():
        estimate = _percentile(list(response.durations), quantile)
        if estimate is not None:
            getattr(response, name).FromNanoseconds(int(estimate * SECOND))
    return response


def _buckets(found: Activity, since: int, width: int, count: int) -> list[pb.ActivityBucket]:
    buckets = []
    waiting = found.waiting_at_start
    for i in range(count):
        bucket = pb.ActivityBucket(
            start_time=_timestamp(since + i * width),
            created=found.created.get(i, 0),
            started=found.started.get(i, 0),
        )
        for state, field in _ENDED_FIELDS.items():
            setattr(bucket, field, found.ended.get((i, state), 0))
        # Every job waits from its creation until it starts or ends, whichever comes first.
        waiting += bucket.created - bucket.started - found.ended_unstarted.get(i, 0)
        # A job a dead letter's retry queued again waits anew but was created long ago: never below none.
        bucket.waiting = max(0, waiting)
        buckets.append(bucket)
    return buckets


def _durations(found: Activity, bounds: int) -> list[pb.DurationBucket]:
    return [
        pb.DurationBucket(le_seconds=DURATION_BOUNDS[i], count=found.durations.get(i, 0))
        if i < bounds
        else pb.DurationBucket(count=found.durations.get(i, 0))
        for i in range(bounds + 1)
    ]


def _percentile(counts: Sequence[pb.DurationBucket], quantile: float) -> float | None:
    """Seconds, interpolated linearly within the bucket the quantile falls in (as Prometheus'
    histogram_quantile does); the last bound when it falls among the runs longer than every bound."""
    total = sum(bucket.count for bucket in counts)
    if total == 0:
        return None
    target = quantile * total
    below = 0
    lower = 0.0
    for bucket in counts:
        if not bucket.HasField("le_seconds"):
            return lower
        if bucket.count and below + bucket.count >= target:
            return float(lower + (bucket.le_seconds - lower) * (target - below) / bucket.count)
        below += bucket.count
        lower = bucket.le_seconds
    return lower


def _timestamp(ns: int) -> timestamp_pb2.Timestamp:
    stamp = timestamp_pb2.Timestamp()
    stamp.FromNanoseconds(ns)
    return stamp
