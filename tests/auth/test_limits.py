"""Each tenant within its limits: a request rate shared by every gateway (a token bucket in Valkey), jobs waiting
at once, a spend budget a course's estimate must fit, and jobs running at once over every worker; with Redis away,
limits let calls through or refuse all but reads, as configured."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import grpc
import httpx
import pytest
from google.protobuf import duration_pb2
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from redis.asyncio import Redis

from gateway.auth.gate import Gate
from gateway.limits import Limits
from gateway.rest.server import RestGateway, services_named
from gateway.services import SERVICE_NAMES
from syllabus import credentials
from syllabus.config import AuthConfig, GeneratorConfig, LimitsConfig
from syllabus.runningcap import RunningCap
from syllabus.spend import Spend, SpendHook, period_of
from syllabus.store.base import JobQuery
from syllabus.v1 import course_service_pb2, job_pb2, job_service_pb2
from syllabus.v1 import course_service_pb2_grpc as course_grpc
from syllabus.v1 import job_service_pb2_grpc as job_grpc
from syllabus.worker import JobContext
from tests.auth.conftest import SECRET
from tests.conditions import eventually
from tests.pipeline import handlers
from tests.pipeline.conftest import Pipeline, StartWorker
from tests.pipeline.served import serve_gateway

AUTH = AuthConfig(jwt_secret=SECRET)
GPT = GeneratorConfig(provider="openai", openai_base_url="http://127.0.0.1:9/v1", openai_model="gpt-4o")


def token(tenant: str) -> str:
    import jwt

    return jwt.encode({"tenant": tenant, "scope": "read write", "exp": time.time() + 600}, SECRET)


@dataclasses.dataclass
class Limited:
    target: str
    http: httpx.AsyncClient
    redis: Redis

    def jobs(self, tenant: str) -> tuple[grpc.aio.Channel, job_grpc.JobServiceStub]:
        channel = credentials.channel(self.target, token=token(tenant))
        return channel, job_grpc.JobServiceStub(channel)


@asynccontextmanager
async def limited(
    pipeline: Pipeline, redis_url: str, config: LimitsConfig, namespace: str = ""
) -> AsyncIterator[Limited]:
    redis = Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
    namespace = namespace or pipeline.topology.namespace
    limits = Limits(config, redis=redis, namespace=namespace, store=pipeline.store, generator=GPT)
    async with serve_gateway(pipeline, gate=Gate(AUTH, "default", None, limits), limits=limits) as target:
        rest = RestGateway(services_named(SERVICE_NAMES), target)
        url = "http://" + await rest.start("127.0.0.1:0")
        try:
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                yield Limited(target, http, redis)
        finally:
            await rest.stop()
            await redis.aclose()


def summarize(text: str = "ok") -> job_service_pb2.SubmitJobRequest:
    return job_service_pb2.SubmitJobRequest(spec=job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text=text)))


def details(error: grpc.aio.AioRpcError) -> dict[str, Any]:
    status = rpc_status.from_call(error)
    assert status is not None
    found: dict[str, Any] = {}
    for detail in status.details:
        for kind in (error_details_pb2.QuotaFailure, error_details_pb2.RetryInfo):
            message = kind()
            if detail.Unpack(message):
                found[kind.__name__] = message
    return found


async def submit_code(stub: job_grpc.JobServiceStub, request: Any = None) -> grpc.StatusCode:
    try:
        if isinstance(request, job_service_pb2.SubmitJobsRequest):
            await stub.SubmitJobs(request, timeout=10)
        else:
            await stub.SubmitJob(request or summarize(), timeout=10)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_a_tenant_over_its_rate_is_told_when_to_come_back_and_others_are_not_slowed(
    pipeline: Pipeline, redis_url: str
) -> None:
    # A refill so slow that no token comes back during the test: the fourth call finds the bucket empty.
    config = LimitsConfig(rate=0.01, burst=3)
    async with limited(pipeline, redis_url, config) as gateway:
        channel, acme = gateway.jobs("acme")
        for _ in range(3):
            await acme.ListJobs(job_service_pb2.ListJobsRequest(), timeout=10)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await acme.SubmitJob(summarize(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        found = details(caught.value)
        assert found["QuotaFailure"].violations[0].subject == "tenant:acme:requests"
        assert 0 < found["RetryInfo"].retry_delay.seconds <= 100
        answer = await gateway.http.get("/v1/jobs", headers={"Authorization": f"Bearer {token('acme')}"})
        assert answer.status_code == 429 and 1 <= int(answer.headers["Retry-After"]) <= 100
        other_channel, globex = gateway.jobs("globex")
        await globex.SubmitJob(summarize(), timeout=10)
        await channel.close()
        await other_channel.close()
    assert not (await pipeline.store.list_jobs(JobQuery(tenant="acme"))).jobs
    assert len((await pipeline.store.list_jobs(JobQuery(tenant="globex"))).jobs) == 1


async def test_every_gateway_draws_on_the_same_bucket(pipeline: Pipeline, redis_url: str) -> None:
    config = LimitsConfig(rate=0.01, burst=2)
    async with limited(pipeline, redis_url, config) as first, limited(pipeline, redis_url, config) as second:
        for gateway in (first, second):
            channel, stub = gateway.jobs("shared")
            assert await submit_code(stub) == grpc.StatusCode.OK
            await channel.close()
        channel, stub = first.jobs("shared")
        assert await submit_code(stub) == grpc.StatusCode.RESOURCE_EXHAUSTED
        await channel.close()


@pytest.mark.parametrize(
    ("when_down", "write"), [("open", grpc.StatusCode.OK), ("closed", grpc.StatusCode.UNAVAILABLE)]
)
async def test_with_redis_away_limits_fail_open_or_closed_and_reads_keep_working(
    pipeline: Pipeline, closed_addr: str, when_down: str, write: grpc.StatusCode
) -> None:
    config = LimitsConfig(rate=100, redis_down=when_down)
    async with limited(pipeline, f"redis://{closed_addr}", config) as gateway:
        channel, stub = gateway.jobs("acme")
        assert await submit_code(stub) == write
        listed = await stub.ListJobs(job_service_pb2.ListJobsRequest(), timeout=10)
        assert len(listed.jobs) == (1 if write == grpc.StatusCode.OK else 0)
        await channel.close()


async def test_a_tenant_may_have_only_so_many_jobs_waiting(pipeline: Pipeline, redis_url: str) -> None:
    async with limited(pipeline, redis_url, LimitsConfig(max_waiting=3)) as gateway:
        channel, acme = gateway.jobs("acme")
        assert await submit_code(acme) == grpc.StatusCode.OK
        assert await submit_code(acme) == grpc.StatusCode.OK
        two = job_service_pb2.SubmitJobsRequest(requests=[summarize(), summarize()])
        assert await submit_code(acme, two) == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert await submit_code(acme) == grpc.StatusCode.OK
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await acme.SubmitJob(summarize(), timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert "has 3 jobs waiting and may have 3 at once" in (caught.value.details() or "")
        other, globex = gateway.jobs("globex")
        assert await submit_code(globex) == grpc.StatusCode.OK
        await channel.close()
        await other.close()


async def test_a_course_that_would_pass_the_budget_is_refused_with_what_is_left(
    pipeline: Pipeline, redis_url: str
) -> None:
    namespace = pipeline.topology.namespace
    async with limited(pipeline, redis_url, LimitsConfig(budget_usd=1.0), namespace) as gateway:
        spend = Spend(gateway.redis, f"{namespace or 'syllabus'}:limits:spend:", "month")
        await spend.add("acme", 0.8)
        channel = credentials.channel(gateway.target, token=token("acme"))
        courses = course_grpc.CourseServiceStub(channel)
        six = course_service_pb2.CreateCourseRequest(course=job_pb2.GenerateCourse(prompt="Rust for Pythonistas"))
        # Asked first, the estimate says what the course would cost and that the budget would refuse it.
        asked = await gateway.http.post(
            "/v1/courses",
            json={"course": {"prompt": "Rust for Pythonistas"}, "validateOnly": True},
            headers={"Authorization": f"Bearer {token('acme')}"},
        )
        assert asked.status_code == 200, asked.text
        answer = asked.json()
        assert "course" not in answer and "job" not in answer, answer
        estimate = answer["estimate"]
        assert (estimate["provider"], estimate["model"], estimate["modules"], estimate["modelCalls"]) == (
            "openai",
            "gpt-4o",
            6,
            13,
        )
        assert int(estimate["inputTokens"]) > 0 and int(estimate["outputTokens"]) > 0
        assert estimate["estimatedCostUsd"] > 0.2 and estimate["withinBudget"] is False
        assert (estimate["budgetUsd"], estimate["spentUsd"]) == (1.0, 0.8) and estimate["budgetPeriodEnd"]
        assert not (await courses.ListCourses(course_service_pb2.ListCoursesRequest(), timeout=10)).courses
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await courses.CreateCourse(six, timeout=10)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        message = caught.value.details() or ""
        assert "$0.2000 of tenant acme's $1 budget is left" in message, message
        assert details(caught.value)["QuotaFailure"].violations[0].subject == "tenant:acme:spend"
        one = course_service_pb2.CreateCourseRequest(
            course=job_pb2.GenerateCourse(prompt="Rust for Pythonistas", modules=1)
        )
        one_estimate = await courses.CreateCourse(
            course_service_pb2.CreateCourseRequest(course=one.course, validate_only=True), timeout=10
        )
        assert one_estimate.estimate.within_budget and one_estimate.estimate.model_calls == 3
        made = await courses.CreateCourse(one, timeout=10)
        assert made.course.tenant == "acme"
        assert made.estimate == one_estimate.estimate
        offline = course_service_pb2.CreateCourseRequest(
            course=job_pb2.GenerateCourse(prompt="Rust", model=job_pb2.ModelSelection(provider="offline"))
        )
        await courses.CreateCourse(offline, timeout=10)
        await spend.add("acme", 0.5)
        with pytest.raises(grpc.aio.AioRpcError) as spent:
            await courses.CreateCourse(offline, timeout=10)
        assert "$0.0000 of tenant acme's $1 budget is left" in (spent.value.details() or "")
        await channel.close()


async def test_spend_counts_each_top_job_once(redis: Redis) -> None:
    spend = Spend(redis, "test-spend:", "day")
    hook = SpendHook(spend)
    job = job_pb2.Job(id="a", tenant="acme")
    job.result.usage.estimated_cost_usd = 0.25
    child = job_pb2.Job(id="b", tenant="acme", parent_id="a")
    child.result.usage.estimated_cost_usd = 0.1
    await hook.on_success(job)
    await hook.on_success(child)
    await hook.on_success(job_pb2.Job(id="c", tenant="acme"))
    spent, ends = await spend.spent("acme")
    assert spent == pytest.approx(0.25)
    assert ends == period_of(ends - duration(1), "day")[1]


def duration(seconds: float) -> Any:
    from datetime import timedelta

    return timedelta(seconds=seconds)


def test_periods_begin_and_end_on_utc_days_and_months() -> None:
    from datetime import UTC, datetime

    december = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    assert period_of(december, "month") == ("2026-12", datetime(2027, 1, 1, tzinfo=UTC))
    assert period_of(december, "day") == ("2026-12-31", datetime(2027, 1, 1, tzinfo=UTC))
    assert period_of(datetime(2026, 2, 3, 4, tzinfo=UTC), "month") == ("2026-02", datetime(2026, 3, 1, tzinfo=UTC))


def context(job_id: str, tenant: str, timeout: float | None = None) -> JobContext:
    job = job_pb2.Job(id=job_id, tenant=tenant)
    if timeout is not None:
        job.options.timeout.CopyFrom(duration_pb2.Duration(nanos=int(timeout * 1e9)))

    async def report(percent: float, message: str) -> None:
        return None

    return JobContext(job=job, attempt=1, _report=report)


async def test_the_running_cap_holds_a_slot_per_job_and_a_killed_workers_slot_expires(redis: Redis) -> None:
    from syllabus.worker import Defer

    cap = RunningCap(redis, "test-running:", 1, default_timeout=60, fail_closed=False, margin=0)
    await cap.before_attempt(context("a", "acme"))
    await cap.before_attempt(context("a", "acme"))  # its own redelivery keeps its slot
    with pytest.raises(Defer, match="tenant acme has 1 jobs running, its cap"):
        await cap.before_attempt(context("b", "acme"))
    await cap.before_attempt(context("c", "globex"))
    await cap.after_attempt(job_pb2.Job(id="a", tenant="acme"), "succeeded")
    await cap.before_attempt(context("b", "acme"))
    # A worker killed while "b" ran gives nothing back: the slot goes at b's time limit.
    short = RunningCap(redis, "test-short:", 1, default_timeout=60, fail_closed=False, margin=0)
    await short.before_attempt(context("d", "acme", timeout=0.05))

    async def free() -> bool:
        try:
            await short.before_attempt(context("e", "acme"))
        except Defer:
            return False
        return True

    await eventually(free)


async def test_jobs_over_the_running_cap_wait_their_turn_without_spending_attempts(
    pipeline: Pipeline, start_worker: StartWorker, redis: Redis
) -> None:
    cap = RunningCap(redis, f"{pipeline.topology.namespace}:running:", 1, default_timeout=60, fail_closed=False)
    await start_worker(hooks=[cap])
    call = pipeline.jobs.WatchJobs(job_service_pb2.WatchJobsRequest(), timeout=60)
    await call.initial_metadata()
    first = await pipeline.submit("block")
    second = await pipeline.submit("block")
    # Either may take the one slot first: the other is handed back, and says why.
    deferred: job_pb2.JobEvent | None = None
    async for response in call:
        if response.event.error.type == "Deferred":
            deferred = response.event
            break
    call.cancel()
    assert deferred is not None and deferred.job_id in (first.id, second.id)
    assert "tenant default has 1 jobs running, its cap" in deferred.error.message
    handlers.release.set()
    for job in (first, second):
        done = await pipeline.wait_end(job.id)
        assert done.state == job_pb2.JOB_STATE_SUCCEEDED
        assert done.attempt == 1
