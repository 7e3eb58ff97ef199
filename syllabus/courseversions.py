"""Course versions: what the gateway (which makes a version) and the generator (whose jobs finish one) agree on.

A change makes the next version of a course at once, in one versioned write (the store keeps the version it
replaces). A hand edit is then complete; a regenerated part or an added module is still being written by the
jobs named in the course's pending_job_ids, and the last of them to store its part completes the version. Either
way the version, once complete, is rendered by exactly one render job: its idempotency key names the version.
"""

from __future__ import annotations

from syllabus.submit import build_job
from syllabus.v1 import job_pb2


def version_render_key(course_id: str, version: int) -> str:
    return f"{course_id}:render:v{version}"


def version_labels(course_id: str, version: int) -> dict[str, str]:
    """The labels of a version's render job, by which a caller finds it (ListJobs): the last part job submits it."""
    return {"course": course_id, "course_version": str(version)}


def version_render_job(
    course_id: str, version: int, tenant: str, options: job_pb2.JobOptions, default_max_attempts: int
) -> job_pb2.Job:
    """The one render job of a version of a course: it has no parent (no course job waits for it)."""
    render_options = job_pb2.JobOptions(
        priority=options.priority,
        max_attempts=options.max_attempts,
        idempotency_key=version_render_key(course_id, version),
    )
    render_options.labels.update(options.labels)
    render_options.labels.update(version_labels(course_id, version))
    return build_job(
        job_pb2.JobSpec(render_document=job_pb2.RenderDocument(course_id=course_id, course_version=version)),
        render_options,
        tenant=tenant,
        default_max_attempts=default_max_attempts,
    )
