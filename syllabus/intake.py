"""Single submissions that arrive together, submitted together: while one batch of SubmitJob calls is being stored
and published, the calls that come meanwhile gather into the next (a group commit).

Fifty callers submitting one job each at once would otherwise make fifty store calls and fifty rounds of publish
and wait; batched they share one store call, one flush of the NATS connection and one wait for the acks. A call
that finds nothing under way goes at once, so a lone caller waits for no one. Each caller gets its own answer; a
failure of the batch (an outage) is every caller's failure, as it would have been on its own.
"""

from __future__ import annotations

import asyncio

from syllabus.store.base import Inserted
from syllabus.submit import Submitter
from syllabus.v1 import job_pb2

_Pending = tuple[job_pb2.Job, float, "asyncio.Future[Inserted]"]


class Intake:
    def __init__(self, submitter: Submitter) -> None:
        self._submitter = submitter
        self._pending: list[_Pending] = []
        self._under_way: asyncio.Task[None] | None = None

    async def submit(self, job: job_pb2.Job, timeout: float) -> Inserted:
        future: asyncio.Future[Inserted] = asyncio.get_running_loop().create_future()
        self._pending.append((job, timeout, future))
        if self._under_way is None:
            self._next()
        return await future

    def _next(self) -> None:
        batch, self._pending = self._pending, []
        self._under_way = asyncio.create_task(self._submit(batch))
        self._under_way.add_done_callback(self._done)

    def _done(self, _: asyncio.Task[None]) -> None:
        self._under_way = None
        if self._pending:
            self._next()

    async def _submit(self, batch: list[_Pending]) -> None:
        # The batch may take as long as its most patient caller allows; a caller who stops waiting sooner has
        # its own call's deadline.
        timeout = max(timeout for _, timeout, _ in batch)
        try:
            inserted = await self._submitter.submit([job for job, _, _ in batch], timeout)
        except Exception as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        except BaseException:
            # Cancelled (the gateway stopping): its callers are cancelled with it.
            for _, _, future in batch:
                future.cancel()
            raise
        for (_, _, future), item in zip(batch, inserted, strict=True):
            if not future.done():
                future.set_result(item)
