"""Tenants apart: a caller of one tenant calls every RPC on another tenant's job, course, schedule and dead
letter, on gRPC and on REST, and learns nothing (NOT_FOUND, or lists without them); an admin may act for it."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Awaitable, Callable

import grpc
import pytest
from google.protobuf import duration_pb2, field_mask_pb2

from gateway.services import SERVICE_NAMES, WORKER_SERVICE_NAME
from syllabus.v1 import (
    admin_service_pb2 as A,
)
from syllabus.v1 import (
    course_pb2,
    job_pb2,
)
from syllabus.v1 import (
    course_service_pb2 as C,
)
from syllabus.v1 import (
    job_service_pb2 as J,
)
from syllabus.v1 import (
    schedule_service_pb2 as S,
)
from tests.auth.conftest import Secured, Stubs
from tests.pipeline.conftest import StartWorker

NOT_FOUND = grpc.StatusCode.NOT_FOUND


@dataclasses.dataclass
class Theirs:
    """What tenant acme owns."""

    job: job_pb2.Job
    dead: job_pb2.Job
    course: course_pb2.Course
    schedule_id: str
    source: course_pb2.Source


def summarize(text: str, key: str = "") -> J.SubmitJobRequest:
    return J.SubmitJobRequest(
        spec=job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text=text)),
        options=job_pb2.JobOptions(idempotency_key=key),
    )


@pytest.fixture
async def theirs(secured: Secured, start_worker: StartWorker) -> Theirs:
    await start_worker()
    acme = secured.stubs(secured.token("acme", "read write"))
    try:
        job = (await acme.jobs.SubmitJob(summarize("ok", key="shared-key"), timeout=10)).job
        dead = (await acme.jobs.SubmitJob(summarize("fail-permanent"), timeout=10)).job
        for one in (job, dead):
            async for _ in acme.jobs.WatchJob(J.WatchJobRequest(job_id=one.id), timeout=30):
                pass
        course = await acme.courses.CreateCourse(
            C.CreateCourseRequest(course=job_pb2.GenerateCourse(prompt="Rust for Python developers")), timeout=10
        )
        schedule = job_pb2.Schedule(id="nightly", interval=duration_pb2.Duration(seconds=3600))
        schedule.spec.summarize_text.text = "ok"
        await acme.schedules.CreateSchedule(S.CreateScheduleRequest(schedule=schedule), timeout=10)
        upload = C.UploadSourceRequest(filename="notes.md", data=b"# Ownership\n\nEvery value has one owner.\n")
        source = (await acme.courses.UploadSource(upload, timeout=10)).source
    finally:
        await acme.channel.close()
    return Theirs(job, dead, course.course, "nightly", source)


async def not_found(call: Awaitable[object]) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    assert caught.value.code() == NOT_FOUND, caught.value.details()


async def stream_not_found(call: grpc.aio.UnaryStreamCall) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        async for _ in call:
            pass
    assert caught.value.code() == NOT_FOUND


Check = Callable[[Stubs, Theirs], Awaitable[None]]
CHECKS: dict[str, Check] = {}


def check(method: str) -> Callable[[Check], Check]:
    def add(fn: Check) -> Check:
        CHECKS[method] = fn
        return fn

    return add


@check("syllabus.v1.JobService.SubmitJob")
async def _submit(s: Stubs, t: Theirs) -> None:
    # The same idempotency key is another tenant's own: a new job, not theirs.
    mine = (await s.jobs.SubmitJob(summarize("ok", key="shared-key"), timeout=10)).job
    assert mine.id != t.job.id and mine.tenant == "globex"


@check("syllabus.v1.JobService.SubmitJobs")
async def _submit_many(s: Stubs, t: Theirs) -> None:
    answer = await s.jobs.SubmitJobs(J.SubmitJobsRequest(requests=[summarize("ok", key="shared-key")]), timeout=10)
    assert answer.results[0].job.id != t.job.id


@check("syllabus.v1.JobService.RunJob")
async def _run(s: Stubs, t: Theirs) -> None:
    # Their idempotency key makes a job of the caller's own, and the run streams only that job's events.
    request = J.RunJobRequest(spec=summarize("ok").spec, options=job_pb2.JobOptions(idempotency_key="shared-key"))
    answers = [answer async for answer in s.jobs.RunJob(request, timeout=30)]
    mine = answers[0].submitted.job
    assert mine.id != t.job.id and mine.tenant == "globex"
    events = [answer.event for answer in answers[1:]]
    assert {(e.job_id, e.tenant) for e in events} == {(mine.id, "globex")} and events[-1].terminal


@check("syllabus.v1.JobService.GetJob")
async def _get(s: Stubs, t: Theirs) -> None:
    await not_found(s.jobs.GetJob(J.GetJobRequest(job_id=t.job.id), timeout=10))


@check("syllabus.v1.JobService.ListJobs")
async def _list(s: Stubs, t: Theirs) -> None:
    listed = await s.jobs.ListJobs(J.ListJobsRequest(page_size=100), timeout=10)
    assert {job.tenant for job in listed.jobs} <= {"globex"}
    assert t.job.id not in {job.id for job in listed.jobs}


@check("syllabus.v1.JobService.CancelJob")
async def _cancel(s: Stubs, t: Theirs) -> None:
    await not_found(s.jobs.CancelJob(J.CancelJobRequest(job_id=t.job.id), timeout=10))


@check("syllabus.v1.JobService.WatchJob")
async def _watch(s: Stubs, t: Theirs) -> None:
    await stream_not_found(s.jobs.WatchJob(J.WatchJobRequest(job_id=t.job.id), timeout=10))


@check("syllabus.v1.JobService.GetJobArtifact")
async def _artifact(s: Stubs, t: Theirs) -> None:
    await not_found(
        s.jobs.GetJobArtifact(J.GetJobArtifactRequest(job_id=t.course.job_id, name="course.md"), timeout=10)
    )


@check("syllabus.v1.JobService.WatchJobs")
async def _watch_all(s: Stubs, t: Theirs) -> None:
    # Covered with both tenants submitting: test_watch_jobs_streams_only_the_callers_events.
    call = s.jobs.WatchJobs(J.WatchJobsRequest(), timeout=10)
    await call.initial_metadata()
    call.cancel()


@check("syllabus.v1.CourseService.CreateCourse")
async def _create_course(s: Stubs, t: Theirs) -> None:
    made = await s.courses.CreateCourse(
        C.CreateCourseRequest(course=job_pb2.GenerateCourse(prompt="Go for Java developers")), timeout=10
    )
    assert made.course.tenant == "globex" and made.course.id != t.course.id


@check("syllabus.v1.CourseService.GetCourse")
async def _get_course(s: Stubs, t: Theirs) -> None:
    await not_found(s.courses.GetCourse(C.GetCourseRequest(course_id=t.course.id), timeout=10))


@check("syllabus.v1.CourseService.ListCourses")
async def _list_courses(s: Stubs, t: Theirs) -> None:
    listed = await s.courses.ListCourses(C.ListCoursesRequest(), timeout=10)
    assert t.course.id not in {course.id for course in listed.courses}


@check("syllabus.v1.CourseService.GetCourseDocument")
async def _document(s: Stubs, t: Theirs) -> None:
    await not_found(s.courses.GetCourseDocument(C.GetCourseDocumentRequest(course_id=t.course.id), timeout=10))


@check("syllabus.v1.CourseService.RegenerateCoursePart")
async def _regenerate(s: Stubs, t: Theirs) -> None:
    request = C.RegenerateCoursePartRequest(course_id=t.course.id, module_index=0, part=C.COURSE_PART_LESSON)
    await not_found(s.courses.RegenerateCoursePart(request, timeout=10))


@check("syllabus.v1.CourseService.UpdateLesson")
async def _update_lesson(s: Stubs, t: Theirs) -> None:
    request = C.UpdateLessonRequest(course_id=t.course.id, module_index=0, body_markdown="# Mine")
    await not_found(s.courses.UpdateLesson(request, timeout=10))


@check("syllabus.v1.CourseService.UpdateQuestion")
async def _update_question(s: Stubs, t: Theirs) -> None:
    question = course_pb2.Question(text="Q?", choices=["a", "b"], answer_index=0, explanation="a.")
    request = C.UpdateQuestionRequest(course_id=t.course.id, module_index=0, question_index=0, question=question)
    await not_found(s.courses.UpdateQuestion(request, timeout=10))


@check("syllabus.v1.CourseService.ReorderModules")
async def _reorder(s: Stubs, t: Theirs) -> None:
    await not_found(s.courses.ReorderModules(C.ReorderModulesRequest(course_id=t.course.id, order=[0]), timeout=10))


@check("syllabus.v1.CourseService.AddModule")
async def _add_module(s: Stubs, t: Theirs) -> None:
    request = C.AddModuleRequest(course_id=t.course.id, title="Mine", objectives=["Take it"])
    await not_found(s.courses.AddModule(request, timeout=10))


@check("syllabus.v1.CourseService.RemoveModule")
async def _remove_module(s: Stubs, t: Theirs) -> None:
    await not_found(s.courses.RemoveModule(C.RemoveModuleRequest(course_id=t.course.id, module_index=0), timeout=10))


@check("syllabus.v1.CourseService.ListCourseVersions")
async def _versions(s: Stubs, t: Theirs) -> None:
    await not_found(s.courses.ListCourseVersions(C.ListCourseVersionsRequest(course_id=t.course.id), timeout=10))


@check("syllabus.v1.CourseService.UploadSource")
async def _upload_source(s: Stubs, t: Theirs) -> None:
    upload = C.UploadSourceRequest(filename="notes.txt", data=b"Goroutines are cheap threads.")
    made = (await s.courses.UploadSource(upload, timeout=10)).source
    assert made.tenant == "globex" and made.id != t.source.id


@check("syllabus.v1.CourseService.GetSource")
async def _get_source(s: Stubs, t: Theirs) -> None:
    await not_found(s.courses.GetSource(C.GetSourceRequest(source_id=t.source.id), timeout=10))
    # Nor can a course be grounded on it.
    course = job_pb2.GenerateCourse(prompt="Rust ownership", source_ids=[t.source.id])
    await not_found(s.courses.CreateCourse(C.CreateCourseRequest(course=course), timeout=10))


@check("syllabus.v1.CourseService.ListSources")
async def _list_sources(s: Stubs, t: Theirs) -> None:
    listed = await s.courses.ListSources(C.ListSourcesRequest(), timeout=10)
    assert t.source.id not in {source.id for source in listed.sources}


@check("syllabus.v1.CourseService.DeleteSource")
async def _delete_source(s: Stubs, t: Theirs) -> None:
    await not_found(s.courses.DeleteSource(C.DeleteSourceRequest(source_id=t.source.id), timeout=10))


@check("syllabus.v1.ScheduleService.CreateSchedule")
async def _create_schedule(s: Stubs, t: Theirs) -> None:
    schedule = job_pb2.Schedule(id="globex-own", interval=duration_pb2.Duration(seconds=3600))
    schedule.spec.summarize_text.text = "ok"
    made = await s.schedules.CreateSchedule(S.CreateScheduleRequest(schedule=schedule), timeout=10)
    assert made.schedule.tenant == "globex"


@check("syllabus.v1.ScheduleService.GetSchedule")
async def _get_schedule(s: Stubs, t: Theirs) -> None:
    await not_found(s.schedules.GetSchedule(S.GetScheduleRequest(schedule_id=t.schedule_id), timeout=10))


@check("syllabus.v1.ScheduleService.ListSchedules")
async def _list_schedules(s: Stubs, t: Theirs) -> None:
    listed = await s.schedules.ListSchedules(S.ListSchedulesRequest(), timeout=10)
    assert t.schedule_id not in {schedule.id for schedule in listed.schedules}


@check("syllabus.v1.ScheduleService.UpdateSchedule")
async def _update_schedule(s: Stubs, t: Theirs) -> None:
    change = job_pb2.Schedule(interval=duration_pb2.Duration(seconds=60))
    request = S.UpdateScheduleRequest(
        schedule_id=t.schedule_id, schedule=change, update_mask=field_mask_pb2.FieldMask(paths=["interval"])
    )
    await not_found(s.schedules.UpdateSchedule(request, timeout=10))


@check("syllabus.v1.ScheduleService.PauseSchedule")
async def _pause_schedule(s: Stubs, t: Theirs) -> None:
    await not_found(s.schedules.PauseSchedule(S.PauseScheduleRequest(schedule_id=t.schedule_id), timeout=10))


@check("syllabus.v1.ScheduleService.ResumeSchedule")
async def _resume_schedule(s: Stubs, t: Theirs) -> None:
    await not_found(s.schedules.ResumeSchedule(S.ResumeScheduleRequest(schedule_id=t.schedule_id), timeout=10))


@check("syllabus.v1.ScheduleService.DeleteSchedule")
async def _delete_schedule(s: Stubs, t: Theirs) -> None:
    await not_found(s.schedules.DeleteSchedule(S.DeleteScheduleRequest(schedule_id=t.schedule_id), timeout=10))


@check("syllabus.v1.ScheduleService.TriggerSchedule")
async def _trigger_schedule(s: Stubs, t: Theirs) -> None:
    await not_found(s.schedules.TriggerSchedule(S.TriggerScheduleRequest(schedule_id=t.schedule_id), timeout=10))


@check("syllabus.v1.AdminService.ListDeadLetters")
async def _list_dead(s: Stubs, t: Theirs) -> None:
    listed = await s.admin.ListDeadLetters(A.ListDeadLettersRequest(), timeout=10)
    assert t.dead.id not in {dead.job.id for dead in listed.dead_letters}


@check("syllabus.v1.AdminService.GetDeadLetter")
async def _get_dead(s: Stubs, t: Theirs) -> None:
    await not_found(s.admin.GetDeadLetter(A.GetDeadLetterRequest(job_id=t.dead.id), timeout=10))


@check("syllabus.v1.AdminService.RetryDeadLetter")
async def _retry_dead(s: Stubs, t: Theirs) -> None:
    await not_found(s.admin.RetryDeadLetter(A.RetryDeadLetterRequest(job_id=t.dead.id), timeout=10))


@check("syllabus.v1.AdminService.PurgeDeadLetters")
async def _purge_dead(s: Stubs, t: Theirs) -> None:
    await s.admin.PurgeDeadLetters(A.PurgeDeadLettersRequest(), timeout=10)


@check("syllabus.v1.AdminService.PurgeJobs")
async def _purge_jobs(s: Stubs, t: Theirs) -> None:
    await s.admin.PurgeJobs(A.PurgeJobsRequest(older_than=duration_pb2.Duration(seconds=0)), timeout=10)


@check("syllabus.v1.AdminService.GetQueueStats")
async def _stats(s: Stubs, t: Theirs) -> None:
    stats = await s.admin.GetQueueStats(A.GetQueueStatsRequest(window=duration_pb2.Duration(seconds=3600)), timeout=10)
    # acme's two ended jobs are not counted for globex, which has ended none.
    ended = [(counts.succeeded, counts.failed) for queue in stats.queues for counts in queue.counts]
    assert all(pair == (0, 0) for pair in ended), ended


@check("syllabus.v1.AdminService.WatchQueueStats")
async def _stats_watched(s: Stubs, t: Theirs) -> None:
    call = s.admin.WatchQueueStats(A.WatchQueueStatsRequest(window=duration_pb2.Duration(seconds=3600)), timeout=10)
    stats = await call.read()
    call.cancel()
    assert isinstance(stats, A.WatchQueueStatsResponse)
    ended = [(counts.succeeded, counts.failed) for queue in stats.queues for counts in queue.counts]
    assert all(pair == (0, 0) for pair in ended), ended


@check("syllabus.v1.AdminService.GetActivity")
async def _activity(s: Stubs, t: Theirs) -> None:
    # Only the caller's jobs are counted: as many created as it has jobs, none of acme's (nor its dead letter).
    activity = await s.admin.GetActivity(A.GetActivityRequest(), timeout=10)
    listed = await s.jobs.ListJobs(J.ListJobsRequest(page_size=1), timeout=10)
    assert sum(bucket.created for bucket in activity.buckets) == listed.total_size
    assert sum(bucket.failed for bucket in activity.buckets) == 0


@check("syllabus.v1.AdminService.WatchWorkers")
async def _workers_watched(s: Stubs, t: Theirs) -> None:
    # Workers are the operator's, shared by every tenant, as ListWorkers shows them.
    call = s.admin.WatchWorkers(A.WatchWorkersRequest(), timeout=10)
    listed = await call.read()
    call.cancel()
    assert isinstance(listed, A.WatchWorkersResponse) and listed.workers


@check("syllabus.v1.AdminService.ListWorkers")
async def _workers(s: Stubs, t: Theirs) -> None:
    # Workers are the operator's, shared by every tenant: an admin sees them all.
    await s.admin.ListWorkers(A.ListWorkersRequest(), timeout=10)


@check("syllabus.v1.AdminService.PauseQueue")
async def _pause(s: Stubs, t: Theirs) -> None:
    await s.admin.PauseQueue(A.PauseQueueRequest(queue="renderer"), timeout=10)


@check("syllabus.v1.AdminService.ResumeQueue")
async def _resume(s: Stubs, t: Theirs) -> None:
    await s.admin.ResumeQueue(A.ResumeQueueRequest(queue="renderer"), timeout=10)


def every_method() -> set[str]:
    from google.protobuf import descriptor_pool

    pool = descriptor_pool.Default()
    return {method.full_name for name in SERVICE_NAMES for method in pool.FindServiceByName(name).methods}


def test_every_rpc_has_a_cross_tenant_check() -> None:
    assert set(CHECKS) == every_method()


async def test_another_tenant_reaches_nothing_of_theirs_over_grpc(secured: Secured, theirs: Theirs) -> None:
    globex = secured.stubs(secured.token("globex", "read write admin"))
    try:
        for method, fn in CHECKS.items():
            try:
                await fn(globex, theirs)
            except AssertionError as failure:
                raise AssertionError(f"{method}: {failure}") from None
    finally:
        await globex.channel.close()
    # Nothing of acme's changed: its job, dead letter, course and schedule are all still there, as they were.
    acme = secured.stubs(secured.token("acme", "read write admin"))
    try:
        job = (await acme.jobs.GetJob(J.GetJobRequest(job_id=theirs.job.id), timeout=10)).job
        assert job.state == job_pb2.JOB_STATE_SUCCEEDED
        await acme.admin.GetDeadLetter(A.GetDeadLetterRequest(job_id=theirs.dead.id), timeout=10)
        schedule = (await acme.schedules.GetSchedule(S.GetScheduleRequest(schedule_id="nightly"), timeout=10)).schedule
        assert schedule.interval.seconds == 3600 and not schedule.paused
        await acme.courses.GetCourse(C.GetCourseRequest(course_id=theirs.course.id), timeout=10)
        await acme.courses.GetSource(C.GetSourceRequest(source_id=theirs.source.id), timeout=10)
    finally:
        await acme.channel.close()


async def test_an_admin_acts_for_another_tenant_when_it_names_it(secured: Secured, theirs: Theirs) -> None:
    ops = secured.stubs(secured.token("ops", "admin"), tenant="acme")
    try:
        job = (await ops.jobs.GetJob(J.GetJobRequest(job_id=theirs.job.id), timeout=10)).job
        assert job.id == theirs.job.id
        letters = await ops.admin.ListDeadLetters(A.ListDeadLettersRequest(), timeout=10)
        assert theirs.dead.id in {dead.job.id for dead in letters.dead_letters}
    finally:
        await ops.channel.close()


async def test_watch_jobs_streams_only_the_callers_events(secured: Secured) -> None:
    acme = secured.stubs(secured.token("acme"))
    globex = secured.stubs(secured.token("globex"))
    try:
        call = globex.jobs.WatchJobs(J.WatchJobsRequest(), timeout=30)
        await call.initial_metadata()
        await acme.jobs.SubmitJob(summarize("acme's"), timeout=10)
        mine = (await globex.jobs.SubmitJob(summarize("globex's"), timeout=10)).job
        # Events come in order: acme's job was queued first, so a leak would arrive before globex's own.
        first = await asyncio.wait_for(call.read(), 30)
        assert first.event.job_id == mine.id
        call.cancel()
    finally:
        await acme.channel.close()
        await globex.channel.close()


def test_the_worker_service_needs_the_work_scope() -> None:
    from gateway.auth.access import required_scope

    # A stream opened with another scope is refused before its first message: test_scopes_decide_what_a_token_may_call.
    assert required_scope(f"/{WORKER_SERVICE_NAME}/Work") == "work"


REST_ROUTES = [
    ("GET", "/v1/jobs/{job}"),
    ("POST", "/v1/jobs/{job}:cancel"),
    ("GET", "/v1/jobs/{job}:watch"),
    ("GET", "/v1/jobs/{course_job}/artifacts/course.md"),
    ("GET", "/v1/courses/{course}"),
    ("GET", "/v1/courses/{course}/document"),
    ("GET", "/v1/courses/{course}/versions"),
    ("GET", "/v1/courses/{course}?version=1"),
    ("DELETE", "/v1/courses/{course}/modules/0"),
    ("GET", "/v1/sources/{source}"),
    ("GET", "/v1/schedules/nightly"),
    ("PATCH", "/v1/schedules/nightly"),
    ("DELETE", "/v1/schedules/nightly"),
    ("POST", "/v1/schedules/nightly:pause"),
    ("POST", "/v1/schedules/nightly:resume"),
    ("POST", "/v1/schedules/nightly:trigger"),
    ("GET", "/v1/admin/deadletters/{dead}"),
    ("POST", "/v1/admin/deadletters/{dead}:retry"),
]


async def test_another_tenant_gets_404_for_each_of_theirs_over_rest(secured: Secured, theirs: Theirs) -> None:
    headers = {"Authorization": f"Bearer {secured.token('globex', 'read write admin')}"}
    names = {
        "job": theirs.job.id,
        "course_job": theirs.course.job_id,
        "course": theirs.course.id,
        "dead": theirs.dead.id,
        "source": theirs.source.id,
    }
    for verb, template in REST_ROUTES:
        path = template.format(**names)
        body = json.dumps({"interval": "60s"}) if verb == "PATCH" else "{}" if verb == "POST" else None
        answer = await secured.http.request(
            verb, path, content=body, headers={**headers, **({"Content-Type": "application/json"} if body else {})}
        )
        assert answer.status_code == 404, f"{verb} {path}: {answer.status_code} {answer.text}"
    for path, field, key, value in (
        ("/v1/jobs", "jobs", "id", theirs.job.id),
        ("/v1/courses", "courses", "id", theirs.course.id),
        ("/v1/schedules", "schedules", "id", "nightly"),
        ("/v1/sources", "sources", "id", theirs.source.id),
    ):
        answer = await secured.http.get(path, headers=headers)
        assert answer.status_code == 200
        assert value not in {item[key] for item in answer.json()[field]}
    letters = await secured.http.get("/v1/admin/deadletters", headers=headers)
    assert theirs.dead.id not in letters.text


async def test_a_tenants_task_pool_serves_its_tenant_only_and_cannot_be_joined_by_another(secured: Secured) -> None:
    from syllabus.v1 import worker_service_pb2 as W

    def hello(pool: str, task: str) -> W.WorkRequest:
        return W.WorkRequest(hello=W.WorkerHello(pool=pool, tasks=[W.TaskDefinition(name=task)], concurrency=1))

    def task_job(name: str) -> J.SubmitJobRequest:
        spec = job_pb2.JobSpec(task=job_pb2.Task(name=name))
        spec.task.json.update({"size": 3})
        return J.SubmitJobRequest(spec=spec)

    acme_pool = secured.stubs(secured.token("acme", "work"))
    acme = secured.stubs(secured.token("acme"))
    globex = secured.stubs(secured.token("globex"))
    globex_pool = secured.stubs(secured.token("globex", "work"))
    try:
        work = acme_pool.workers.Work(timeout=60)
        await work.write(hello("resizers", "img.resize"))
        assert (await work.read()).WhichOneof("message") == "welcome"
        # Another tenant's pool is answered as no pool at all, exactly as a task nobody serves.
        answers = []
        for name in ("img.resize", "img.nobody"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await globex.jobs.SubmitJob(task_job(name), timeout=10)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            answers.append((caught.value.details() or "").replace(name, "NAME"))
        assert answers[0] == answers[1]
        job = (await acme.jobs.SubmitJob(task_job("img.resize"), timeout=10)).job
        given = (await work.read()).assignment
        assert given.job_id == job.id
        await work.write(W.WorkRequest(outcome=W.AttemptOutcome(attempt_id=given.attempt_id, result_json="{}")))
        async for _ in acme.jobs.WatchJob(J.WatchJobRequest(job_id=job.id), timeout=30):
            pass
        done = (await acme.jobs.GetJob(J.GetJobRequest(job_id=job.id), timeout=10)).job
        assert done.state == job_pb2.JOB_STATE_SUCCEEDED
        # Joining it under its name, or taking its task, is refused without naming anything of acme's.
        for pool, task in (("resizers", "img.other"), ("mine", "img.resize")):
            intruder = globex_pool.workers.Work(timeout=30)
            await intruder.write(hello(pool, task))
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await intruder.read()
            assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
            assert "acme" not in (refused.value.details() or "")
            # An intercepted stream's request writer is a task of its own: ended here, not left to the collector.
            await intruder.done_writing()
        await work.done_writing()
        assert await work.read() == grpc.aio.EOF
    finally:
        for stubs in (acme_pool, acme, globex, globex_pool):
            await stubs.channel.close()
