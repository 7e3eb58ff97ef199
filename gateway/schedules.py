"""ScheduleService: recurring jobs created, read, changed, paused, resumed, deleted and triggered by hand.

A write changes the record first and the timer (syllabus.schedules.Timers) second, so that a failure between
the two leaves nothing firing that should not: a paused or deleted record makes its timer's firings do nothing,
and the firing of a deleted schedule removes its timer. What needs the timer (create, resume, a timing change)
is refused with UNAVAILABLE when NATS cannot store it, and may be asked again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf import field_mask_pb2

from gateway.auth import caller
from gateway.status import Context
from gateway.taskinputs import TaskInputs
from syllabus import lifecycle, schedules
from syllabus.errors import AlreadyExists, InvalidRequest, NotFound
from syllabus.firings import Firings
from syllabus.ids import new_id
from syllabus.runtime import Runtime
from syllabus.store.records import DuplicateId
from syllabus.taskregistry import TaskRegistry
from syllabus.topology import TASK_KIND
from syllabus.v1 import job_pb2, schedule_service_pb2_grpc
from syllabus.v1 import schedule_service_pb2 as pb

RESOURCE = "syllabus.v1.Schedule"
# What UpdateSchedule may change, and what an empty mask means.
SETTABLE = ("cron", "interval", "time_zone", "spec", "options", "overlap_policy", "catchup_window", "description")
_TIMING = frozenset({"cron", "interval", "time_zone"})


class ScheduleService(schedule_service_pb2_grpc.ScheduleServiceServicer):
    def __init__(self, *, runtime: Runtime, default_max_attempts: int, tasks: TaskRegistry) -> None:
        self._store = runtime.store
        self._default_max_attempts = default_max_attempts
        self._tasks = TaskInputs(tasks)
        self._timers = schedules.Timers(runtime.nc.jetstream(), runtime.topology)
        self._firings = Firings(runtime.store, runtime.submitter)

    async def CreateSchedule(self, request: pb.CreateScheduleRequest, context: Context) -> pb.CreateScheduleResponse:
        given = request.schedule
        if given.id and not schedules.SCHEDULE_ID.match(given.id):
            raise InvalidRequest("schedule.id", "1 to 40 letters, digits, '-' or '_', starting with a letter or digit")
        schedule = job_pb2.Schedule()
        _copy_settable(given, schedule, SETTABLE)
        schedule.id = given.id or new_id()
        schedule.tenant = caller.tenant()
        await self._check(schedule)
        now = lifecycle.now()
        schedule.create_time.CopyFrom(now)
        schedule.update_time.CopyFrom(now)
        _set_first_run(schedule, now.ToDatetime(tzinfo=UTC))
        try:
            await self._store.insert_schedule(schedule)
        except DuplicateId:
            raise AlreadyExists(f"schedule {schedule.id!r} already exists") from None
        try:
            await self._timers.arm(schedule)
        except BaseException:
            await self._store.delete_schedule(schedule.id)
            raise
        return pb.CreateScheduleResponse(schedule=await self._shown(schedule))

    async def GetSchedule(self, request: pb.GetScheduleRequest, context: Context) -> pb.GetScheduleResponse:
        return pb.GetScheduleResponse(schedule=await self._shown(await self._schedule(request.schedule_id)))

    async def ListSchedules(self, request: pb.ListSchedulesRequest, context: Context) -> pb.ListSchedulesResponse:
        found = await self._store.list_schedules(caller.tenant())
        return pb.ListSchedulesResponse(schedules=[await self._shown(schedule) for schedule in found])

    async def UpdateSchedule(self, request: pb.UpdateScheduleRequest, context: Context) -> pb.UpdateScheduleResponse:
        paths = tuple(request.update_mask.paths) or SETTABLE
        for path in paths:
            if path not in SETTABLE:
                raise InvalidRequest("update_mask", f"{path!r} cannot be changed; these can: {', '.join(SETTABLE)}")
        if request.schedule.id and request.schedule.id != request.schedule_id:
            raise InvalidRequest("schedule.id", f"must be {request.schedule_id!r} (or unset): an id does not change")
        current = await self._schedule(request.schedule_id)
        changed = job_pb2.Schedule()
        changed.CopyFrom(current)
        _copy_settable(request.schedule, changed, paths)
        if "cron" in paths and changed.cron:
            changed.ClearField("interval")
            paths = (*paths, "interval")
        if "interval" in paths and changed.HasField("interval"):
            changed.cron = ""
            paths = (*paths, "cron")
        await self._check(changed)
        retime = bool(_TIMING.intersection(paths))

        def update(latest: job_pb2.Schedule) -> job_pb2.Schedule:
            # Onto the record as it is now: a firing may have noted a run meanwhile.
            merged = _changed(latest)
            _copy_settable(changed, merged, paths)
            if retime and not merged.paused:
                _set_first_run(merged, merged.update_time.ToDatetime(tzinfo=UTC))
            return merged

        updated = await self._store.update_schedule(changed.id, update)
        if updated is None:
            raise NotFound(RESOURCE, changed.id)
        if retime and not updated.paused:
            await self._timers.arm(updated)
        return pb.UpdateScheduleResponse(schedule=await self._shown(updated))

    async def PauseSchedule(self, request: pb.PauseScheduleRequest, context: Context) -> pb.PauseScheduleResponse:
        await self._schedule(request.schedule_id)

        def pause(schedule: job_pb2.Schedule) -> job_pb2.Schedule:
            paused = _changed(schedule)
            paused.paused = True
            paused.ClearField("next_run_time")
            return paused

        updated = await self._store.update_schedule(request.schedule_id, pause)
        if updated is None:
            raise NotFound(RESOURCE, request.schedule_id)
        await self._timers.disarm(updated.id)
        return pb.PauseScheduleResponse(schedule=await self._shown(updated))

    async def ResumeSchedule(self, request: pb.ResumeScheduleRequest, context: Context) -> pb.ResumeScheduleResponse:
        """Resuming a schedule that runs arms its timer again (the timing restarts from now)."""
        await self._schedule(request.schedule_id)

        def resume(schedule: job_pb2.Schedule) -> job_pb2.Schedule:
            resumed = _changed(schedule)
            resumed.paused = False
            _set_first_run(resumed, resumed.update_time.ToDatetime(tzinfo=UTC))
            return resumed

        updated = await self._store.update_schedule(request.schedule_id, resume)
        if updated is None:
            raise NotFound(RESOURCE, request.schedule_id)
        await self._timers.arm(updated)
        return pb.ResumeScheduleResponse(schedule=await self._shown(updated))

    async def DeleteSchedule(self, request: pb.DeleteScheduleRequest, context: Context) -> pb.DeleteScheduleResponse:
        await self._schedule(request.schedule_id)
        await self._timers.disarm(request.schedule_id)
        if not await self._store.delete_schedule(request.schedule_id):
            raise NotFound(RESOURCE, request.schedule_id)
        return pb.DeleteScheduleResponse()

    async def TriggerSchedule(self, request: pb.TriggerScheduleRequest, context: Context) -> pb.TriggerScheduleResponse:
        schedule = await self._schedule(request.schedule_id)
        return pb.TriggerScheduleResponse(job=await self._firings.triggered(schedule))

    async def _schedule(self, schedule_id: str) -> job_pb2.Schedule:
        schedule = await self._store.get_schedule(schedule_id)
        if schedule is None or schedule.tenant != caller.tenant():
            raise NotFound(RESOURCE, schedule_id)
        return schedule

    async def _check(self, schedule: job_pb2.Schedule) -> None:
        """Refuses what the proto rules cannot see; resolves the template's attempts, which firings then use."""
        schedules.timing_of(schedule)
        if schedule.spec.WhichOneof("kind") is None:
            raise InvalidRequest("schedule.spec", "set the kind of job each firing makes")
        own = "not allowed: each firing makes its own job"
        if schedule.options.HasField("run_at"):
            raise InvalidRequest("schedule.options.run_at", own)
        if schedule.options.idempotency_key:
            raise InvalidRequest("schedule.options.idempotency_key", own)
        max_attempts = self._default_max_attempts
        if schedule.spec.WhichOneof("kind") == TASK_KIND:
            max_attempts = (
                await self._tasks.check(schedule.spec.task, "schedule.spec.task", caller.tenant())
            ).max_attempts
        if not schedule.options.max_attempts:
            schedule.options.max_attempts = max_attempts

    async def _shown(self, schedule: job_pb2.Schedule) -> job_pb2.Schedule:
        """The record with its next run times and its runs' jobs' states as they are now."""
        shown = job_pb2.Schedule()
        shown.CopyFrom(schedule)
        if not shown.paused:
            times = schedules.next_runs(shown, datetime.now(UTC))
            shown.next_run_times.extend(schedules.stamp(when) for when in times)
            shown.next_run_time.CopyFrom(shown.next_run_times[0])
        for run in shown.recent_runs:
            if run.job_id:
                job = await self._store.get_job(run.job_id)
                run.state = job.state if job is not None else job_pb2.JOB_STATE_UNSPECIFIED
        return shown


def _copy_settable(source: job_pb2.Schedule, target: job_pb2.Schedule, paths: tuple[str, ...]) -> None:
    mask = field_mask_pb2.FieldMask(paths=list(paths))
    mask.MergeMessage(source, target, replace_message_field=True, replace_repeated_field=True)


def _changed(schedule: job_pb2.Schedule) -> job_pb2.Schedule:
    changed = job_pb2.Schedule()
    changed.CopyFrom(schedule)
    changed.update_time.CopyFrom(lifecycle.now())
    return changed


def _set_first_run(schedule: job_pb2.Schedule, armed: datetime) -> None:
    schedule.next_run_time.CopyFrom(schedules.stamp(schedules.first_run(schedules.timing_of(schedule), armed)))
