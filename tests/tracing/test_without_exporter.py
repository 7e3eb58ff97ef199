"""Without an exporter (the default) no span is made, yet every job still carries its trace: the caller's, or
one the gateway starts, handed from each attempt to the jobs it submits, so one course is still one trace id."""

from __future__ import annotations

import pytest

from syllabus.store.base import JobQuery
from syllabus.tracing import setup
from syllabus.tracing.hook import TraceContextHook
from syllabus.v1 import job_pb2, job_service_pb2
from tests.course.conftest import CourseStack
from tests.pipeline.conftest import Pipeline
from tests.tracing.conftest import Spans
from tests.tracing.test_job_traces import TRACE_ID, TRACEPARENT, submit_request


@pytest.fixture
def without_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    # What setup_tracing decides in a process with no OTLP endpoint.
    monkeypatch.setattr(setup, "_recording", False)


@pytest.mark.usefixtures("without_exporter")
async def test_a_call_continues_the_callers_trace_or_starts_one_and_makes_no_span(
    pipeline: Pipeline, spans: Spans
) -> None:
    given = await pipeline.jobs.SubmitJob(submit_request("a"), timeout=10, metadata=(("traceparent", TRACEPARENT),))
    assert given.job.trace_id == f"{TRACE_ID:032x}"
    # The gateway's own place in the trace: a span id of its own under the caller's.
    assert given.job.trace_parent.split("-")[2] not in ("", f"{0x00F067AA0BA902B7:016x}")
    fresh = [(await pipeline.jobs.SubmitJob(submit_request("b"), timeout=10)).job for _ in range(2)]
    assert all(len(job.trace_id) == 32 and int(job.trace_id, 16) for job in fresh)
    assert fresh[0].trace_id != fresh[1].trace_id
    # A run's job too (its first answer; no worker runs it here).
    run = pipeline.jobs.RunJob(job_service_pb2.RunJobRequest(spec=submit_request("c").spec), timeout=10)
    first = await anext(aiter(run))
    run.cancel()
    assert len(first.submitted.job.trace_id) == 32 and first.submitted.job.trace_id not in {j.trace_id for j in fresh}
    assert spans.finished() == []


@pytest.mark.usefixtures("without_exporter")
async def test_a_course_is_one_trace_id_without_spans(stack: CourseStack, spans: Spans) -> None:
    await stack.start_workers(hooks=[TraceContextHook()])
    created = await stack.create(modules=2)
    events = await stack.events(created.job.id, timeout=60)
    assert events[-1].type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED, events[-1]
    page = await stack.store.list_jobs(JobQuery(tenant=created.job.tenant, page_size=100))
    kinds = sorted(job.kind for job in page.jobs)
    assert kinds == sorted(["generate_course"] + ["generate_lesson", "generate_quiz"] * 2 + ["render_document"])
    assert {job.trace_id for job in page.jobs} == {created.job.trace_id}
    assert spans.finished() == []
