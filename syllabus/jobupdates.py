"""The job updates a worker makes in one turn of its event loop, sent to the store as one update_jobs call.

Every attempt claims its job and records its outcome with an update of its own; under load hundreds of them come
together. Sent as one call, a batch costs the embedded store one hand-over to its thread and one transaction, and
MongoDB one read and one round of writes, instead of one of each per update. Each caller still gets its own
answer, on the same terms as Store.update_job.
"""

from __future__ import annotations

import asyncio

from syllabus.store.base import JobChange, Store, Updated

_Pending = tuple[str, JobChange, "asyncio.Future[Updated]"]


class JobUpdates:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: list[_Pending] = []
        self._flushing: set[asyncio.Task[None]] = set()

    async def update(self, job_id: str, change: JobChange) -> Updated:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Updated] = loop.create_future()
        self._pending.append((job_id, change, future))
        if len(self._pending) == 1:
            # After every update this turn of the loop has made: they go together.
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.create_task(self._apply(batch))
        self._flushing.add(task)
        task.add_done_callback(self._flushing.discard)

    async def _apply(self, batch: list[_Pending]) -> None:
        try:
            results = await self._store.update_jobs([(job_id, change) for job_id, change, _ in batch])
        except Exception as exc:
            # Every caller of the batch meets the failure, as it would have met it alone: its step is tried
            # again (an outage), or its message redelivered (a bug).
            for _, _, future in batch:
                _settle(future, exc=exc)
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            _settle(future, result)


def _settle(future: asyncio.Future[Updated], result: Updated | None = None, exc: BaseException | None = None) -> None:
    if future.done():  # its caller was cancelled; the update may still have been made, as with update_job
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        assert result is not None
        future.set_result(result)
