"""Parent jobs that fan out children: waiting, finishing, failing with a child, resuming when it is retried.

A parent's own attempt ends in WAITING (the handler raises WaitForChildren). What finishes it is a child's
handler (e.g. the course's render job) calling `JobContext.finish_parent`; a child dead-lettered for good fails
it, and retrying that child's dead letter makes it wait again.

A child's end is always stored before the parent's that it causes: whoever sees a parent ended and then reads
its children finds the one that ended it ended too.
"""

from __future__ import annotations

from syllabus import lifecycle
from syllabus.events import EventPublisher, event_for, event_msg_id
from syllabus.store.base import Store
from syllabus.v1 import job_pb2


class Parents:
    def __init__(self, store: Store, events: EventPublisher) -> None:
        self._store = store
        self._events = events

    async def finish(self, parent_id: str, result: job_pb2.JobResult) -> bool:
        """Complete a waiting parent. False when it was not waiting (finished already, canceled, failed).

        The worker calls this once the child that finishes it has stored its own success (a handler asks for it
        with JobContext.finish_parent rather than calling it, which would end the parent before the child)."""
        updated = await self._store.update_job(parent_id, lifecycle.finish_waiting(result))
        parent = updated.job
        # Finished by an earlier try of this step whose answer was lost: announced now (the stream drops a repeat).
        finished = parent is not None and parent.state == job_pb2.JOB_STATE_SUCCEEDED and parent.result == result
        if parent is not None and (updated.applied or finished):
            await self._emit(parent, job_pb2.JOB_EVENT_TYPE_SUCCEEDED)
        return updated.applied or finished

    async def child_failed(self, child: job_pb2.Job, reason: str) -> None:
        error = job_pb2.JobError(
            attempt=0,
            type=lifecycle.CHILD_FAILED,
            message=(
                f"child job {child.id} ({child.kind}) failed: {reason}; "
                f"retry its dead letter (syllabus deadletters retry {child.id}) to resume"
            ),
            permanent=False,
        )
        error.time.CopyFrom(lifecycle.now())
        updated = await self._store.update_job(child.parent_id, lifecycle.fail_waiting(error))
        if updated.applied and updated.job is not None:
            await self._emit(updated.job, job_pb2.JOB_EVENT_TYPE_FAILED, error)

    async def child_retried(self, child: job_pb2.Job) -> None:
        updated = await self._store.update_job(child.parent_id, lifecycle.resume_waiting(child.id))
        if updated.applied and updated.job is not None:
            await self._emit(updated.job, job_pb2.JOB_EVENT_TYPE_RESUMED)

    async def progress(self, parent_id: str, percent: float, message: str) -> bool:
        """Report a waiting parent's progress (e.g. "lesson 3 of 6 written"). False when refused (not waiting,
        or it would move the progress backwards)."""
        updated = await self._store.update_job(parent_id, lifecycle.waiting_progress(percent, message))
        if updated.applied and updated.job is not None:
            await self._emit(updated.job, job_pb2.JOB_EVENT_TYPE_PROGRESS)
        return updated.applied

    async def _emit(self, job: job_pb2.Job, type_: job_pb2.JobEventType, error: job_pb2.JobError | None = None) -> None:
        event = event_for(job, type_, error=error)
        await self._events.publish(event, event_msg_id(event))
