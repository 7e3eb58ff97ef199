"""A job's trace: the caller's traceparent (gRPC metadata or HTTP header) is the parent of the gateway's span, whose
context the job keeps, and every attempt's span (retries and dead-letter retries alike) is that span's child."""

from __future__ import annotations

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import StatusCode

from syllabus.tracing.hook import TracingHook
from syllabus.v1 import admin_service_pb2, job_pb2, job_service_pb2
from tests.conditions import eventually
from tests.pipeline import handlers
from tests.pipeline.conftest import Pipeline, StartWorker
from tests.rest.conftest import Rest
from tests.tracing.conftest import Spans

TRACE_ID = 0x4BF92F3577B34DA6A3CE929D0E0E4736
CALLER_SPAN = 0x00F067AA0BA902B7
TRACEPARENT = f"00-{TRACE_ID:032x}-{CALLER_SPAN:016x}-01"
ATTEMPT = "summarize_text attempt"


def submit_request(text: str, **options: object) -> job_service_pb2.SubmitJobRequest:
    return job_service_pb2.SubmitJobRequest(
        spec=job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text=text)),
        options=job_pb2.JobOptions(**options),  # type: ignore[arg-type]
    )


async def attempts_ended(spans: Spans, count: int) -> list[ReadableSpan]:
    async def ended() -> bool:
        return len(spans.named(ATTEMPT)) >= count

    await eventually(ended, timeout=30, every=0.05)
    return sorted(spans.named(ATTEMPT), key=lambda span: str((span.attributes or {})["syllabus.job.attempt"]))


def assert_child(span: ReadableSpan, parent_span_id: int) -> None:
    assert span.context is not None and span.context.trace_id == TRACE_ID
    assert span.parent is not None and span.parent.span_id == parent_span_id


async def test_a_job_submitted_over_grpc_has_one_span_per_attempt_in_the_callers_trace(
    pipeline: Pipeline, start_worker: StartWorker, spans: Spans
) -> None:
    await start_worker(hooks=[TracingHook()])
    response = await pipeline.jobs.SubmitJob(
        submit_request("fail-retryable:1"), timeout=10, metadata=(("traceparent", TRACEPARENT),)
    )
    job = response.job
    assert job.trace_id == f"{TRACE_ID:032x}"
    (gateway,) = spans.named("syllabus.v1.JobService/SubmitJob")
    assert_child(gateway, CALLER_SPAN)
    assert gateway.context is not None and job.trace_parent.split("-")[2] == f"{gateway.context.span_id:016x}"

    first, second = await attempts_ended(spans, 2)
    for span, attempt, outcome in ((first, 1, "retrying"), (second, 2, "succeeded")):
        assert_child(span, gateway.context.span_id)
        assert span.attributes is not None
        assert span.attributes["syllabus.job.id"] == job.id
        assert span.attributes["syllabus.job.kind"] == "summarize_text"
        assert span.attributes["syllabus.job.attempt"] == attempt
        assert span.attributes["syllabus.tenant"] == job.tenant
        assert span.attributes["syllabus.worker.id"]
        assert span.attributes["syllabus.outcome"] == outcome
    assert first.status.status_code == StatusCode.ERROR
    assert [event.name for event in first.events] == ["exception"]
    assert first.events[0].attributes is not None
    assert first.events[0].attributes["exception.message"] == "flaky on attempt 1"
    assert second.status.status_code != StatusCode.ERROR
    assert (await pipeline.store.get_job(job.id)).trace_id == job.trace_id  # type: ignore[union-attr]


async def test_a_job_run_in_one_call_is_in_the_callers_trace(
    pipeline: Pipeline, start_worker: StartWorker, spans: Spans
) -> None:
    await start_worker(hooks=[TracingHook()])
    submit = submit_request("ok")
    request = job_service_pb2.RunJobRequest(spec=submit.spec, options=submit.options)
    answers = [a async for a in pipeline.jobs.RunJob(request, timeout=30, metadata=(("traceparent", TRACEPARENT),))]
    job = answers[0].submitted.job
    assert job.trace_id == f"{TRACE_ID:032x}" and answers[-1].event.type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED
    (gateway,) = spans.named("syllabus.v1.JobService/RunJob")
    assert_child(gateway, CALLER_SPAN)
    assert gateway.context is not None and job.trace_parent.split("-")[2] == f"{gateway.context.span_id:016x}"
    (attempt,) = await attempts_ended(spans, 1)
    assert_child(attempt, gateway.context.span_id)
    # A watch makes no span.
    async for _ in pipeline.jobs.WatchJob(job_service_pb2.WatchJobRequest(job_id=job.id), timeout=30):
        pass
    assert not spans.named("syllabus.v1.JobService/WatchJob")


async def test_a_job_submitted_over_rest_keeps_the_traceparent_header(
    rest: Rest, start_worker: StartWorker, spans: Spans
) -> None:
    await start_worker(hooks=[TracingHook()])
    got = await rest.http.post(
        "/v1/jobs", json={"spec": {"summarizeText": {"text": "plain"}}}, headers={"traceparent": TRACEPARENT}
    )
    assert got.status_code == 200, got.text
    job = got.json()["job"]
    assert job["traceId"] == f"{TRACE_ID:032x}"
    (gateway,) = spans.named("syllabus.v1.JobService/SubmitJob")
    assert_child(gateway, CALLER_SPAN)
    (attempt,) = await attempts_ended(spans, 1)
    assert gateway.context is not None
    assert_child(attempt, gateway.context.span_id)
    fetched = await rest.http.get(f"/v1/jobs/{job['id']}")
    assert fetched.json()["job"]["traceId"] == job["traceId"]


async def test_a_dead_letter_retry_runs_in_the_jobs_own_trace(
    pipeline: Pipeline, start_worker: StartWorker, spans: Spans
) -> None:
    await start_worker(hooks=[TracingHook()])
    response = await pipeline.jobs.SubmitJob(
        submit_request("fail-until-healed", max_attempts=1), timeout=10, metadata=(("traceparent", TRACEPARENT),)
    )
    job = response.job
    (failed,) = await attempts_ended(spans, 1)
    assert failed.attributes is not None and failed.attributes["syllabus.outcome"] == "dead_lettered"
    handlers.healed.add(job.id)
    # The operator's call is a trace of its own; the job's attempts stay in the trace that submitted it.
    await pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=job.id), timeout=10)
    first, second = await attempts_ended(spans, 2)
    (gateway,) = spans.named("syllabus.v1.JobService/SubmitJob")
    assert gateway.context is not None
    for span in (first, second):
        assert_child(span, gateway.context.span_id)
    assert second.attributes is not None and second.attributes["syllabus.outcome"] == "succeeded"
    (operator,) = spans.named("syllabus.v1.AdminService/RetryDeadLetter")
    assert operator.context is not None and operator.context.trace_id != TRACE_ID
