"""An async Python client for the gateway's JobService, AdminService, ScheduleService and CourseService
(grpc.aio).

    async with SyllabusClient.connect("127.0.0.1:50051") as client:
        job, created = await client.submit(JobSpec(summarize_text=SummarizeText(text="...")))
        async for event in client.watch(job.id):
            print(JobState.Name(event.state))
        ran = await client.run(JobSpec(summarize_text=SummarizeText(text="...")))  # submit, then wait for its end
        print(ran.end.result.text)

Every failed call raises SyllabusError, built from the google.rpc.Status the gateway sends, so callers get
the code, the message and the BadRequest field violations without touching gRPC types.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Generic, NamedTuple, Self, TypeVar

import grpc
from google.api import httpbody_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from syllabus import credentials
from syllabus.config import TlsFiles
from syllabus.tls import channel_credentials
from syllabus.v1 import (
    admin_service_pb2,
    admin_service_pb2_grpc,
    course_pb2,
    course_service_pb2,
    course_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    schedule_service_pb2,
    schedule_service_pb2_grpc,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds a unary call may take unless the caller says otherwise.
DEFAULT_TIMEOUT = 30.0
# A dropped watch waits this long for the gateway to come back before giving up.
DEFAULT_RECONNECT_TIMEOUT = 30.0
# Drops in a row without a new event before a watch gives up: a gateway that keeps cutting the stream at once.
MAX_RESUMES_WITHOUT_PROGRESS = 5
# The channel redials a lost gateway quickly at first, and never waits more than a few seconds between tries,
# so a watch resumes soon after the gateway restarts.
_CHANNEL_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 2000),
]


class FieldViolation(NamedTuple):
    """One rejected field of a request, e.g. ("spec.summarize_text.text", "value length must be at least 1")."""

    field: str
    description: str


class SyllabusError(Exception):
    """A call failed. `code` is the gRPC status code; `field_violations` lists bad input field by field."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        field_violations: Iterable[FieldViolation] = (),
        retry_delay: float | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {message}")
        self.code = code
        self.message = message
        self.field_violations = tuple(field_violations)
        # From google.rpc.RetryInfo, e.g. a full queue (RESOURCE_EXHAUSTED): when trying again makes sense.
        self.retry_delay = retry_delay


class GatewayUnreachable(SyllabusError):
    """No gateway answered at `addr`: nothing listens there, or the connection broke before an answer."""

    def __init__(self, addr: str, message: str) -> None:
        super().__init__(grpc.StatusCode.UNAVAILABLE, message)
        self.addr = addr


def _is_transport_failure(exc: grpc.aio.AioRpcError) -> bool:
    # The gateway answers every failure with a google.rpc.Status; UNAVAILABLE without one comes from the
    # transport (connection refused or lost, server going away), not from the gateway's logic.
    return bool(exc.code() == grpc.StatusCode.UNAVAILABLE and rpc_status.from_call(exc) is None)


def error_from(exc: grpc.aio.AioRpcError, addr: str) -> SyllabusError:
    """The SyllabusError for a failed call, with the details the gateway packed into its google.rpc.Status."""
    if _is_transport_failure(exc):
        return GatewayUnreachable(addr, exc.details() or "connection failed")
    status = rpc_status.from_call(exc)
    if status is None:
        return SyllabusError(exc.code(), exc.details() or exc.code().name)
    violations: list[FieldViolation] = []
    retry_delay: float | None = None
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        retry_info = error_details_pb2.RetryInfo()
        if detail.Unpack(bad_request):
            violations += [FieldViolation(v.field, v.description) for v in bad_request.field_violations]
        elif detail.Unpack(retry_info):
            retry_delay = retry_info.retry_delay.ToNanoseconds() / 1e9
    return SyllabusError(_CODES.get(status.code, exc.code()), status.message, violations, retry_delay)


# google.rpc.Code numbers to grpc.StatusCode (whose values are (number, name) pairs).
_CODES: dict[int, grpc.StatusCode] = {code.value[0]: code for code in grpc.StatusCode}


class Ran(NamedTuple):
    """What SyllabusClient.run gives back."""

    job: job_pb2.Job
    # False when the idempotency key named an earlier job (whose end this is, too).
    created: bool
    # The terminal event: SUCCEEDED with the result, FAILED with the last error, or CANCELED.
    end: job_pb2.JobEvent


class Page(NamedTuple, Generic[T]):
    items: builtins.list[T]
    # Empty on the last page; pass it back to get the next one.
    next_page_token: str
    # How many items match, over every page, where the call says (ListJobs).
    total_size: int = 0


class SyllabusClient:
    """One channel to a gateway. Create it inside a running event loop; close it (or use `async with`)."""

    def __init__(
        self,
        channel: grpc.aio.Channel,
        addr: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT,
    ) -> None:
        self.addr = addr
        self.timeout = timeout
        self.reconnect_timeout = reconnect_timeout
        self._channel = channel
        self._jobs = job_service_pb2_grpc.JobServiceStub(channel)
        self._admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        self._schedules = schedule_service_pb2_grpc.ScheduleServiceStub(channel)
        self._courses = course_service_pb2_grpc.CourseServiceStub(channel)

    @classmethod
    def connect(
        cls,
        addr: str,
        *,
        timeout: float | None = DEFAULT_TIMEOUT,
        reconnect_timeout: float = DEFAULT_RECONNECT_TIMEOUT,
        token: str | None = None,
        tenant: str | None = None,
        tls: bool = False,
        tls_ca: str = "",
        tls_cert: str = "",
        tls_key: str = "",
    ) -> SyllabusClient:
        """A client for the gateway at `addr` ("host:port"); the connection itself is made by the first call.
        `token` (a JWT or an API key) goes with every call when the gateway requires one; `tenant` names the
        tenant an admin acts for. With `tls` or any of the PEM files, the connection is TLS: `tls_ca` verifies
        the gateway's certificate (default: the public CAs grpc knows), `tls_cert` and `tls_key` are the client
        certificate a gateway with mutual TLS asks for."""
        files = TlsFiles(tls_ca, tls_cert, tls_key)
        secure = channel_credentials(files, ("tls_ca", "tls_cert", "tls_key")) if tls or files else None
        channel = credentials.channel(addr, token=token, tenant=tenant, options=_CHANNEL_OPTIONS, tls=secure)
        return cls(channel, addr, timeout=timeout, reconnect_timeout=reconnect_timeout)

    async def close(self) -> None:
        await self._channel.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _unary(self, method: Any, request: Any) -> Any:
        try:
            return await method(request, timeout=self.timeout)
        except grpc.aio.AioRpcError as exc:
            raise error_from(exc, self.addr) from None

    # -- JobService ---------------------------------------------------------------------------------------

    async def submit(
        self, spec: job_pb2.JobSpec, options: job_pb2.JobOptions | None = None
    ) -> tuple[job_pb2.Job, bool]:
        """Submit one job: the job, and False for created when its idempotency key matched an earlier job."""
        request = job_service_pb2.SubmitJobRequest(spec=spec, options=options)
        response: job_service_pb2.SubmitJobResponse = await self._unary(self._jobs.SubmitJob, request)
        return response.job, response.created

    async def run(
        self,
        spec: job_pb2.JobSpec,
        options: job_pb2.JobOptions | None = None,
        on_event: Callable[[job_pb2.JobEvent], None] | None = None,
        on_submitted: Callable[[job_pb2.Job, bool], None] | None = None,
    ) -> Ran:
        """Submit a job and wait for its end, in one call (RunJob); `on_submitted` hears the answer (the job, and
        False for created when its idempotency key matched an earlier job), `on_event` each event on the way.

        The answer comes within the client's timeout, as submit's does; the end has no deadline of its own (a
        job may run for hours): bound that wait with asyncio.timeout. A stream lost once the job was accepted is
        followed on with WatchJob after the last event seen; one lost before raises, as submit does, and trying
        again is safe with an idempotency key.
        """
        call = self._jobs.RunJob(job_service_pb2.RunJobRequest(spec=spec, options=options))
        submitted: job_service_pb2.SubmitJobResponse | None = None
        end: job_pb2.JobEvent | None = None
        last = 0

        def heard(event: job_pb2.JobEvent) -> None:
            nonlocal end, last
            last = event.sequence or last
            if on_event is not None:
                on_event(event)
            if event.terminal:
                end = event

        try:
            async with asyncio.timeout(self.timeout) as answering:
                async for response in call:
                    if response.HasField("submitted"):
                        submitted = response.submitted
                        answering.reschedule(None)
                        if on_submitted is not None:
                            on_submitted(submitted.job, submitted.created)
                        continue
                    heard(response.event)
        except TimeoutError:
            raise SyllabusError(
                grpc.StatusCode.DEADLINE_EXCEEDED, f"the gateway at {self.addr} did not answer within {self.timeout:g}s"
            ) from None
        except grpc.aio.AioRpcError as exc:
            if submitted is None or not _is_transport_failure(exc):
                raise error_from(exc, self.addr) from None
            job_id = submitted.job.id
            log.info("run of job %s dropped (%s); following it after sequence %d", job_id, exc.details(), last)
            await self._reconnected(exc)
        finally:
            call.cancel()
        if submitted is None:
            raise SyllabusError(grpc.StatusCode.UNKNOWN, "the gateway ended the run before answering")
        if end is None:
            async for event in self.watch(submitted.job.id, after_sequence=last):
                heard(event)
        if end is None:
            raise SyllabusError(grpc.StatusCode.UNKNOWN, f"the events of job {submitted.job.id} ended before its end")
        return Ran(submitted.job, submitted.created, end)

    async def submit_many(
        self, jobs: Iterable[tuple[job_pb2.JobSpec, job_pb2.JobOptions | None]]
    ) -> builtins.list[tuple[job_pb2.Job, bool]]:
        """Submit jobs in one round trip, all or none; the results come in the order of `jobs`."""
        request = job_service_pb2.SubmitJobsRequest(
            requests=[job_service_pb2.SubmitJobRequest(spec=spec, options=options) for spec, options in jobs]
        )
        response: job_service_pb2.SubmitJobsResponse = await self._unary(self._jobs.SubmitJobs, request)
        return [(result.job, result.created) for result in response.results]

    async def get(self, job_id: str) -> job_pb2.Job:
        response: job_service_pb2.GetJobResponse = await self._unary(
            self._jobs.GetJob, job_service_pb2.GetJobRequest(job_id=job_id)
        )
        return response.job

    async def artifact(self, job_id: str, name: str) -> tuple[httpbody_pb2.HttpBody, str]:
        """A file the job stored (see JobResult.artifacts), and the file name the gateway gives it."""
        try:
            call = self._jobs.GetJobArtifact(
                job_service_pb2.GetJobArtifactRequest(job_id=job_id, name=name), timeout=self.timeout
            )
            body: httpbody_pb2.HttpBody = await call
            metadata = await call.initial_metadata()
        except grpc.aio.AioRpcError as exc:
            raise error_from(exc, self.addr) from None
        disposition = next((str(v) for k, v in metadata or () if k == "content-disposition"), "")
        filename = disposition.partition('filename="')[2].rstrip('"') or name
        return body, filename

    async def list(
        self,
        *,
        states: Iterable[job_pb2.JobState] = (),
        kind: str = "",
        labels: Mapping[str, str] | None = None,
        parent_id: str = "",
        page_size: int = 0,
        page_token: str = "",
        order_by: job_service_pb2.JobOrder = job_service_pb2.JOB_ORDER_CREATE_TIME_DESC,
        schedule_id: str = "",
        created_after: Timestamp | None = None,
        created_before: Timestamp | None = None,
    ) -> Page[job_pb2.Job]:
        """One page of jobs, newest first (or, with JOB_ORDER_END_TIME_DESC, the ended ones most recently ended
        first); `labels` must all match, and the creation time fall within [created_after, created_before). The
        page's total_size counts every match. `kind` may also name a task."""
        request = job_service_pb2.ListJobsRequest(
            states=states,
            kind=kind,
            labels=[f"{key}={value}" for key, value in (labels or {}).items()],
            parent_id=parent_id,
            page_size=page_size,
            page_token=page_token,
            order_by=order_by,
            schedule_id=schedule_id,
            created_after=created_after,
            created_before=created_before,
        )
        response: job_service_pb2.ListJobsResponse = await self._unary(self._jobs.ListJobs, request)
        return Page(builtins.list(response.jobs), response.next_page_token, response.total_size)

    async def iter_jobs(
        self,
        *,
        states: Iterable[job_pb2.JobState] = (),
        kind: str = "",
        labels: Mapping[str, str] | None = None,
        parent_id: str = "",
        page_size: int = 0,
    ) -> AsyncGenerator[job_pb2.Job, None]:
        """Every matching job, newest first, fetching pages as the caller gets to them."""
        states = tuple(states)
        token = ""
        while True:
            page = await self.list(
                states=states, kind=kind, labels=labels, parent_id=parent_id, page_size=page_size, page_token=token
            )
            for job in page.items:
                yield job
            token = page.next_page_token
            if not token:
                return

    async def cancel(self, job_id: str, reason: str = "") -> job_pb2.Job:
        """Cancel a job. A running job comes back with cancel_requested set while its attempt stops."""
        response: job_service_pb2.CancelJobResponse = await self._unary(
            self._jobs.CancelJob, job_service_pb2.CancelJobRequest(job_id=job_id, reason=reason)
        )
        return response.job

    async def watch(self, job_id: str, after_sequence: int = 0) -> AsyncGenerator[job_pb2.JobEvent, None]:
        """The job's events after `after_sequence` (0: all of them), live, until its terminal event.

        A stream that drops once events flowed (gateway restarted, connection lost) is resumed after the last
        event seen, so the caller sees every event once. A gateway that cannot be reached at all, or stays
        away longer than reconnect_timeout, raises GatewayUnreachable.
        """
        last = after_sequence
        flowed = False
        drops = 0
        while True:
            call = self._jobs.WatchJob(job_service_pb2.WatchJobRequest(job_id=job_id, after_sequence=last))
            try:
                async for response in call:
                    event: job_pb2.JobEvent = response.event
                    # An event rebuilt from the job record (its stream aged out) has no sequence.
                    last = event.sequence or last
                    flowed = True
                    drops = 0
                    yield event
                return
            except grpc.aio.AioRpcError as exc:
                if not (flowed and _is_transport_failure(exc)) or drops >= MAX_RESUMES_WITHOUT_PROGRESS:
                    raise error_from(exc, self.addr) from None
                drops += 1
                log.info("watch of job %s dropped (%s); resuming after sequence %d", job_id, exc.details(), last)
                await self._reconnected(exc)
            finally:
                call.cancel()

    async def _reconnected(self, exc: grpc.aio.AioRpcError) -> None:
        """Return once the channel is connected again; the dropped call's error after reconnect_timeout."""
        try:
            await asyncio.wait_for(self._channel.channel_ready(), self.reconnect_timeout)
        except TimeoutError:
            raise error_from(exc, self.addr) from None

    async def watch_all(
        self, kind: str = "", subscribed: asyncio.Event | None = None
    ) -> AsyncGenerator[job_pb2.JobEvent, None]:
        """Live events of every job (of `kind`, if given) from the moment the watch is subscribed; no replay.

        `subscribed` is set once the gateway has subscribed: every event published from then on arrives.
        """
        call = self._jobs.WatchJobs(job_service_pb2.WatchJobsRequest(kind=kind))
        try:
            # The gateway sends its initial metadata right after subscribing.
            await call.initial_metadata()
            if subscribed is not None and not call.done():
                subscribed.set()
            async for response in call:
                yield response.event
        except grpc.aio.AioRpcError as exc:
            raise error_from(exc, self.addr) from None
        finally:
            call.cancel()

    # -- ScheduleService ----------------------------------------------------------------------------------

    async def create_schedule(self, schedule: job_pb2.Schedule) -> job_pb2.Schedule:
        request = schedule_service_pb2.CreateScheduleRequest(schedule=schedule)
        response: schedule_service_pb2.CreateScheduleResponse = await self._unary(
            self._schedules.CreateSchedule, request
        )
        return response.schedule

    async def get_schedule(self, schedule_id: str) -> job_pb2.Schedule:
        request = schedule_service_pb2.GetScheduleRequest(schedule_id=schedule_id)
        response: schedule_service_pb2.GetScheduleResponse = await self._unary(self._schedules.GetSchedule, request)
        return response.schedule

    async def list_schedules(self) -> builtins.list[job_pb2.Schedule]:
        response: schedule_service_pb2.ListSchedulesResponse = await self._unary(
            self._schedules.ListSchedules, schedule_service_pb2.ListSchedulesRequest()
        )
        return builtins.list(response.schedules)

    async def pause_schedule(self, schedule_id: str) -> job_pb2.Schedule:
        request = schedule_service_pb2.PauseScheduleRequest(schedule_id=schedule_id)
        response: schedule_service_pb2.PauseScheduleResponse = await self._unary(self._schedules.PauseSchedule, request)
        return response.schedule

    async def resume_schedule(self, schedule_id: str) -> job_pb2.Schedule:
        request = schedule_service_pb2.ResumeScheduleRequest(schedule_id=schedule_id)
        response: schedule_service_pb2.ResumeScheduleResponse = await self._unary(
            self._schedules.ResumeSchedule, request
        )
        return response.schedule

    async def delete_schedule(self, schedule_id: str) -> None:
        request = schedule_service_pb2.DeleteScheduleRequest(schedule_id=schedule_id)
        await self._unary(self._schedules.DeleteSchedule, request)

    async def trigger_schedule(self, schedule_id: str) -> job_pb2.Job:
        """One job from the schedule's template now."""
        request = schedule_service_pb2.TriggerScheduleRequest(schedule_id=schedule_id)
        response: schedule_service_pb2.TriggerScheduleResponse = await self._unary(
            self._schedules.TriggerSchedule, request
        )
        return response.job

    # -- CourseService: courses and their versions ---------------------------------------------------------

    async def create_course(
        self, course: job_pb2.GenerateCourse, options: job_pb2.JobOptions | None = None, *, validate_only: bool = False
    ) -> course_service_pb2.CreateCourseResponse:
        """Ask for a course: its record, the job writing it (follow it with `watch`) and what it is estimated to
        cost. With `validate_only` nothing is written and only the estimate comes back."""
        request = course_service_pb2.CreateCourseRequest(course=course, options=options, validate_only=validate_only)
        response: course_service_pb2.CreateCourseResponse = await self._unary(self._courses.CreateCourse, request)
        return response

    async def get_course(self, course_id: str, version: int = 0) -> course_pb2.Course:
        """The course as it is now, or as it was at `version`."""
        request = course_service_pb2.GetCourseRequest(course_id=course_id, version=version)
        response: course_service_pb2.GetCourseResponse = await self._unary(self._courses.GetCourse, request)
        return response.course

    async def list_courses(self, page_size: int = 0, page_token: str = "") -> Page[course_pb2.Course]:
        """One page of the caller's courses, newest first."""
        request = course_service_pb2.ListCoursesRequest(page_size=page_size, page_token=page_token)
        response: course_service_pb2.ListCoursesResponse = await self._unary(self._courses.ListCourses, request)
        return Page(list(response.courses), response.next_page_token)

    async def course_document(
        self, course_id: str, document_format: int = course_pb2.DOCUMENT_FORMAT_PDF, version: int = 0
    ) -> httpbody_pb2.HttpBody:
        """A rendered document of the course (of `version`, else the latest): its content type and bytes."""
        request = course_service_pb2.GetCourseDocumentRequest(
            course_id=course_id,
            format=document_format,  # type: ignore[arg-type]  # protoc stubs: an enum value
            version=version,
        )
        body: httpbody_pb2.HttpBody = await self._unary(self._courses.GetCourseDocument, request)
        return body

    async def course_versions(self, course_id: str) -> builtins.list[course_pb2.CourseVersion]:
        """Every version of the course, with the change that made it."""
        request = course_service_pb2.ListCourseVersionsRequest(course_id=course_id)
        response: course_service_pb2.ListCourseVersionsResponse = await self._unary(
            self._courses.ListCourseVersions, request
        )
        return list(response.versions)

    async def regenerate_course_part(
        self, request: course_service_pb2.RegenerateCoursePartRequest
    ) -> course_service_pb2.RegenerateCoursePartResponse:
        """Write one lesson or quiz again: the course and the job writing it (the next version once it ends)."""
        response: course_service_pb2.RegenerateCoursePartResponse = await self._unary(
            self._courses.RegenerateCoursePart, request
        )
        return response

    async def update_lesson(
        self, request: course_service_pb2.UpdateLessonRequest
    ) -> course_service_pb2.UpdateLessonResponse:
        """A hand edit of a lesson: the next version, and the job rendering it."""
        response: course_service_pb2.UpdateLessonResponse = await self._unary(self._courses.UpdateLesson, request)
        return response

    async def update_question(
        self, request: course_service_pb2.UpdateQuestionRequest
    ) -> course_service_pb2.UpdateQuestionResponse:
        response: course_service_pb2.UpdateQuestionResponse = await self._unary(self._courses.UpdateQuestion, request)
        return response

    async def reorder_modules(
        self, request: course_service_pb2.ReorderModulesRequest
    ) -> course_service_pb2.ReorderModulesResponse:
        response: course_service_pb2.ReorderModulesResponse = await self._unary(self._courses.ReorderModules, request)
        return response

    async def add_module(self, request: course_service_pb2.AddModuleRequest) -> course_service_pb2.AddModuleResponse:
        """A module more: the course and the jobs writing its lesson and quiz."""
        response: course_service_pb2.AddModuleResponse = await self._unary(self._courses.AddModule, request)
        return response

    async def remove_module(
        self, request: course_service_pb2.RemoveModuleRequest
    ) -> course_service_pb2.RemoveModuleResponse:
        response: course_service_pb2.RemoveModuleResponse = await self._unary(self._courses.RemoveModule, request)
        return response

    # -- CourseService: sources ---------------------------------------------------------------------------

    async def upload_source(self, filename: str, data: bytes, content_type: str = "") -> course_pb2.Source:
        """Upload a file to ground courses on (Markdown, text, PDF or HTML; the type from `filename` unless
        given); its text is extracted before the answer."""
        request = course_service_pb2.UploadSourceRequest(filename=filename, data=data, content_type=content_type)
        response: course_service_pb2.UploadSourceResponse = await self._unary(self._courses.UploadSource, request)
        return response.source

    async def get_source(self, source_id: str) -> tuple[course_pb2.Source, builtins.list[course_pb2.Passage]]:
        """The source and its first passages."""
        request = course_service_pb2.GetSourceRequest(source_id=source_id)
        response: course_service_pb2.GetSourceResponse = await self._unary(self._courses.GetSource, request)
        return response.source, builtins.list(response.passages)

    async def list_sources(self) -> builtins.list[course_pb2.Source]:
        response: course_service_pb2.ListSourcesResponse = await self._unary(
            self._courses.ListSources, course_service_pb2.ListSourcesRequest()
        )
        return builtins.list(response.sources)

    async def delete_source(self, source_id: str) -> None:
        """Remove the source's file, text and record; courses grounded on it keep their citations."""
        await self._unary(self._courses.DeleteSource, course_service_pb2.DeleteSourceRequest(source_id=source_id))

    # -- AdminService -------------------------------------------------------------------------------------

    async def dead_letters(
        self, kind: str = "", *, page_size: int = 0, page_token: str = ""
    ) -> Page[admin_service_pb2.DeadLetter]:
        """One page of dead letters, oldest first."""
        request = admin_service_pb2.ListDeadLettersRequest(kind=kind, page_size=page_size, page_token=page_token)
        response: admin_service_pb2.ListDeadLettersResponse = await self._unary(self._admin.ListDeadLetters, request)
        return Page(builtins.list(response.dead_letters), response.next_page_token)

    async def iter_dead_letters(
        self, kind: str = "", *, page_size: int = 0
    ) -> AsyncGenerator[admin_service_pb2.DeadLetter, None]:
        token = ""
        while True:
            page = await self.dead_letters(kind, page_size=page_size, page_token=token)
            for dead in page.items:
                yield dead
            token = page.next_page_token
            if not token:
                return

    async def dead_letter(self, job_id: str) -> admin_service_pb2.DeadLetter:
        response: admin_service_pb2.GetDeadLetterResponse = await self._unary(
            self._admin.GetDeadLetter, admin_service_pb2.GetDeadLetterRequest(job_id=job_id)
        )
        return response.dead_letter

    async def retry_dead_letter(
        self, job_id: str, spec: job_pb2.JobSpec | None = None, options: job_pb2.JobOptions | None = None
    ) -> job_pb2.Job:
        """Queue a dead job again with a fresh history; `spec` (same kind) or `options` replace the old ones."""
        request = admin_service_pb2.RetryDeadLetterRequest(job_id=job_id, spec=spec, options=options)
        response: admin_service_pb2.RetryDeadLetterResponse = await self._unary(self._admin.RetryDeadLetter, request)
        return response.job

    async def workers(self, queue: str = "") -> builtins.list[admin_service_pb2.Worker]:
        """The worker processes alive (of `queue`, or all), with the jobs each holds."""
        response: admin_service_pb2.ListWorkersResponse = await self._unary(
            self._admin.ListWorkers, admin_service_pb2.ListWorkersRequest(queue=queue)
        )
        return builtins.list(response.workers)

    async def queue_stats(
        self, queue: str = "", window: float | None = None
    ) -> builtins.list[admin_service_pb2.QueueStats]:
        """Every queue's counts (or only `queue`'s); ended jobs are counted over the last `window` seconds (1 h)."""
        request = admin_service_pb2.GetQueueStatsRequest(queue=queue)
        if window is not None:
            request.window.FromNanoseconds(int(window * 1e9))
        response: admin_service_pb2.GetQueueStatsResponse = await self._unary(self._admin.GetQueueStats, request)
        return builtins.list(response.queues)

    async def pause_queue(self, queue: str) -> admin_service_pb2.QueueStats:
        """Workers stop taking the queue's jobs (running ones finish) until it is resumed."""
        response: admin_service_pb2.PauseQueueResponse = await self._unary(
            self._admin.PauseQueue, admin_service_pb2.PauseQueueRequest(queue=queue)
        )
        return response.queue

    async def resume_queue(self, queue: str) -> admin_service_pb2.QueueStats:
        response: admin_service_pb2.ResumeQueueResponse = await self._unary(
            self._admin.ResumeQueue, admin_service_pb2.ResumeQueueRequest(queue=queue)
        )
        return response.queue

    async def purge_jobs(self, request: admin_service_pb2.PurgeJobsRequest) -> admin_service_pb2.PurgeJobsResponse:
        """Remove ended jobs (with events and artifacts) and dead letters older than the request's ages."""
        response: admin_service_pb2.PurgeJobsResponse = await self._unary(self._admin.PurgeJobs, request)
        return response

    async def purge_dead_letters(self, kind: str = "") -> int:
        """Remove dead letters (of `kind`, or all) for good; their jobs stay FAILED. Returns how many."""
        response: admin_service_pb2.PurgeDeadLettersResponse = await self._unary(
            self._admin.PurgeDeadLetters, admin_service_pb2.PurgeDeadLettersRequest(kind=kind)
        )
        return int(response.purged)
