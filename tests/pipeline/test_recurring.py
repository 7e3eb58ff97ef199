"""Recurring schedules on real NATS: JetStream message schedules fire, the scheduler's firing relay makes the jobs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import grpc
import pytest
import pytest_asyncio
from google.protobuf import duration_pb2, field_mask_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from scheduler.recurring import FiringRelay
from syllabus import schedules
from syllabus.firings import UNFINISHED, Firings
from syllabus.runtime import Runtime
from syllabus.v1 import job_pb2, job_service_pb2
from syllabus.v1 import schedule_service_pb2 as pb
from tests.pipeline import handlers
from tests.pipeline.conftest import TENANT, Pipeline, StartWorker

E = job_pb2


def summarize(text: str) -> job_pb2.JobSpec:
    return job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text=text))


def every(seconds: int, text: str = "tick", **fields: object) -> job_pb2.Schedule:
    return job_pb2.Schedule(
        interval=duration_pb2.Duration(seconds=seconds),
        spec=summarize(text),
        **fields,  # type: ignore[arg-type]
    )


async def create(pipeline: Pipeline, schedule: job_pb2.Schedule) -> job_pb2.Schedule:
    response: pb.CreateScheduleResponse = await pipeline.schedules.CreateSchedule(
        pb.CreateScheduleRequest(schedule=schedule), timeout=10
    )
    return response.schedule


async def get(pipeline: Pipeline, schedule_id: str) -> job_pb2.Schedule:
    response: pb.GetScheduleResponse = await pipeline.schedules.GetSchedule(
        pb.GetScheduleRequest(schedule_id=schedule_id), timeout=10
    )
    return response.schedule


class Arrivals:
    """Every job that arrives on the pipeline (its QUEUED event), as it arrives."""

    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._call = pipeline.jobs.WatchJobs(job_service_pb2.WatchJobsRequest(), timeout=120)
        self.seen: list[str] = []

    async def ready(self) -> None:
        await self._call.wait_for_connection()

    async def next(self, count: int, schedule_id: str) -> list[job_pb2.Job]:
        """The next `count` jobs made by the schedule."""
        made: list[job_pb2.Job] = []
        while len(made) < count:
            response: job_service_pb2.WatchJobsResponse = await self._call.read()
            event = response.event
            if event.type != E.JOB_EVENT_TYPE_QUEUED or event.job_id in self.seen:
                continue
            self.seen.append(event.job_id)
            job = await self._pipeline.store.get_job(event.job_id)
            if job is not None and job.schedule_id == schedule_id:
                made.append(job)
        return made

    def close(self) -> None:
        self._call.cancel()


@pytest_asyncio.fixture
async def firings(pipeline: Pipeline) -> AsyncIterator[None]:
    """The scheduler's firing relay on the pipeline."""
    stop = asyncio.Event()
    runtime = Runtime.build(pipeline.nc, pipeline.store, pipeline.topology)
    task = asyncio.create_task(FiringRelay(runtime).run(stop))
    yield
    stop.set()
    await task


@pytest_asyncio.fixture
async def arrivals(pipeline: Pipeline) -> AsyncIterator[Arrivals]:
    watching = Arrivals(pipeline)
    await watching.ready()
    yield watching
    watching.close()


def fire_second(job: job_pb2.Job) -> int:
    """The second a schedule's job was due, read back from its id's time (milliseconds)."""
    crockford = "0123456789abcdefghjkmnpqrstvwxyz"
    value = 0
    for char in job.id[:10]:
        value = value * 32 + crockford.index(char)
    return value // 1000


async def test_an_interval_schedule_makes_a_job_per_firing_each_run_by_a_worker(
    pipeline: Pipeline, firings: None, arrivals: Arrivals, start_worker: StartWorker
) -> None:
    await start_worker()
    schedule = await create(pipeline, every(1, "every second", id="tick"))
    assert schedule.id == "tick" and not schedule.paused
    assert len(schedule.next_run_times) == schedules.NEXT_RUNS

    jobs = await arrivals.next(3, "tick")
    seconds = [fire_second(job) for job in jobs]
    assert len(set(seconds)) == 3, "one job per firing, each for its own second"
    for job in jobs:
        assert job.id == schedules.job_id("tick", datetime.fromtimestamp(fire_second(job), UTC))
        assert job.spec.summarize_text.text == "every second"
        assert (await pipeline.wait_end(job.id)).state == E.JOB_STATE_SUCCEEDED

    shown = await get(pipeline, "tick")
    ran = {run.job_id: run for run in shown.recent_runs}
    assert {job.id for job in jobs} <= set(ran)
    assert all(ran[job.id].state == E.JOB_STATE_SUCCEEDED for job in jobs)
    listed: job_service_pb2.ListJobsResponse = await pipeline.jobs.ListJobs(job_service_pb2.ListJobsRequest())
    assert {job.id for job in jobs} <= {job.id for job in listed.jobs}


async def test_a_paused_schedule_stops_firing_until_resumed(
    pipeline: Pipeline, firings: None, arrivals: Arrivals, start_worker: StartWorker
) -> None:
    await start_worker()
    await create(pipeline, every(1, id="paused"))
    # A schedule that keeps firing beside it is the clock the test waits on.
    await create(pipeline, every(1, id="clock"))
    await arrivals.next(1, "paused")

    response: pb.PauseScheduleResponse = await pipeline.schedules.PauseSchedule(
        pb.PauseScheduleRequest(schedule_id="paused")
    )
    assert response.schedule.paused and not response.schedule.next_run_times
    before = {run.job_id for run in (await get(pipeline, "paused")).recent_runs}
    # A firing stored just before the pause may still be relayed; after it, none.
    await arrivals.next(3, "clock")
    paused_runs = {run.job_id for run in (await get(pipeline, "paused")).recent_runs}
    assert len(paused_runs - before) <= 1
    await arrivals.next(3, "clock")
    assert {run.job_id for run in (await get(pipeline, "paused")).recent_runs} == paused_runs

    resumed: pb.ResumeScheduleResponse = await pipeline.schedules.ResumeSchedule(
        pb.ResumeScheduleRequest(schedule_id="paused")
    )
    assert not resumed.schedule.paused and resumed.schedule.next_run_times
    (job,) = await arrivals.next(1, "paused")
    assert job.id not in paused_runs


async def test_a_deleted_schedule_stops_firing_and_its_jobs_stay(
    pipeline: Pipeline, firings: None, arrivals: Arrivals, start_worker: StartWorker
) -> None:
    await start_worker()
    await create(pipeline, every(1, id="gone"))
    await create(pipeline, every(1, id="clock"))
    (made,) = await arrivals.next(1, "gone")
    await pipeline.schedules.DeleteSchedule(pb.DeleteScheduleRequest(schedule_id="gone"))
    timers = schedules.Timers(pipeline.nc.jetstream(), pipeline.topology)
    assert not await timers.armed("gone")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await get(pipeline, "gone")
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    await arrivals.next(3, "clock")
    assert await pipeline.store.get_job(made.id) is not None
    stored = [
        job_id
        for job_id in arrivals.seen
        if (job := await pipeline.store.get_job(job_id)) and job.schedule_id == "gone"
    ]
    assert len(stored) <= 2, "at most a firing stored before the deletion is relayed after it"


async def test_overlap_skip_makes_no_job_while_the_previous_run_is_unfinished(
    pipeline: Pipeline, firings: None, arrivals: Arrivals, start_worker: StartWorker
) -> None:
    await start_worker()
    handlers.release.clear()
    await create(pipeline, every(1, "block", id="slow"))
    await create(pipeline, every(1, id="clock"))
    (first,) = await arrivals.next(1, "slow")
    await arrivals.next(3, "clock")
    shown = await get(pipeline, "slow")
    skipped = [run for run in shown.recent_runs if run.skipped]
    assert skipped and all(run.skipped == UNFINISHED and not run.job_id for run in skipped)
    assert [run.job_id for run in shown.recent_runs if run.job_id] == [first.id]

    handlers.release.set()
    await pipeline.wait_end(first.id)
    (second,) = await arrivals.next(1, "slow")
    assert second.id != first.id


async def test_overlap_allow_all_runs_every_firing(
    pipeline: Pipeline, firings: None, arrivals: Arrivals, start_worker: StartWorker
) -> None:
    await start_worker()
    handlers.release.clear()
    await create(pipeline, every(1, "block", id="many", overlap_policy=E.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL))
    jobs = await arrivals.next(3, "many")
    assert len({job.id for job in jobs}) == 3
    handlers.release.set()


async def test_a_firing_handled_twice_makes_its_job_once(pipeline: Pipeline) -> None:
    runtime = Runtime.build(pipeline.nc, pipeline.store, pipeline.topology)
    await create(pipeline, every(60, id="twice"))
    timers = schedules.Timers(pipeline.nc.jetstream(), pipeline.topology)
    await timers.disarm("twice")  # the test fires it by hand
    record = await pipeline.store.get_schedule("twice")
    assert record is not None
    due = schedules.to_datetime(record.next_run_time)
    firings = Firings(pipeline.store, runtime.submitter)

    # A relay that died after submitting, before noting the run: the firing comes again and finds its job.
    from syllabus.firings import job_from

    (early,) = await runtime.submitter.submit([job_from(record, due)])
    made = await firings.fired("twice", due, due + timedelta(seconds=60))
    assert [job.id for job in made] == [early.job.id]
    # A relay that died after noting the run, before its ack: the firing comes again and does nothing.
    assert await firings.fired("twice", due, due + timedelta(seconds=60)) == []
    record = await pipeline.store.get_schedule("twice")
    assert record is not None
    assert [run.job_id for run in record.recent_runs] == [early.job.id]


async def test_firings_missed_in_an_outage_run_within_the_catch_up_window(pipeline: Pipeline) -> None:
    runtime = Runtime.build(pipeline.nc, pipeline.store, pipeline.topology)
    firings = Firings(pipeline.store, runtime.submitter)
    timers = schedules.Timers(pipeline.nc.jetstream(), pipeline.topology)
    window = duration_pb2.Duration(seconds=30)
    for schedule_id, catch_up in (("window", window), ("none", duration_pb2.Duration())):
        await create(
            pipeline,
            every(
                10,
                id=schedule_id,
                catchup_window=catch_up,
                overlap_policy=E.SCHEDULE_OVERLAP_POLICY_ALLOW_ALL,
            ),
        )
        await timers.disarm(schedule_id)
        record = await pipeline.store.get_schedule(schedule_id)
        assert record is not None
        # Everything was down for 95 s after the firing due at `expected`; the server fires once on return.
        expected = schedules.to_datetime(record.next_run_time)
        back = expected + timedelta(seconds=95, milliseconds=300)
        made = await firings.fired(schedule_id, back, back + timedelta(seconds=10))
        due = sorted(fire_second(job) - int(expected.timestamp()) for job in made)
        shown = await get(pipeline, schedule_id)
        missed = [run.skipped for run in shown.recent_runs if run.skipped]
        if catch_up == window:
            assert due == [70, 80, 90], "each firing due within 30 s of the return runs as its own job"
            assert missed == ["7 firings missed by more than the catch-up window (30s)"]
        else:
            assert due == [90], "with no window only the newest runs"
            assert missed == ["9 firings missed by more than the catch-up window (0s)"]


async def test_trigger_runs_one_job_now_even_while_paused(pipeline: Pipeline, start_worker: StartWorker) -> None:
    await start_worker()
    await create(pipeline, every(3600, "by hand", id="manual"))
    await pipeline.schedules.PauseSchedule(pb.PauseScheduleRequest(schedule_id="manual"))
    response: pb.TriggerScheduleResponse = await pipeline.schedules.TriggerSchedule(
        pb.TriggerScheduleRequest(schedule_id="manual")
    )
    assert response.job.schedule_id == "manual"
    assert (await pipeline.wait_end(response.job.id)).state == E.JOB_STATE_SUCCEEDED
    shown = await get(pipeline, "manual")
    assert shown.recent_runs[0].triggered and shown.recent_runs[0].job_id == response.job.id
    assert shown.recent_runs[0].state == E.JOB_STATE_SUCCEEDED


async def test_update_changes_the_timing_and_the_template(pipeline: Pipeline) -> None:
    await create(pipeline, every(3600, "before", id="changing"))
    response: pb.UpdateScheduleResponse = await pipeline.schedules.UpdateSchedule(
        pb.UpdateScheduleRequest(
            schedule_id="changing",
            schedule=job_pb2.Schedule(cron="0 9 * * 1-5", time_zone="Europe/Amsterdam", spec=summarize("after")),
            update_mask=field_mask_pb2.FieldMask(paths=["cron", "time_zone", "spec"]),
        )
    )
    changed = response.schedule
    assert changed.cron == "0 9 * * 1-5" and not changed.HasField("interval")
    assert changed.spec.summarize_text.text == "after"
    zone = ZoneInfo("Europe/Amsterdam")
    for stamp in changed.next_run_times:
        local = stamp.ToDatetime(tzinfo=UTC).astimezone(zone)
        assert (local.hour, local.minute, local.weekday() < 5) == (9, 0, True)
    listed: pb.ListSchedulesResponse = await pipeline.schedules.ListSchedules(pb.ListSchedulesRequest())
    assert [schedule.id for schedule in listed.schedules] == ["changing"]


def violations(exc: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(exc)
    assert status is not None
    fields: list[str] = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            fields.extend(violation.field for violation in bad.field_violations)
    return fields


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        (job_pb2.Schedule(spec=summarize("x")), "schedule.cron"),
        (
            job_pb2.Schedule(cron="* * * * *", interval=duration_pb2.Duration(seconds=5), spec=summarize("x")),
            "schedule.cron",
        ),
        (job_pb2.Schedule(cron="61 * * * *", spec=summarize("x")), "schedule.cron"),
        (job_pb2.Schedule(cron="@every 5s", spec=summarize("x")), "schedule.cron"),
        (job_pb2.Schedule(cron="* * * * *", time_zone="Mars/Olympus", spec=summarize("x")), "schedule.time_zone"),
        (every(0), "schedule.interval"),
        (
            job_pb2.Schedule(interval=duration_pb2.Duration(seconds=1, nanos=5), spec=summarize("x")),
            "schedule.interval",
        ),
        (every(5, id="no spaces"), "schedule.id"),
        (every(5, id="x" * 41), "schedule.id"),
        (job_pb2.Schedule(interval=duration_pb2.Duration(seconds=5)), "schedule.spec"),
        (every(5, options=job_pb2.JobOptions(idempotency_key="k")), "schedule.options.idempotency_key"),
        (
            job_pb2.Schedule(
                interval=duration_pb2.Duration(seconds=5),
                spec=job_pb2.JobSpec(task=job_pb2.Task(name="nobody.serves")),
            ),
            "schedule.spec.task.name",
        ),
    ],
)
async def test_bad_schedules_are_refused_naming_the_field(
    pipeline: Pipeline, schedule: job_pb2.Schedule, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(pipeline, schedule)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(caught.value)
    listed: pb.ListSchedulesResponse = await pipeline.schedules.ListSchedules(pb.ListSchedulesRequest())
    assert not listed.schedules


async def test_a_taken_id_is_already_exists_and_unknown_ids_are_not_found(pipeline: Pipeline) -> None:
    await create(pipeline, every(60, id="taken"))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await create(pipeline, every(5, id="taken"))
    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert (await get(pipeline, "taken")).interval.seconds == 60
    for call, request in (
        (pipeline.schedules.GetSchedule, pb.GetScheduleRequest(schedule_id="nope")),
        (pipeline.schedules.PauseSchedule, pb.PauseScheduleRequest(schedule_id="nope")),
        (pipeline.schedules.ResumeSchedule, pb.ResumeScheduleRequest(schedule_id="nope")),
        (pipeline.schedules.DeleteSchedule, pb.DeleteScheduleRequest(schedule_id="nope")),
        (pipeline.schedules.TriggerSchedule, pb.TriggerScheduleRequest(schedule_id="nope")),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await call(request)
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.aio.AioRpcError) as masked:
        await pipeline.schedules.UpdateSchedule(
            pb.UpdateScheduleRequest(
                schedule_id="taken",
                schedule=job_pb2.Schedule(),
                update_mask=field_mask_pb2.FieldMask(paths=["tenant"]),
            )
        )
    assert "update_mask" in violations(masked.value)
    with pytest.raises(grpc.aio.AioRpcError) as renamed:
        await pipeline.schedules.UpdateSchedule(
            pb.UpdateScheduleRequest(schedule_id="taken", schedule=job_pb2.Schedule(id="other"))
        )
    assert "schedule.id" in violations(renamed.value)


async def test_a_cron_in_a_time_zone_fires_through_nats_server(
    pipeline: Pipeline, firings: None, arrivals: Arrivals, start_worker: StartWorker
) -> None:
    await start_worker()
    await create(
        pipeline, job_pb2.Schedule(id="zoned", cron="* * * * * *", time_zone="America/New_York", spec=summarize("tz"))
    )
    timer = await pipeline.nc.jetstream().get_last_msg(
        pipeline.topology.scheduled_stream, pipeline.topology.timer_subject("zoned")
    )
    assert timer.headers is not None
    assert timer.headers["Nats-Schedule"] == "* * * * * *"
    assert timer.headers["Nats-Schedule-Time-Zone"] == "America/New_York"
    first, second = await arrivals.next(2, "zoned")
    assert fire_second(first) != fire_second(second)
    record = await pipeline.store.get_schedule("zoned")
    assert record is not None and record.next_run_time.seconds > fire_second(first)


async def test_a_schedule_stored_without_its_timer_is_armed_when_a_relay_starts(
    pipeline: Pipeline, arrivals: Arrivals, start_worker: StartWorker
) -> None:
    # As a gateway killed between storing the schedule and arming its timer leaves it.
    schedule = every(1, "half made", id="half")
    schedule.tenant = TENANT
    schedule.options.max_attempts = 3
    await pipeline.store.insert_schedule(schedule)
    timers = schedules.Timers(pipeline.nc.jetstream(), pipeline.topology)
    assert not await timers.armed("half")
    await start_worker()
    stop = asyncio.Event()
    relay = FiringRelay(Runtime.build(pipeline.nc, pipeline.store, pipeline.topology))
    task = asyncio.create_task(relay.run(stop))
    try:
        (job,) = await arrivals.next(1, "half")
        assert job.spec.summarize_text.text == "half made"
        assert await timers.armed("half")
    finally:
        stop.set()
        await task
