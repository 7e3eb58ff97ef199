"""The gateway's /metrics on its HTTP port: requests counted by route template (not the raw path) and status, gRPC
calls by method and code, accepted submissions, and the queues' gauges over every tenant."""

from __future__ import annotations

import grpc

from syllabus.v1 import job_pb2, job_service_pb2
from tests.conditions import eventually
from tests.metrics.conftest import Gateway
from tests.metrics.scrape import Page, scrape

HTTP = "syllabus_http_requests_total"
GRPC = "syllabus_grpc_requests_total"
JOB_ROUTE = "/v1/jobs/{job_id}"
WATCH = "syllabus.v1.JobService/WatchJob"


async def test_requests_are_counted_by_route_template_and_code(gateway: Gateway) -> None:
    before = await scrape(gateway.metrics_url)
    job = await gateway.pipeline.submit("counted")
    http = gateway.http
    assert (await http.get(f"/v1/jobs/{job.id}")).status_code == 200
    assert (await http.get("/v1/jobs/01NOSUCHJOB0000000000000000")).status_code == 404
    assert (await http.post("/v1/jobs", json={"spec": {"summarizeText": {"text": ""}}})).status_code == 400
    assert (await http.get("/no/such/path")).status_code == 404
    assert (await http.get("/another/unknown/path")).status_code == 404
    for page in ("/", "/dashboard/app.js", "/dashboard/no-such-file.js"):
        await http.get(page)
    after = await scrape(gateway.metrics_url)

    assert after.moved(before, HTTP, route=JOB_ROUTE, method="GET", code="200") == 1
    assert after.moved(before, HTTP, route=JOB_ROUTE, method="GET", code="404") == 1
    assert after.moved(before, HTTP, route="/v1/jobs", method="POST", code="400") == 1
    # Unknown paths are one label value, whatever they were.
    assert after.moved(before, HTTP, route="unmatched", method="GET", code="404") == 2
    assert not any(labels["route"].startswith(("/no", "/another")) for labels in after.labelled(HTTP))
    # The dashboard's files are one route, found or not.
    assert after.moved(before, HTTP, route="/dashboard", method="GET", code="200") == 2
    assert after.moved(before, HTTP, route="/dashboard", method="GET", code="404") == 1
    # The scrape before this one is counted too, under its own path.
    assert after.moved(before, HTTP, route="/metrics", method="GET", code="200") == 1
    assert after.moved(before, "syllabus_http_request_duration_seconds_count", route=JOB_ROUTE, method="GET") == 2

    # The REST calls reached the gRPC server (over loopback), as did the pipeline's own SubmitJob.
    get_job = "syllabus.v1.JobService/GetJob"
    assert after.moved(before, GRPC, method=get_job, code="OK") == 1
    assert after.moved(before, GRPC, method=get_job, code="NOT_FOUND") == 1
    assert after.moved(before, GRPC, method="syllabus.v1.JobService/SubmitJob", code="OK") == 1
    assert after.moved(before, GRPC, method="syllabus.v1.JobService/SubmitJob", code="INVALID_ARGUMENT") == 1
    assert after.moved(before, "syllabus_grpc_request_duration_seconds_count", method=get_job) == 2
    # Only the job that was stored is counted as submitted.
    assert after.moved(before, "syllabus_jobs_submitted_total", kind="summarize_text") == 1


async def test_submissions_count_new_jobs_only_batches_included(gateway: Gateway) -> None:
    pipeline = gateway.pipeline
    before = await scrape(gateway.metrics_url)
    await pipeline.submit("keyed", idempotency_key="same-key")
    await pipeline.submit("keyed", idempotency_key="same-key")  # the first job again: nothing new
    spec = job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text="batch"))
    batch = job_service_pb2.SubmitJobsRequest(requests=[job_service_pb2.SubmitJobRequest(spec=spec)] * 3)
    await pipeline.jobs.SubmitJobs(batch, timeout=10)
    after = await scrape(gateway.metrics_url)
    assert after.moved(before, "syllabus_jobs_submitted_total", kind="summarize_text") == 4


async def test_a_stream_cut_short_by_its_deadline_is_counted_so(gateway: Gateway) -> None:
    pipeline = gateway.pipeline
    job = await pipeline.submit("nobody runs this")
    before = await scrape(gateway.metrics_url)
    call = pipeline.jobs.WatchJob(job_service_pb2.WatchJobRequest(job_id=job.id), timeout=0.5)
    try:
        async for _ in call:
            pass
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    pages: list[Page] = []

    async def counted() -> bool:
        # The server sees the deadline pass on its own clock, a moment after the client does.
        pages.append(await scrape(gateway.metrics_url))
        return pages[-1].moved(before, GRPC, method=WATCH, code="DEADLINE_EXCEEDED") == 1

    await eventually(counted)
    # A stream has no duration sample: it lasts as long as its client wants.
    timed = pages[-1].moved(before, "syllabus_grpc_request_duration_seconds_count", method=WATCH)
    assert timed == 0


async def test_queue_gauges_count_every_tenants_jobs(gateway: Gateway) -> None:
    pipeline = gateway.pipeline
    # No worker runs: the jobs wait. One of them is another tenant's (an admin acting for it).
    await pipeline.submit("waits")
    await pipeline.submit("waits too")
    spec = job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text="another tenant's"))
    await pipeline.jobs.SubmitJob(
        job_service_pb2.SubmitJobRequest(spec=spec), metadata=(("x-syllabus-tenant", "other"),), timeout=10
    )
    page = await scrape(gateway.metrics_url)
    assert page.value("syllabus_queue_jobs", queue="generator", state="waiting") == 3
    assert page.value("syllabus_queue_jobs", queue="generator", state="running") == 0
    assert page.value("syllabus_queue_jobs", queue="renderer", state="waiting") == 0
    assert page.value("syllabus_queue_oldest_waiting_seconds", queue="generator") > 0
    assert page.value("syllabus_queue_oldest_waiting_seconds", queue="renderer") == 0
    assert page.value("syllabus_workers", queue="generator") == 0
    assert page.value("syllabus_queue_paused", queue="generator") == 0
