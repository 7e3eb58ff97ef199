"""Children of a course job: writing one module's lesson or quiz into the stored course, and the fan-in.

Fan-in is idempotent by construction: the set of modules whose lesson and quiz are stored IS the set of
finished children. Whoever stores the last part submits the render job, under an idempotency key derived from
the course job, so two children finishing at once, or one redelivered, still make exactly one render job.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Literal, TypeVar

from generator.costs import job_usage, put_cost
from generator.deps import Deps
from generator.grounding import ground
from generator.models import Answer
from generator.tasks import Task, quality_repair_prompt
from syllabus import lifecycle
from syllabus.coursecontract import children_progress, is_complete
from syllabus.submit import build_job
from syllabus.v1 import course_pb2, job_pb2
from syllabus.worker import JobContext, PermanentError, RetryableError

Part = Literal["lesson", "quiz"]
T = TypeVar("T")
log = logging.getLogger(__name__)


def child_key(course_job_id: str, part: str, index: int) -> str:
    return f"{course_job_id}:{part}:{index}"


def render_key(course_job_id: str) -> str:
    return f"{course_job_id}:render"


def child_options(parent: job_pb2.JobOptions, idempotency_key: str) -> job_pb2.JobOptions:
    """A child runs like its parent (priority, attempts, time limit, labels) but now, under its own key."""
    options = job_pb2.JobOptions(
        priority=parent.priority, max_attempts=parent.max_attempts, idempotency_key=idempotency_key
    )
    options.labels.update(parent.labels)
    if parent.HasField("timeout"):
        options.timeout.CopyFrom(parent.timeout)
    return options


def written(course: course_pb2.Course, part: Part) -> int:
    return sum(1 for module in course.modules if module.HasField(part))


def render_job(
    course_id: str, course_job_id: str, tenant: str, options: job_pb2.JobOptions, default_max_attempts: int
) -> job_pb2.Job:
    return build_job(
        job_pb2.JobSpec(render_document=job_pb2.RenderDocument(course_id=course_id)),
        child_options(options, render_key(course_job_id)),
        tenant=tenant,
        default_max_attempts=default_max_attempts,
        parent_id=course_job_id,
    )


async def load_course(deps: Deps, course_id: str) -> course_pb2.Course:
    course = await deps.store.get_course(course_id)
    if course is None:
        raise PermanentError(f"course {course_id} does not exist", error_type="NotFound")
    return course


def module_index(course: course_pb2.Course, index: int) -> int:
    """The index, when the course has that module; a job naming another is refused for good."""
    if index >= len(course.modules):
        raise PermanentError(
            f"course {course.id} has {len(course.modules)} modules; there is no module {index}", error_type="InvalidJob"
        )
    return index


async def grounded_task(
    deps: Deps, course: course_pb2.Course, task_for: Callable[[course_pb2.Course], Task[T]]
) -> Task[T]:
    """The part's task, given its module's passages when the course is grounded on sources."""
    return await ground(deps.sources, course, task_for(course), deps.embedder)


async def write_part(
    ctx: JobContext,
    deps: Deps,
    part: Part,
    course_id: str,
    index: int,
    task_for: Callable[[course_pb2.Course], Task[T]],
    check: Callable[[course_pb2.Course, T], list[course_pb2.QualityFinding]],
    selection: job_pb2.ModelSelection,
) -> job_pb2.JobResult:
    """Write the part unless it is stored; `check` gives its quality findings (generator.quality)."""
    course = await load_course(deps, course_id)
    stored = False
    if not course.modules[module_index(course, index)].HasField(part):
        task = await grounded_task(deps, course, task_for)
        answer, findings, item = await checked_answer(ctx, deps, task, selection, lambda value: check(course, value))

        def fill(current: course_pb2.Course) -> course_pb2.Course | None:
            nonlocal stored
            stored = False
            if index >= len(current.modules) or current.modules[index].HasField(part):
                # An earlier delivery of this job stored it first; its result stands.
                return None
            getattr(current.modules[index], part).CopyFrom(answer.value)
            current.modules[index].findings.extend(findings)
            put_cost(current, item)
            current.update_time.CopyFrom(lifecycle.now())
            stored = True
            return current

        updated = await deps.store.update_course(course_id, fill)
        if updated is None:
            raise PermanentError(f"course {course_id} does not exist", error_type="NotFound")
        course = updated
    if ctx.job.parent_id:
        if stored:
            await _report(deps, ctx.job.parent_id, course, part)
        if is_complete(course):
            await deps.submitter.submit(
                [render_job(course_id, ctx.job.parent_id, ctx.job.tenant, ctx.job.options, deps.default_max_attempts)]
            )
    return job_pb2.JobResult(
        reference=f"courses/{course_id}/modules/{index}/{part}", usage=job_usage(course, ctx.job.id)
    )


async def checked_answer(
    ctx: JobContext,
    deps: Deps,
    task: Task[T],
    selection: job_pb2.ModelSelection,
    check: Callable[[T], list[course_pb2.QualityFinding]],
) -> tuple[Answer[T], list[course_pb2.QualityFinding], course_pb2.CostItem]:
    """The model's answer and what the quality checks found in it, marked repaired or not, with the cost of its
    calls. An answer with findings is asked for once more with the findings quoted; the one with fewer findings
    is kept, and a finding the repair did not fix stays unrepaired: the part needs review."""
    answer = await deps.models.run(task, selection)
    item = answer.cost_item(ctx.job)
    findings = check(answer.value)
    if not findings:
        return answer, [], item
    log.info("%s of job %s failed %d quality checks; asking once more", task.kind, ctx.job.id, len(findings))
    prompt = quality_repair_prompt(task, answer.text, [finding.message for finding in findings])
    try:
        repair = await deps.models.run(task, selection, prompt=prompt)
    except RetryableError as exc:
        if exc.error_type != "InvalidModelOutput":
            raise
        # The repair did not even fit the task: keep the first answer, flagged.
        return answer, findings, item
    _add_cost(item, repair.cost_item(ctx.job))
    remaining = check(repair.value)
    if len(remaining) > len(findings):
        return answer, findings, item
    still = {(finding.check, finding.part) for finding in remaining}
    fixed = [finding for finding in findings if (finding.check, finding.part) not in still]
    for finding in fixed:
        finding.repaired = True
    return repair, [*fixed, *remaining], item


def _add_cost(item: course_pb2.CostItem, more: course_pb2.CostItem) -> None:
    item.input_tokens += more.input_tokens
    item.output_tokens += more.output_tokens
    item.estimated_cost_usd += more.estimated_cost_usd


async def _report(deps: Deps, parent_id: str, course: course_pb2.Course, part: Part) -> None:
    total = len(course.modules)
    done = written(course, "lesson") + written(course, "quiz")
    percent = children_progress(done, total)
    await deps.parents.progress(parent_id, percent, f"{part} {written(course, part)} of {total} written")
