"""AdminService.PurgeJobs: the scheduler's retention (scheduler.retention), now and with the caller's ages."""

from __future__ import annotations

from google.protobuf.duration_pb2 import Duration

from scheduler.retention import Retention
from syllabus.errors import InvalidRequest
from syllabus.runtime import Runtime
from syllabus.v1 import admin_service_pb2 as pb


def _seconds(duration: Duration, field: str) -> float:
    seconds = duration.ToNanoseconds() / 1e9
    if seconds < 0:
        raise InvalidRequest(field, "must not be negative")
    return seconds


async def purge_jobs(runtime: Runtime, tenant: str, request: pb.PurgeJobsRequest) -> pb.PurgeJobsResponse:
    older_than = _seconds(request.older_than, "older_than")
    letters = (
        _seconds(request.dead_letters_older_than, "dead_letters_older_than")
        if request.HasField("dead_letters_older_than")
        else None
    )
    purged = await Retention(runtime).purge(tenant, older_than, letters)
    return pb.PurgeJobsResponse(jobs=purged.jobs, dead_letters=purged.dead_letters, artifacts=purged.artifacts)
