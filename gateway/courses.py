"""CourseService: estimate a course, start writing it, read it, list courses, download its rendered documents;
change it (gateway.courseedits); upload the sources a course is grounded on (gateway.sources).

A course record is created before its course job, so the job always finds it. A course whose job was never
queued (the publish failed, or an idempotency key returned an earlier job) is marked abandoned (no job id) and is
invisible from then on: nothing dangles where callers can see it.

Errors: an unknown course is NOT_FOUND; a course that exists but has no documents yet is FAILED_PRECONDITION
(ask again when its job has succeeded); a rendered course without the asked-for format is NOT_FOUND.
"""

from __future__ import annotations

from google.api import httpbody_pb2
from google.rpc import code_pb2, error_details_pb2

from gateway.artifacts import Stored, document_name, download, not_found
from gateway.auth import caller
from gateway.courseedits import CourseEdits
from gateway.extraction_process import Extractor
from gateway.jobs import call_timeout
from gateway.limits import Limits
from gateway.sources import Sources
from gateway.status import Context, abort, build_status
from syllabus import lifecycle
from syllabus.config import GatewayConfig
from syllabus.coursecontract import DEFAULT_LANGUAGE, DEFAULT_MODULES
from syllabus.ids import new_id
from syllabus.metrics.requests import count_submitted
from syllabus.runtime import Runtime
from syllabus.sources import SourceShelf
from syllabus.submit import build_job
from syllabus.v1 import course_pb2, course_service_pb2, course_service_pb2_grpc, job_pb2

_COURSE_RESOURCE = "syllabus.v1.Course"


def _abandon(course: course_pb2.Course) -> course_pb2.Course | None:
    if not course.job_id:
        return None
    course.job_id = ""
    course.update_time.CopyFrom(lifecycle.now())
    return course


class CourseService(course_service_pb2_grpc.CourseServiceServicer):
    def __init__(
        self,
        *,
        limits: Limits,
        runtime: Runtime,
        config: GatewayConfig,
        default_max_attempts: int,
    ) -> None:
        self._js = runtime.nc.jetstream(timeout=config.publish_timeout)
        self._store = runtime.store
        self._limits = limits
        self._topology = runtime.topology
        self._config = config
        self._default_max_attempts = default_max_attempts
        self._submitter = runtime.submitter
        self._edits = CourseEdits(
            store=runtime.store,
            submitter=runtime.submitter,
            limits=limits,
            config=config,
            default_max_attempts=default_max_attempts,
            course=self._course,
        )
        self._sources = Sources(
            SourceShelf(self._js, self._topology.artifacts_bucket),
            config.source_max_bytes,
            Extractor(config.source_extract_timeout),
        )

    async def _course(self, course_id: str, context: Context) -> course_pb2.Course:
        course = await self._store.get_course(course_id)
        if course is None or course.tenant != caller.tenant() or not course.job_id:
            await not_found(context, _COURSE_RESOURCE, course_id, f"course {course_id!r} not found")
        return course

    async def CreateCourse(
        self, request: course_service_pb2.CreateCourseRequest, context: Context
    ) -> course_service_pb2.CreateCourseResponse:
        spec = job_pb2.GenerateCourse()
        spec.CopyFrom(request.course)
        spec.course_id = new_id()
        spec.modules = spec.modules or DEFAULT_MODULES
        spec.language = spec.language or DEFAULT_LANGUAGE
        sources = await self._sources.named(spec.source_ids, context)
        estimate = await self._limits.estimate_course(caller.tenant(), spec, enforce=not request.validate_only)
        if request.validate_only:
            return course_service_pb2.CreateCourseResponse(estimate=estimate)
        await self._limits.take_waiting(caller.tenant(), 1)
        job = build_job(
            job_pb2.JobSpec(generate_course=spec),
            request.options,
            tenant=caller.tenant(),
            default_max_attempts=self._default_max_attempts,
        )
        course = course_pb2.Course(
            id=spec.course_id,
            job_id=job.id,
            tenant=caller.tenant(),
            prompt=spec.prompt,
            audience=spec.audience,
            level=spec.level,
            language=spec.language,
            version=1,
            sources=sources,
        )
        course.create_time.CopyFrom(job.create_time)
        course.update_time.CopyFrom(job.create_time)
        await self._store.insert_course(course)
        try:
            [inserted] = await self._submitter.submit([job], call_timeout(context, self._config.publish_timeout))
        except BaseException:
            await self._store.update_course(course.id, _abandon)
            raise
        count_submitted([inserted])
        if not inserted.created:
            # The idempotency key named an earlier course job: that job's course is the answer.
            await self._store.update_course(course.id, _abandon)
            earlier = await self._store.get_course(inserted.job.spec.generate_course.course_id)
            return course_service_pb2.CreateCourseResponse(course=earlier, job=inserted.job, estimate=estimate)
        return course_service_pb2.CreateCourseResponse(course=course, job=inserted.job, estimate=estimate)

    async def GetCourse(
        self, request: course_service_pb2.GetCourseRequest, context: Context
    ) -> course_service_pb2.GetCourseResponse:
        course = await self._course(request.course_id, context)
        return course_service_pb2.GetCourseResponse(
            course=await self._edits.at_version(course, request.version, context)
        )

    async def ListCourses(
        self, request: course_service_pb2.ListCoursesRequest, context: Context
    ) -> course_service_pb2.ListCoursesResponse:
        page = await self._store.list_courses(caller.tenant(), request.page_size, request.page_token)
        # Abandoned courses are left out, so a page may hold fewer courses than asked for (as AIP-158 allows).
        courses = [course for course in page.courses if course.job_id]
        return course_service_pb2.ListCoursesResponse(courses=courses, next_page_token=page.next_page_token)

    async def GetCourseDocument(
        self, request: course_service_pb2.GetCourseDocumentRequest, context: Context
    ) -> httpbody_pb2.HttpBody:
        course = await self._edits.at_version(await self._course(request.course_id, context), request.version, context)
        wanted = request.format or course_pb2.DOCUMENT_FORMAT_PDF
        name = course_pb2.DocumentFormat.Name(wanted).removeprefix("DOCUMENT_FORMAT_").lower()
        if request.version and any(document.course_version != request.version for document in course.documents):
            # A later change came before this version's render job ran: its documents were never made.
            violation = error_details_pb2.PreconditionFailure.Violation(
                type="NOT_RENDERED",
                subject=f"courses/{course.id}@{request.version}",
                description="a later change came before this version was rendered",
            )
            await abort(
                context,
                build_status(
                    code_pb2.FAILED_PRECONDITION,
                    f"version {request.version} of course {course.id!r} was never rendered",
                    error_details_pb2.PreconditionFailure(violations=[violation]),
                ),
            )
        if not course.documents:
            violation = error_details_pb2.PreconditionFailure.Violation(
                type="NOT_RENDERED",
                subject=f"courses/{course.id}",
                description=f"the course is still being written; its job {course.job_id} renders the documents",
            )
            await abort(
                context,
                build_status(
                    code_pb2.FAILED_PRECONDITION,
                    f"course {course.id!r} has no documents yet (its job is {course.job_id})",
                    error_details_pb2.PreconditionFailure(violations=[violation]),
                ),
            )
        document = next((d for d in course.documents if d.format == wanted), None)
        if document is None:
            await not_found(
                context, "syllabus.v1.Document", f"courses/{course.id}/{name}", f"course {course.id!r} has no {name}"
            )
        extension = document_name(document).partition(".")[2]  # course.scorm12.zip: scorm12.zip
        stored = Stored(
            object_name=document.object_name,
            content_type=document.content_type,
            filename=f"course-{course.id}.{extension}",
            resource_type="syllabus.v1.Document",
            resource_name=document.object_name,
        )
        return await download(context, self._js, self._topology.artifacts_bucket, stored)

    # Changes, each making the course's next version (gateway.courseedits).

    async def RegenerateCoursePart(
        self, request: course_service_pb2.RegenerateCoursePartRequest, context: Context
    ) -> course_service_pb2.RegenerateCoursePartResponse:
        return await self._edits.regenerate(request, context)

    async def UpdateLesson(
        self, request: course_service_pb2.UpdateLessonRequest, context: Context
    ) -> course_service_pb2.UpdateLessonResponse:
        return await self._edits.update_lesson(request, context)

    async def UpdateQuestion(
        self, request: course_service_pb2.UpdateQuestionRequest, context: Context
    ) -> course_service_pb2.UpdateQuestionResponse:
        return await self._edits.update_question(request, context)

    async def ReorderModules(
        self, request: course_service_pb2.ReorderModulesRequest, context: Context
    ) -> course_service_pb2.ReorderModulesResponse:
        return await self._edits.reorder(request, context)

    async def AddModule(
        self, request: course_service_pb2.AddModuleRequest, context: Context
    ) -> course_service_pb2.AddModuleResponse:
        return await self._edits.add_module(request, context)

    async def RemoveModule(
        self, request: course_service_pb2.RemoveModuleRequest, context: Context
    ) -> course_service_pb2.RemoveModuleResponse:
        return await self._edits.remove_module(request, context)

    async def ListCourseVersions(
        self, request: course_service_pb2.ListCourseVersionsRequest, context: Context
    ) -> course_service_pb2.ListCourseVersionsResponse:
        return await self._edits.versions(request, context)

    # Sources a course is grounded on (gateway.sources).

    async def UploadSource(
        self, request: course_service_pb2.UploadSourceRequest, context: Context
    ) -> course_service_pb2.UploadSourceResponse:
        return await self._sources.upload(request, context)

    async def GetSource(
        self, request: course_service_pb2.GetSourceRequest, context: Context
    ) -> course_service_pb2.GetSourceResponse:
        return await self._sources.get(request, context)

    async def ListSources(
        self, request: course_service_pb2.ListSourcesRequest, context: Context
    ) -> course_service_pb2.ListSourcesResponse:
        return await self._sources.listed()

    async def DeleteSource(
        self, request: course_service_pb2.DeleteSourceRequest, context: Context
    ) -> course_service_pb2.DeleteSourceResponse:
        return await self._sources.delete(request, context)
