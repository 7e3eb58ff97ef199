"""The worker runtime every worker service uses: fetch, claim, run, and ack / retry / dead-letter.

One message is one attempt. Its claim takes a lease on the job (syllabus.lifecycle.Lease): every write of the
attempt is conditional on it, so a worker that stalled and came back after its job was redelivered (or
dead-lettered and retried) cannot complete it a second time.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import random
import socket
from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nats.aio.msg import Msg

from syllabus import lifecycle, outages
from syllabus.config import RetryPolicy, WorkerConfig
from syllabus.deliveries import pending_after, stream_sequence
from syllabus.events import event_for, event_msg_id
from syllabus.hooks import WorkerHook
from syllabus.jetstream import ensure_consumers
from syllabus.jobupdates import JobUpdates
from syllabus.logs import log_attempt
from syllabus.presence import Presence
from syllabus.pull import PullConsumer
from syllabus.queuecontrol import PauseWatch
from syllabus.redaction import redact
from syllabus.runtime import Runtime
from syllabus.store.base import Updated
from syllabus.topology import PRIORITIES, WorkQueue
from syllabus.v1 import job_pb2

log = logging.getLogger(__name__)
E = job_pb2
# Seconds before a job handed back because of an outage is offered again.
OUTAGE_DEFER = 2.0


class JobError(Exception):
    """Raise from a handler to fail an attempt with a chosen type. Retried unless permanent."""

    permanent = False

    def __init__(self, message: str, *, error_type: str | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type or type(self).__name__
        # The earliest the next attempt may run (a provider's Retry-After), seconds.
        self.retry_after = retry_after


class RetryableError(JobError):
    pass


class PermanentError(JobError):
    permanent = True


class WaitForChildren(Exception):
    """Raise from a handler that fanned out child jobs: the job waits for them (WAITING) off the queue.

    A child's handler finishes the parent later (JobContext.finish_parent).
    """


class Defer(Exception):
    """Raise from a handler when something outside the job keeps it from running now (an open circuit breaker).

    Not a failure: the attempt is handed back uncounted, like a drained one, and the message comes back after
    `delay` seconds. Watchers see a QUEUED event whose error (type "Deferred") says why and whose retry_delay
    says when.
    """

    def __init__(self, delay: float, reason: str) -> None:
        super().__init__(reason)
        self.delay = max(0.0, delay)
        self.reason = reason


@dataclass
class JobContext:
    """What a handler gets: the job, its attempt, and a way to report progress."""

    job: job_pb2.Job
    attempt: int
    _report: Callable[[float, str], Awaitable[None]]
    # What the job's waiting parent is finished with once this attempt's success is stored (finish_parent).
    parent_result: job_pb2.JobResult | None = None

    async def progress(self, percent: float, message: str) -> None:
        await self._report(percent, message)

    def finish_parent(self, result: job_pb2.JobResult) -> None:
        """Finish this job's waiting parent with `result` once this attempt has succeeded.

        The child's own end is stored first, so whoever sees the parent finished finds this child ended too.
        Nothing is finished if the attempt does not succeed, or if the parent no longer waits by then.
        """
        self.parent_result = result


Handler = Callable[[JobContext], Coroutine[Any, Any, job_pb2.JobResult]]


def classify(exc: BaseException, policy: RetryPolicy, attempt: int) -> job_pb2.JobError:
    if isinstance(exc, TimeoutError):
        error_type, message = "Timeout", "the attempt ran past its time limit"
    else:
        error_type = exc.error_type if isinstance(exc, JobError) else type(exc).__name__
        message = str(exc) or error_type
    permanent = (isinstance(exc, JobError) and exc.permanent) or error_type in policy.permanent_errors
    # The message is stored, streamed and dead-lettered: no secret a provider quoted back may be in it.
    error = job_pb2.JobError(attempt=attempt, type=error_type, message=redact(message)[:2000], permanent=permanent)
    error.time.CopyFrom(lifecycle.now())
    return error


@dataclass
class _Running:
    msg: Msg
    job_id: str
    handler_task: asyncio.Task[job_pb2.JobResult] | None = None
    # Why the handler was stopped from outside: "cancel" (CancelJob) or "drain" (shutdown).
    stop_reason: str = ""
    task: asyncio.Task[None] | None = field(default=None, repr=False)

    def stop(self, reason: str) -> None:
        if self.handler_task is not None and self.handler_task.done():
            return
        # Before the handler starts, the reason alone keeps it from starting.
        self.stop_reason = self.stop_reason or reason
        if self.handler_task is not None:
            self.handler_task.cancel()


class Worker:
    def __init__(
        self,
        *,
        service: str,
        handlers: Mapping[str, Handler],
        runtime: Runtime,
        config: WorkerConfig,
        queue: WorkQueue | None = None,
        rand: Callable[[], float] = random.random,
        hooks: Sequence[WorkerHook] = (),
        worker_id: str = "",
        host: str = "",
        pid: int | None = None,
    ) -> None:
        """`worker_id`, `host` and `pid` name a remote worker the gateway runs this runtime for; by default the
        worker is this process."""
        self.service = service
        # A service's queue by default; a task pool brings the queue of its task names.
        self._queue = queue or runtime.topology.service_queue(service)
        self._handlers = dict(handlers)
        self._nc = runtime.nc
        self._store = runtime.store
        # Claims and outcomes of the attempts in hand, to the store in batches.
        self._updates = JobUpdates(runtime.store)
        self._topology = runtime.topology
        self._config = config
        self._rand = rand
        self._hooks = tuple(hooks)
        self._events = runtime.events
        self._dead_letters = runtime.dead_letters
        self._parents = runtime.parents
        self._running: dict[str, _Running] = {}
        self._pullers: dict[str, PullConsumer] = {}
        # From its consumers' first requests to the start of its drain (the process's readiness).
        self.consuming = False
        # Whether interactive jobs wait: batch jobs are asked for only while none does.
        self._interactive_waiting = True
        self._stopping = asyncio.Event()
        # Set when a draining worker stops waiting for outages to end.
        self._abandon = asyncio.Event()
        # The NATS connection announces its own losses (syllabus.jetstream.connect).
        self._outages = outages.OutageLog(log, announced_elsewhere={outages.NATS})
        self._presence = Presence(
            self._nc,
            self._topology,
            self._queue.name,
            config.concurrency,
            self._running.keys,
            worker_id,
            kinds=self._queue.tasks or tuple(self._handlers),
            host=host,
            pid=pid,
        )
        # While the queue is paused (AdminService.PauseQueue) its pullers ask for nothing.
        self._pause = PauseWatch(self._nc, self._topology, self._queue.name, self._paused)
        # Who runs an attempt, as its record shows (Job.attempts): the presence entry's id, and the host.
        self.worker_id = self._presence.worker_id
        self._host = host or socket.gethostname()

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def paused(self) -> bool:
        """Whether its queue is paused, as this worker has heard."""
        return self._pause.paused

    def stop(self) -> None:
        """Begin draining: fetch nothing more; run() returns once running jobs are finished or handed back."""
        self._stopping.set()

    async def run(self) -> None:
        try:
            await outages.until_reachable(
                self._prepare,
                self._outages,
                "the worker starts once it answers",
                self._stopping,
            )
        except outages.GaveUp:
            return  # stopped before it could start: nothing was fetched
        cancels = await self._nc.subscribe(self._topology.cancel_subjects, cb=self._on_cancel)
        await self._start_pulling()
        self.consuming = True
        heartbeat = asyncio.create_task(self._heartbeat())
        presence = self._presence
        present = asyncio.create_task(presence.run())
        log.info(
            "%s worker running %s (concurrency %d)",
            self.service,
            sorted(self._handlers),
            self._config.concurrency,
        )
        try:
            await self._stopping.wait()
        finally:
            self.consuming = False
            # No interest, no more messages: the server skips a request nobody listens to. (One it sent just
            # before comes back after its AckWait.) Only then are the jobs in hand handed back, or a handed-back
            # job could be sent to this worker's own requests again.
            for puller in self._pullers.values():
                await puller.stop()
            await self._drain()
            heartbeat.cancel()
            presence.stop()
            await present
            await cancels.unsubscribe()
            await self._pause.stop()

    async def _prepare(self) -> None:
        await ensure_consumers(self._nc, self._topology, self._queue, self._config)
        if not self._pause.watching:
            # Before the first request: the worker of a paused queue asks for nothing from the start.
            await self._pause.start()

    def _paused(self, paused: bool) -> None:
        for puller in self._pullers.values():
            if paused:
                puller.pause()
            else:
                puller.resume()

    async def _start_pulling(self) -> None:
        for priority in PRIORITIES:
            puller = PullConsumer(
                self._nc,
                self._topology.jobs_stream,
                self._queue.consumer(priority),
                on_message=functools.partial(self._arrived, priority),
                on_credit=functools.partial(self._credit_back, priority),
            )
            if self._pause.paused:
                puller.pause()
            await puller.start()
            self._pullers[priority] = puller
        try:
            info = await self._nc.jetstream().consumer_info(
                self._topology.jobs_stream, self._queue.consumer(PRIORITIES[0])
            )
            self._interactive_waiting = info.num_pending > 0
        except Exception as exc:
            # Not known: the first interactive request will tell (its messages, or its expiring empty).
            log.debug("interactive backlog unknown at start: %s", exc)
        self._replenish()

    def _credit_back(self, priority: str) -> None:
        """Jobs asked for will not come: a request ended unfilled, or requests were lost. An interactive request
        that ended unfilled saw no interactive job waiting for as long as it was out (and if requests were lost
        instead, the next interactive job says otherwise at once)."""
        if priority == PRIORITIES[0]:
            self._interactive_waiting = False
        self._replenish()

    def _replenish(self) -> None:
        """Ask for as many jobs as there are free slots: interactive ones, and batch ones while no interactive job
        waits. Small gaps wait to grow to half the concurrency (one request covers many jobs), unless nothing is
        asked for at all. An interactive job may run beyond the concurrency by what batch requests still have out,
        so they never keep it waiting."""
        if self._stopping.is_set():
            return
        interactive, batch = (self._pullers[p] for p in PRIORITIES)
        capacity = self._config.concurrency
        threshold = max(1, capacity // 2)
        free = capacity - len(self._running) - interactive.outstanding
        if self._interactive_waiting:
            if free > 0 and (free >= threshold or interactive.outstanding == 0):
                self._ask(interactive, free)
            return
        if interactive.outstanding == 0 and len(self._running) < capacity:
            # Nothing interactive waits: one free slot's worth, to hear of the next interactive job at once.
            self._ask(interactive, 1)
        free = capacity - len(self._running) - batch.outstanding
        if free > 0 and (free >= threshold or batch.outstanding == 0):
            self._ask(batch, free)

    def _ask(self, puller: PullConsumer, count: int) -> None:
        sending = puller.request(count)
        if sending is not None:
            sending.add_done_callback(self._asked)

    def _asked(self, sending: asyncio.Task[None]) -> None:
        exc = None if sending.cancelled() else sending.exception()
        if exc is None:
            return
        dependency = outages.unreachable(exc)
        if dependency is None:
            log.warning("asking for jobs failed: %s", exc)
        else:
            # The puller's watchdog asks again.
            self._outages.down(dependency, exc, "no jobs are fetched until it answers")

    def _arrived(self, priority: str, msg: Msg) -> None:
        self._outages.up(outages.NATS)
        if priority == PRIORITIES[0]:
            with contextlib.suppress(ValueError):
                self._interactive_waiting = pending_after(msg) > 0
        self._start(msg)
        self._replenish()

    def _start(self, msg: Msg) -> None:
        try:
            job = job_pb2.Job.FromString(msg.data)
        except Exception:
            log.error("dropping undecodable message on %s", msg.subject)
            _spawn(msg.term())
            return
        running = _Running(msg=msg, job_id=job.id)
        self._running[job.id] = running
        running.task = asyncio.create_task(self._handle(running, job))
        running.task.add_done_callback(lambda _: self._finished(running))

    def _finished(self, running: _Running) -> None:
        # A redelivery of the same job may have replaced this entry meanwhile; that one is still running.
        if self._running.get(running.job_id) is running:
            del self._running[running.job_id]
        self._replenish()

    async def _on_cancel(self, msg: Msg) -> None:
        running = self._running.get(msg.subject.rsplit(".", 1)[-1])
        if running is not None:
            running.stop("cancel")

    async def _drain(self) -> None:
        tasks = [r.task for r in self._running.values() if r.task is not None]
        if not tasks:
            return
        log.info("draining: waiting up to %.0fs for %d running jobs", self._config.drain_grace, len(tasks))
        _, pending = await asyncio.wait(tasks, timeout=self._config.drain_grace)
        if pending:
            log.info("handing %d unfinished jobs back to the queue", len(pending))
            # Outcomes still waiting for an unreachable NATS or store are given up: their messages come back.
            self._abandon.set()
            for running in list(self._running.values()):
                running.stop("drain")
            await asyncio.wait(pending)

    async def _handle(self, running: _Running, payload: job_pb2.Job) -> None:
        log_attempt(payload, self.worker_id)
        try:
            await self._attempt(running, payload)
        except Exception as exc:
            dependency = outages.unreachable(exc)
            if dependency is None:
                # A bug, not an outage: leave the message unacked; it is redelivered after AckWait and the claim
                # sorts out what was already recorded.
                log.exception("job %s: bookkeeping failed; it will be redelivered", payload.id)
            else:
                self._outages.down(dependency, exc, "jobs fetched meanwhile are offered again once it answers")
                with contextlib.suppress(Exception):
                    await running.msg.nak(delay=OUTAGE_DEFER)

    async def _attempt(self, running: _Running, payload: job_pb2.Job) -> None:
        msg = running.msg
        claim = lifecycle.Claim(
            worker_id=self.worker_id,
            host=self._host,
            sequence=_stream_sequence(msg),
            max_stalls=self._config.retry.max_stalls,
        )
        # Until the claim is stored nothing is ours: an outage here leaves the message to be redelivered.
        claimed = await self._updates.update(payload.id, claim.change())
        self._outages.up(outages.STORE)
        job = claimed.job
        if job is not None:
            log_attempt(job, self.worker_id)
        if job is None:
            # Expected after an outage: a submission whose publish was not acknowledged in time is refused and its
            # record removed, yet the message may have been stored; the caller was told to try again.
            log.warning("job %s has no record (its submission was refused); dropping its message", payload.id)
            await msg.term()
            return
        if claim.outcome == "finished":
            # Redelivered after its result was stored (the ack was lost): make sure the end was announced.
            await self._until_recorded(job.id, lambda: self._announce_end(job, msg))
            return
        if claim.outcome == "duplicate":
            # Another message of the job was claimed since this one was published: that one carries the job.
            log.info("job %s: dropping a second message of it (its attempts ran from another)", job.id)
            await msg.term()
            return
        stalled = claim.stalled
        if stalled is not None:
            await self._until_recorded(job.id, lambda: self._stall_event(job, stalled))
        if claim.outcome == "stalled":
            limit = self._config.retry.max_stalls
            error = job_pb2.JobError(
                attempt=stalled.attempt if stalled is not None else job.attempt,
                type="Stalled",
                message=f"the job stalled {job.stall_count} times (its worker stopped heart-beating); "
                f"at most {limit} allowed",
                permanent=True,
            )
            error.time.CopyFrom(lifecycle.now())
            reason = f"stalled more than {limit} times"
            await self._until_recorded(job.id, lambda: self._dead_letter(job, None, error, msg, reason))
            return
        if claim.outcome == "exhausted":
            error = job_pb2.JobError(
                attempt=job.attempt,
                type="AttemptsExhausted",
                message=f"attempt {job.attempt} of {job.max_attempts} was lost with its worker; no attempts remain",
                permanent=True,
            )
            error.time.CopyFrom(lifecycle.now())
            reason = "max attempts exhausted (last attempt lost)"
            await self._until_recorded(job.id, lambda: self._dead_letter(job, None, error, msg, reason))
            return
        lease = lifecycle.Lease.of(job)
        await self._send(job, E.JOB_EVENT_TYPE_STARTED)
        log.info("job %s attempt %d started", job.id, lease.attempt)
        handler = self._handlers.get(job.kind)
        if handler is None:
            error = job_pb2.JobError(
                attempt=lease.attempt,
                type="NoHandler",
                message=f"the {self.service} service has no handler for {job.kind!r}",
                permanent=True,
            )
            error.time.CopyFrom(lifecycle.now())
            await self._until_recorded(job.id, lambda: self._dead_letter(job, lease, error, msg, "permanent error"))
            return
        await self._run_handler(running, job, lease, handler)

    async def _run_handler(self, running: _Running, job: job_pb2.Job, lease: lifecycle.Lease, handler: Handler) -> None:
        ctx = JobContext(
            job=job, attempt=lease.attempt, _report=lambda pct, text: self._progress(job.id, lease, pct, text)
        )
        handler_task = asyncio.create_task(self._hooked(handler, ctx) if self._hooks else handler(ctx))
        running.handler_task = handler_task
        if running.stop_reason:
            handler_task.cancel()
        timeout = job.options.timeout.ToNanoseconds() / 1e9 or self._config.default_timeout
        limit = asyncio.get_running_loop().call_later(timeout, running.stop, "timeout")
        try:
            # Waits for the (possibly cancelled) handler to end without raising its outcome here.
            await asyncio.wait({handler_task})
        except BaseException:
            handler_task.cancel()
            raise
        finally:
            limit.cancel()
        settle = self._settlement(running, job, lease, handler_task, ctx.parent_result)
        await self._until_recorded(job.id, settle)

    async def _hooked(self, handler: Handler, ctx: JobContext) -> job_pb2.JobResult:
        for hook in self._hooks:
            await hook.before_attempt(ctx)
        return await handler(ctx)

    async def _ended(
        self, job: job_pb2.Job, outcome: str, call: Callable[[WorkerHook], Awaitable[None]] | None = None
    ) -> None:
        """The hooks of a stored outcome (see syllabus.hooks); none of them can change or repeat it."""
        for hook in self._hooks:
            try:
                if call is not None:
                    await call(hook)
                await hook.after_attempt(job, outcome)
            except Exception:
                log.exception("hook %s failed on job %s (%s)", type(hook).__name__, job.id, outcome)

    def _settlement(
        self,
        running: _Running,
        job: job_pb2.Job,
        lease: lifecycle.Lease,
        handler_task: asyncio.Task[job_pb2.JobResult],
        parent_result: job_pb2.JobResult | None,
    ) -> Callable[[], Awaitable[None]]:
        """How the attempt ended, as the step that records it. A handler that finished before a stop could reach it
        keeps its outcome."""
        msg = running.msg
        exc = None if handler_task.cancelled() else handler_task.exception()
        if not handler_task.cancelled() and exc is None:
            result = handler_task.result()
            return lambda: self._succeeded(job, lease, result, msg, parent_result)
        if isinstance(exc, WaitForChildren):
            message = str(exc)
            return lambda: self._wait_for_children(job, lease, message, msg)
        if isinstance(exc, Defer):
            deferral = exc
            return lambda: self._defer(job, lease, deferral, msg)
        if running.stop_reason == "cancel":
            return lambda: self._finish_canceled(job, lease, msg)
        if running.stop_reason == "drain":
            return lambda: self._requeue(job, lease, msg)
        if running.stop_reason == "timeout":
            return self._failure(job, lease, TimeoutError(), msg)
        dependency = None if exc is None or isinstance(exc, JobError) else outages.unreachable(exc)
        if exc is not None and dependency is not None:
            # The job met an outage, it did not fail: it goes back without spending the attempt. (A JobError is
            # the handler's own verdict and stands.)
            self._outages.down(dependency, exc, "jobs that need it are handed back without spending an attempt")
            outage = Defer(OUTAGE_DEFER, f"{dependency} is unreachable: {outages.describe(exc)}")
            return lambda: self._defer(job, lease, outage, msg)
        return self._failure(
            job, lease, exc or RetryableError("the handler was cancelled", error_type="Cancelled"), msg
        )

    def _failure(
        self, job: job_pb2.Job, lease: lifecycle.Lease, exc: BaseException, msg: Msg
    ) -> Callable[[], Awaitable[None]]:
        """The step recording a failed attempt. The error is made once, so every try of the step records the same
        one."""
        error = classify(exc, self._config.retry, lease.attempt)
        retry_after = exc.retry_after if isinstance(exc, JobError) else None
        return lambda: self._failed(job, lease, error, retry_after, msg)

    async def _until_recorded(self, job_id: str, step: Callable[[], Awaitable[None]]) -> None:
        """Run a bookkeeping step, again and again while NATS or the store is unreachable.

        The job stays in hand meanwhile (the heartbeat keeps its message), so an outcome reached before an
        outage is recorded once the outage ends, instead of being lost and costing the job another attempt.
        Every step tolerates finding its own earlier try recorded. A draining worker gives up after its grace:
        the message is then redelivered.
        """
        try:
            await outages.until_reachable(
                step, self._outages, "finished jobs keep their outcome until it answers", self._abandon
            )
        except outages.GaveUp:
            log.warning("job %s: stopping with its outcome unrecorded; it will be redelivered", job_id)

    async def _heartbeat(self) -> None:
        """One loop for every job in hand: keeps each lease alive at JetStream (also while its outcome waits for
        an outage to end), and notices a CancelJob whose NATS notice was missed (the flag in the store)."""
        while True:
            await asyncio.sleep(self._config.heartbeat)  # a periodic duty, not synchronisation
            beating = [r for r in self._running.values() if r.task is not None and not r.task.done()]
            # Every lease first: a store that answers slowly (locked, or cut off) must not make a job miss its
            # heartbeat behind another job's cancel check, and be redelivered while its outcome waits.
            for running in beating:
                try:
                    await running.msg.in_progress()
                except Exception as exc:
                    self._heartbeat_failed(running, exc)
            for running in beating:
                try:
                    current = await self._store.get_job(running.job_id)
                except Exception as exc:
                    if self._heartbeat_failed(running, exc):
                        break  # the other flags wait for the next beat rather than for the outage, each in turn
                    continue
                if current is not None and current.cancel_requested:
                    running.stop("cancel")

    def _heartbeat_failed(self, running: _Running, exc: Exception) -> bool:
        """Logs a failed step of the heartbeat; True when it was an outage."""
        dependency = outages.unreachable(exc)
        if dependency is None:
            log.warning("heartbeat of job %s failed: %s", running.job_id, exc)
            return False
        self._outages.down(dependency, exc, "running jobs go on; their outcome waits for it")
        return True

    async def _stall_event(self, job: job_pb2.Job, stalled: job_pb2.JobAttempt) -> None:
        """STALLED: the abandoned attempt went back to the queue (what the job does next has its own event)."""
        error = job_pb2.JobError(
            attempt=stalled.attempt,
            type="Stalled",
            message=f"worker {stalled.worker_id or 'unknown'} stopped heart-beating during attempt {stalled.attempt}",
        )
        error.time.CopyFrom(job.update_time)
        event = event_for(job, E.JOB_EVENT_TYPE_STALLED, error=error)
        event.state = E.JOB_STATE_QUEUED
        event.attempt = stalled.attempt
        await self._events.publish(event, event_msg_id(event))
        log.warning("job %s: %s (stall %d)", job.id, error.message, job.stall_count)

    async def _progress(self, job_id: str, lease: lifecycle.Lease, percent: float, message: str) -> None:
        updated = await self._updates.update(job_id, lifecycle.progress(lease, percent, message))
        if updated.applied and updated.job is not None:
            await self._send(updated.job, E.JOB_EVENT_TYPE_PROGRESS)

    async def _succeeded(
        self,
        job: job_pb2.Job,
        lease: lifecycle.Lease,
        result: job_pb2.JobResult,
        msg: Msg,
        parent_result: job_pb2.JobResult | None,
    ) -> None:
        updated = await self._updates.update(job.id, lifecycle.succeed(lease, result, parent_result))
        if _landed(updated, lease, E.JOB_STATE_SUCCEEDED):
            assert updated.job is not None
            await self._emit(updated.job, E.JOB_EVENT_TYPE_SUCCEEDED)
            await self._end_parent(updated.job)
            await msg.ack()
            log.info("job %s succeeded", job.id)
            if self._hooks:
                done = updated.job
                await self._ended(done, "succeeded", lambda hook: hook.on_success(done))
        else:
            await self._lost_lease(job.id, updated.job, lease.attempt, msg)

    async def _wait_for_children(self, job: job_pb2.Job, lease: lifecycle.Lease, message: str, msg: Msg) -> None:
        updated = await self._updates.update(job.id, lifecycle.wait_for_children(lease, message))
        if _landed(updated, lease, E.JOB_STATE_WAITING):
            assert updated.job is not None
            await self._emit(updated.job, E.JOB_EVENT_TYPE_WAITING)
            await msg.ack()
            log.info("job %s waits for its children", job.id)
            if self._hooks:
                await self._ended(updated.job, "waiting")
        elif updated.job is not None and lifecycle.is_terminal(updated.job.state):
            # The children finished (or one failed) before this attempt could record that it waits for them.
            await msg.ack()
        else:
            await self._lost_lease(job.id, updated.job, lease.attempt, msg)

    async def _failed(
        self, job: job_pb2.Job, lease: lifecycle.Lease, error: job_pb2.JobError, retry_after: float | None, msg: Msg
    ) -> None:
        policy = self._config.retry
        attempt = lease.attempt
        if error.permanent:
            await self._dead_letter(job, lease, error, msg, "permanent error")
            return
        if attempt >= job.max_attempts:
            await self._dead_letter(job, lease, error, msg, f"max attempts ({job.max_attempts}) exhausted")
            return
        delay = policy.delay(attempt, self._rand())
        if retry_after is not None:
            delay = max(delay, retry_after)
        updated = await self._updates.update(job.id, lifecycle.retry(lease, error))
        if _landed(updated, lease, E.JOB_STATE_RETRYING):
            assert updated.job is not None
            await self._emit(updated.job, E.JOB_EVENT_TYPE_RETRYING, error=updated.job.errors[-1], retry_delay=delay)
            await msg.nak(delay=delay)
            log.info("job %s attempt %d failed (%s); retrying in %.1fs", job.id, attempt, error.type, delay)
            if self._hooks:
                retrying, stored = updated.job, updated.job.errors[-1]
                await self._ended(retrying, "retrying", lambda hook: hook.on_retry(retrying, stored, delay))
        else:
            await self._lost_lease(job.id, updated.job, lease.attempt, msg)

    async def _dead_letter(
        self, job: job_pb2.Job, lease: lifecycle.Lease | None, error: job_pb2.JobError, msg: Msg, reason: str
    ) -> None:
        current = await self._store.get_job(job.id)
        if _failed_by(current, lease or lifecycle.Lease.of(job), error):
            assert current is not None
            # An earlier try stored the letter and the failure; what may be missing is announcing it.
            failed = current
        else:
            change = lifecycle.fail(lease, error)
            new = change(current) if current is not None else None
            if new is None:
                await self._lost_lease(job.id, current, lease.attempt if lease else job.attempt, msg)
                return
            # The copy comes first: term() deletes the payload from the work queue.
            await self._dead_letters.put(new, msg.subject, reason)
            updated = await self._updates.update(job.id, change)
            if not (updated.applied and updated.job is not None):
                await msg.term()
                return
            failed = updated.job
        stored_error = failed.errors[-1] if failed.errors else error
        await self._emit(failed, E.JOB_EVENT_TYPE_DEAD_LETTERED, error=stored_error)
        await self._emit(failed, E.JOB_EVENT_TYPE_FAILED, error=stored_error)
        if job.parent_id:
            await self._parents.child_failed(failed, f"{reason} ({stored_error.type}: {stored_error.message})")
        await msg.term()
        log.warning("job %s dead-lettered: %s (%s: %s)", job.id, reason, stored_error.type, stored_error.message)
        if self._hooks:
            await self._ended(failed, "dead_lettered", lambda hook: hook.on_dead_letter(failed, stored_error, reason))

    async def _finish_canceled(self, job: job_pb2.Job, lease: lifecycle.Lease, msg: Msg) -> None:
        updated = await self._updates.update(job.id, lifecycle.canceled_by_worker(lease))
        if _landed(updated, lease, E.JOB_STATE_CANCELED):
            assert updated.job is not None
            await self._emit(updated.job, E.JOB_EVENT_TYPE_CANCELED)
            await msg.term()
            log.info("job %s canceled", job.id)
            if self._hooks:
                await self._ended(updated.job, "canceled")
        else:
            # A newer attempt holds the job: its delivery settles the message (terming it here would leave that
            # attempt's job with no message should its worker die).
            await self._lost_lease(job.id, updated.job, lease.attempt, msg)

    async def _requeue(self, job: job_pb2.Job, lease: lifecycle.Lease, msg: Msg) -> None:
        updated = await self._updates.update(job.id, lifecycle.requeue(lease))
        if _landed(updated, lease, E.JOB_STATE_QUEUED):
            assert updated.job is not None
            await self._emit(updated.job, E.JOB_EVENT_TYPE_QUEUED)
            await msg.nak()
            log.info("job %s handed back to its queue (the worker is draining)", job.id)
            if self._hooks:
                await self._ended(updated.job, "requeued")
        else:
            # A nak would hand a newer attempt's job out again, to run beside it.
            await self._lost_lease(job.id, updated.job, lease.attempt, msg)

    async def _defer(self, job: job_pb2.Job, lease: lifecycle.Lease, deferral: Defer, msg: Msg) -> None:
        updated = await self._updates.update(job.id, lifecycle.requeue(lease))
        if _landed(updated, lease, E.JOB_STATE_QUEUED):
            assert updated.job is not None
            reason = redact(deferral.reason)
            error = job_pb2.JobError(attempt=lease.attempt, type="Deferred", message=reason, permanent=False)
            error.time.CopyFrom(updated.job.update_time)
            await self._emit(updated.job, E.JOB_EVENT_TYPE_QUEUED, error=error, retry_delay=deferral.delay)
            await msg.nak(delay=deferral.delay)
            log.info("job %s deferred for %.1fs: %s", job.id, deferral.delay, deferral.reason)
            if self._hooks:
                await self._ended(updated.job, "deferred")
        else:
            await self._lost_lease(job.id, updated.job, lease.attempt, msg)

    async def _lost_lease(self, job_id: str, current: job_pb2.Job | None, attempt: int, msg: Msg) -> None:
        if current is None:
            # Nothing can own a job without a record: its message is dropped, as a redelivery's claim would.
            log.warning("job %s: attempt %d lost its lease (its record is gone); result discarded", job_id, attempt)
            await msg.term()
            return
        if current.state == E.JOB_STATE_CANCELED:
            await msg.term()
            return
        # Another attempt owns the job now; its delivery will ack the message, so this one must not.
        log.warning(
            "job %s: attempt %d lost its lease (now attempt %d, %s); result discarded",
            job_id,
            attempt,
            current.attempt,
            E.JobState.Name(current.state),
        )

    async def _announce_end(self, job: job_pb2.Job, msg: Msg) -> None:
        """A redelivered job found ended: its end is announced (again: the stream drops a duplicate) and, should
        its worker have died before, what the end does to its parent is done."""
        end = {
            E.JOB_STATE_SUCCEEDED: E.JOB_EVENT_TYPE_SUCCEEDED,
            E.JOB_STATE_FAILED: E.JOB_EVENT_TYPE_FAILED,
            E.JOB_STATE_CANCELED: E.JOB_EVENT_TYPE_CANCELED,
        }[job.state]
        error = job.errors[-1] if job.errors and end == E.JOB_EVENT_TYPE_FAILED else None
        await self._emit(job, end, error=error)
        if error is not None and job.parent_id:
            await self._parents.child_failed(job, f"{error.type}: {error.message}")
        await self._end_parent(job)
        await msg.ack()

    async def _end_parent(self, child: job_pb2.Job) -> None:
        """Finish the waiting parent a child's stored success was to finish (JobContext.finish_parent)."""
        if child.state == E.JOB_STATE_SUCCEEDED and child.parent_id and child.HasField("parent_result"):
            await self._parents.finish(child.parent_id, child.parent_result)

    async def _send(self, job: job_pb2.Job, type_: job_pb2.JobEventType) -> None:
        """A step in between: published without waiting for the stream (see EventPublisher.send); one lost to an
        outage costs watchers a step of detail, never the end."""
        try:
            await self._events.send(event_for(job, type_))
        except Exception as exc:
            dependency = outages.unreachable(exc)
            if dependency is None:
                raise
            self._outages.down(dependency, exc, "running jobs go on; their outcome waits for it")

    async def _emit(
        self,
        job: job_pb2.Job,
        type_: job_pb2.JobEventType,
        *,
        error: job_pb2.JobError | None = None,
        retry_delay: float | None = None,
    ) -> None:
        event = event_for(job, type_, error=error, retry_delay=retry_delay)
        await self._events.publish(event, event_msg_id(event))


def _spawn(step: Coroutine[Any, Any, None]) -> None:
    """A message settled without waiting for it (nothing depends on it being done)."""
    task = asyncio.create_task(step)
    _settling.add(task)
    task.add_done_callback(_settling.discard)


# Fire-and-forget settlements, kept referenced until done.
_settling: set[asyncio.Task[None]] = set()


def _stream_sequence(msg: Msg) -> int:
    """Where `msg` is stored in JOBS; 0 for a message that is not a JetStream delivery (its reply says nothing)."""
    try:
        return stream_sequence(msg)
    except ValueError:
        return 0


def _landed(updated: Updated, lease: lifecycle.Lease, state: job_pb2.JobState) -> bool:
    """The transition to `state` is stored: by this write, or by an earlier try of it whose answer was lost."""
    return updated.job is not None and (updated.applied or lifecycle.recorded(updated.job, lease, state))


def _failed_by(job: job_pb2.Job | None, lease: lifecycle.Lease, error: job_pb2.JobError) -> bool:
    """An earlier try of this dead-lettering stored the failure (and, before it, the dead letter)."""
    if not lifecycle.recorded(job, lease, E.JOB_STATE_FAILED):
        return False
    assert job is not None
    last = job.errors[-1] if job.errors else None
    return last is not None and last.attempt == error.attempt and last.type == error.type
