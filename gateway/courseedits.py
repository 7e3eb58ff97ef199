"""Changes to a finished course: a part written again, a lesson or question edited by hand, modules reordered,
added or removed. Each change is one versioned write that makes the course's next version (the store keeps the
one it replaces), then either the version's render job (a hand edit: the version is complete) or the jobs that
write its new parts, the last of which submits the render job (syllabus.courseversions).

Concurrency is optimistic, as AIP-154 has it: a request may name the version it was made on (expected_version)
and is refused with ABORTED when the course has moved on, so two editors cannot overwrite each other unseen.

Errors: another tenant's course or an unknown one is NOT_FOUND; a course still being written (no documents yet,
or jobs of an earlier change still writing it) is FAILED_PRECONDITION; an index outside the course, or a question
whose answer is not among its distinct choices, is INVALID_ARGUMENT naming the field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from google.rpc import code_pb2, error_details_pb2, status_pb2

from gateway.jobs import call_timeout
from gateway.limits import Limits
from gateway.status import Context, abort, bad_request, build_status
from syllabus import lifecycle
from syllabus.config import GatewayConfig
from syllabus.courseversions import version_render_job
from syllabus.metrics.requests import count_submitted
from syllabus.store.base import Store
from syllabus.store.records import ENDED_STATES
from syllabus.submit import Submitter, build_job
from syllabus.v1 import course_pb2, course_service_pb2, job_pb2

# Changes a course (in place) and says what it did ("reordered the modules"), or refuses with a status.
Apply = Callable[[course_pb2.Course], str | status_pb2.Status]
# The jobs that write the new version's parts, made once its number is known.
PartJobs = Callable[[course_pb2.Course], list[job_pb2.Job]]


class Refused(Exception):
    def __init__(self, status: status_pb2.Status) -> None:
        super().__init__(status.message)
        self.status = status


def invalid(field: str, message: str) -> status_pb2.Status:
    return bad_request([(field, message)])


def _precondition(course: course_pb2.Course, kind: str, message: str) -> status_pb2.Status:
    violation = error_details_pb2.PreconditionFailure.Violation(
        type=kind, subject=f"courses/{course.id}", description=message
    )
    return build_status(
        code_pb2.FAILED_PRECONDITION, message, error_details_pb2.PreconditionFailure(violations=[violation])
    )


def _module(course: course_pb2.Course, index: int, field: str = "module_index") -> course_pb2.Module:
    if index >= len(course.modules):
        raise Refused(
            invalid(field, f"course {course.id} has {len(course.modules)} modules (0 to {len(course.modules) - 1})")
        )
    return course.modules[index]


def _forget_findings(module: course_pb2.Module, part: str) -> None:
    """A hand edit's part: its findings were about the text it replaces, and a teacher's own text is theirs to
    judge."""
    kept = [finding for finding in module.findings if finding.part != part]
    del module.findings[:]
    module.findings.extend(kept)


def _renumber(course: course_pb2.Course) -> None:
    for index, module in enumerate(course.modules):
        module.index = index


def question_problems(question: course_pb2.Question) -> list[tuple[str, str]]:
    """What is wrong with a question written by hand, as (field, message)."""
    problems = []
    if not question.text.strip():
        problems.append(("question.text", "must not be empty"))
    if len(question.choices) < 2:
        problems.append(("question.choices", "must hold at least two choices"))
    elif any(not choice.strip() for choice in question.choices):
        problems.append(("question.choices", "must not hold an empty choice"))
    elif len({choice.strip().casefold() for choice in question.choices}) != len(question.choices):
        problems.append(("question.choices", "must all differ"))
    if not 0 <= question.answer_index < max(len(question.choices), 1):
        problems.append(
            ("question.answer_index", f"must be an index into choices, 0 to {max(len(question.choices) - 1, 0)}")
        )
    if not question.explanation.strip():
        problems.append(("question.explanation", "must not be empty"))
    return problems


@dataclass(frozen=True)
class Changed:
    course: course_pb2.Course
    # The render job of a complete version, or the jobs writing its new parts.
    jobs: list[job_pb2.Job]


class CourseEdits:
    def __init__(
        self,
        *,
        store: Store,
        submitter: Submitter,
        limits: Limits,
        config: GatewayConfig,
        default_max_attempts: int,
        course: Callable[[str, Context], Awaitable[course_pb2.Course]],
    ) -> None:
        self._store = store
        self._submitter = submitter
        self._limits = limits
        self._config = config
        self._default_max_attempts = default_max_attempts
        self._course = course

    async def _ended(self, job_ids: Sequence[str]) -> set[str]:
        """The pending jobs that will write nothing more: ended (dead-lettered, canceled), or never stored."""
        ended = set()
        for job_id in job_ids:
            job = await self._store.get_job(job_id)
            if job is None or job.state in ENDED_STATES:
                ended.add(job_id)
        return ended

    async def change(
        self,
        context: Context,
        course_id: str,
        expected_version: int,
        apply: Apply,
        part_jobs: PartJobs | None = None,
        parts: tuple[int, int] = (0, 0),
    ) -> Changed:
        """Makes the next version of the course with `apply`, then submits its render job, or (with `part_jobs`)
        the jobs that write its parts: `parts` lessons and quizzes, which the tenant's budget must allow."""
        course = await self._course(course_id, context)
        tenant = course.tenant
        ended = await self._ended(course.pending_job_ids)
        lessons, quizzes = parts
        if part_jobs is not None:
            await self._limits.check_parts(tenant, course, lessons=lessons, quizzes=quizzes)
        await self._limits.take_waiting(tenant, lessons + quizzes if part_jobs is not None else 1)
        refusal: status_pb2.Status | None = None
        jobs: list[job_pb2.Job] = []

        def make_version(current: course_pb2.Course) -> course_pb2.Course | None:
            nonlocal refusal, jobs
            refusal, jobs = None, []
            still = [job_id for job_id in current.pending_job_ids if job_id not in ended]
            if still:
                refusal = _precondition(
                    current, "CHANGING", f"course {current.id} is being changed by job {still[0]}; try once it ended"
                )
                return None
            if not current.documents:
                refusal = _precondition(
                    current, "NOT_RENDERED", f"course {current.id} is still being written (its job is {current.job_id})"
                )
                return None
            if expected_version and current.version != expected_version:
                refusal = build_status(
                    code_pb2.ABORTED,
                    f"course {current.id} is at version {current.version}, not {expected_version}: "
                    "read it again and redo the change",
                    error_details_pb2.ErrorInfo(
                        reason="VERSION_MISMATCH", domain="syllabus", metadata={"version": str(current.version)}
                    ),
                )
                return None
            try:
                outcome = apply(current)
            except Refused as exc:
                refusal = exc.status
                return None
            if isinstance(outcome, status_pb2.Status):
                refusal = outcome
                return None
            current.version += 1
            current.change = outcome
            del current.pending_job_ids[:]
            if part_jobs is not None:
                jobs = part_jobs(current)
                current.pending_job_ids.extend(job.id for job in jobs)
            current.update_time.CopyFrom(lifecycle.now())
            return current

        updated = await self._store.update_course(course.id, make_version)
        if refusal is not None:
            await abort(context, refusal)
        if updated is None:
            await abort(context, build_status(code_pb2.NOT_FOUND, f"course {course_id!r} not found"))
        if part_jobs is None:
            jobs = [
                version_render_job(
                    updated.id, updated.version, tenant, job_pb2.JobOptions(), self._default_max_attempts
                )
            ]
        inserted = await self._submitter.submit(jobs, call_timeout(context, self._config.publish_timeout))
        count_submitted(inserted)
        return Changed(updated, [entry.job for entry in inserted])

    def part_job(
        self,
        course: course_pb2.Course,
        index: int,
        part: int,
        instruction: str,
        options: job_pb2.JobOptions,
    ) -> job_pb2.Job:
        """The job that writes one part of the new version `course` (a lesson or a quiz, again or afresh)."""
        selection = job_pb2.ModelSelection(provider=course.provider, model=course.model)
        if part == course_service_pb2.COURSE_PART_LESSON:
            spec = job_pb2.JobSpec(
                generate_lesson=job_pb2.GenerateLesson(
                    course_id=course.id,
                    module_index=index,
                    model=selection,
                    instruction=instruction,
                    course_version=course.version,
                )
            )
        else:
            spec = job_pb2.JobSpec(
                generate_quiz=job_pb2.GenerateQuiz(
                    course_id=course.id,
                    module_index=index,
                    model=selection,
                    instruction=instruction,
                    course_version=course.version,
                )
            )
        name = "lesson" if part == course_service_pb2.COURSE_PART_LESSON else "quiz"
        job_options = job_pb2.JobOptions(
            priority=options.priority,
            max_attempts=options.max_attempts,
            idempotency_key=f"{course.id}:v{course.version}:{name}:{index}",
        )
        job_options.labels.update(options.labels)
        if options.HasField("timeout"):
            job_options.timeout.CopyFrom(options.timeout)
        return build_job(spec, job_options, tenant=course.tenant, default_max_attempts=self._default_max_attempts)

    # The RPCs.

    async def regenerate(
        self, request: course_service_pb2.RegenerateCoursePartRequest, context: Context
    ) -> course_service_pb2.RegenerateCoursePartResponse:
        name = "lesson" if request.part == course_service_pb2.COURSE_PART_LESSON else "quiz"

        def apply(course: course_pb2.Course) -> str:
            _module(course, request.module_index)
            asked = f": {request.instruction}" if request.instruction else ""
            return f"regenerated the {name} of module {request.module_index + 1}{asked}"

        changed = await self.change(
            context,
            request.course_id,
            request.expected_version,
            apply,
            lambda course: [
                self.part_job(course, request.module_index, request.part, request.instruction, request.options)
            ],
            parts=(1, 0) if request.part == course_service_pb2.COURSE_PART_LESSON else (0, 1),
        )
        return course_service_pb2.RegenerateCoursePartResponse(course=changed.course, job=changed.jobs[0])

    async def update_lesson(
        self, request: course_service_pb2.UpdateLessonRequest, context: Context
    ) -> course_service_pb2.UpdateLessonResponse:
        def apply(course: course_pb2.Course) -> str:
            module = _module(course, request.module_index)
            module.lesson.body_markdown = request.body_markdown
            _forget_findings(module, "lesson")
            return f"edited the lesson of module {request.module_index + 1}"

        changed = await self.change(context, request.course_id, request.expected_version, apply)
        return course_service_pb2.UpdateLessonResponse(course=changed.course, render_job=changed.jobs[0])

    async def update_question(
        self, request: course_service_pb2.UpdateQuestionRequest, context: Context
    ) -> course_service_pb2.UpdateQuestionResponse:
        problems = question_problems(request.question)
        if problems:
            await abort(context, bad_request(problems))

        def apply(course: course_pb2.Course) -> str:
            module = _module(course, request.module_index)
            questions = module.quiz.questions
            if request.question_index >= len(questions):
                raise Refused(
                    invalid("question_index", f"module {request.module_index} has {len(questions)} questions")
                )
            questions[request.question_index].CopyFrom(request.question)
            _forget_findings(module, f"quiz.questions[{request.question_index}]")
            return f"edited question {request.question_index + 1} of module {request.module_index + 1}"

        changed = await self.change(context, request.course_id, request.expected_version, apply)
        return course_service_pb2.UpdateQuestionResponse(course=changed.course, render_job=changed.jobs[0])

    async def reorder(
        self, request: course_service_pb2.ReorderModulesRequest, context: Context
    ) -> course_service_pb2.ReorderModulesResponse:
        def apply(course: course_pb2.Course) -> str:
            order = list(request.order)
            if sorted(order) != list(range(len(course.modules))):
                raise Refused(
                    invalid("order", f"must name each of the {len(course.modules)} module indexes exactly once")
                )
            modules = [course_pb2.Module() for _ in order]
            for module, old in zip(modules, order, strict=True):
                module.CopyFrom(course.modules[old])
            del course.modules[:]
            course.modules.extend(modules)
            _renumber(course)
            return "reordered the modules"

        changed = await self.change(context, request.course_id, request.expected_version, apply)
        return course_service_pb2.ReorderModulesResponse(course=changed.course, render_job=changed.jobs[0])

    async def add_module(
        self, request: course_service_pb2.AddModuleRequest, context: Context
    ) -> course_service_pb2.AddModuleResponse:
        position = -1

        def apply(course: course_pb2.Course) -> str:
            nonlocal position
            position = request.position if request.HasField("position") else len(course.modules)
            if position > len(course.modules):
                raise Refused(invalid("position", f"must be from 0 to {len(course.modules)}"))
            module = course_pb2.Module(title=request.title, summary=request.summary, objectives=request.objectives)
            course.modules.insert(position, module)
            _renumber(course)
            return f"added module {position + 1}: {request.title}"

        def part_jobs(course: course_pb2.Course) -> list[job_pb2.Job]:
            return [
                self.part_job(course, position, part, "", request.options)
                for part in (course_service_pb2.COURSE_PART_LESSON, course_service_pb2.COURSE_PART_QUIZ)
            ]

        changed = await self.change(
            context, request.course_id, request.expected_version, apply, part_jobs, parts=(1, 1)
        )
        return course_service_pb2.AddModuleResponse(course=changed.course, jobs=changed.jobs)

    async def remove_module(
        self, request: course_service_pb2.RemoveModuleRequest, context: Context
    ) -> course_service_pb2.RemoveModuleResponse:
        def apply(course: course_pb2.Course) -> str | status_pb2.Status:
            module = _module(course, request.module_index)
            if len(course.modules) == 1:
                return _precondition(course, "LAST_MODULE", f"module {request.module_index} is the course's only one")
            del course.modules[request.module_index]
            _renumber(course)
            return f"removed module {request.module_index + 1}: {module.title}"

        changed = await self.change(context, request.course_id, request.expected_version, apply)
        return course_service_pb2.RemoveModuleResponse(course=changed.course, render_job=changed.jobs[0])

    async def versions(
        self, request: course_service_pb2.ListCourseVersionsRequest, context: Context
    ) -> course_service_pb2.ListCourseVersionsResponse:
        course = await self._course(request.course_id, context)
        earlier = await self._store.list_course_versions(course.id)
        return course_service_pb2.ListCourseVersionsResponse(
            versions=[
                course_pb2.CourseVersion(version=kept.version, change=kept.change, update_time=kept.update_time)
                for kept in [*earlier, course]
            ]
        )

    async def at_version(self, course: course_pb2.Course, version: int, context: Context) -> course_pb2.Course:
        """The course as it was at `version` (the current course for 0 or its own version)."""
        if version in (0, course.version):
            return course
        kept = await self._store.get_course_version(course.id, version) if version < course.version else None
        if kept is None:
            await abort(
                context,
                build_status(
                    code_pb2.NOT_FOUND,
                    f"course {course.id!r} has no version {version} (it is at version {course.version})",
                    error_details_pb2.ResourceInfo(
                        resource_type="syllabus.v1.Course", resource_name=f"courses/{course.id}@{version}"
                    ),
                ),
            )
        return kept
