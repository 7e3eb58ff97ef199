"""Strict input on gRPC: enum numbers that name no value, run_at times far off, and Timestamps or Durations no
clock can show are INVALID_ARGUMENT naming the field, never taken as the default or stored."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.protobuf import duration_pb2, timestamp_pb2
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from buf.validate import validate_pb2
from syllabus.store.base import JobQuery
from syllabus.v1 import (
    admin_service_pb2,
    course_pb2,
    course_service_pb2,
    course_service_pb2_grpc,
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
)
from tests.gateway.conftest import Gateway, LogProblems
from tests.pipeline.conftest import TENANT

SERVICES = [
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"],
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
    course_service_pb2.DESCRIPTOR.services_by_name["CourseService"],
]
SPEC = job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text="hello"))
YEAR = 365 * 86400


def enum_fields(
    descriptor: Descriptor, path: str = "", seen: frozenset[str] = frozenset()
) -> Iterator[tuple[str, FieldDescriptor]]:
    """(path, field) of every enum field a request can carry, through its message fields; but NullValue (in a
    task's JSON, google.protobuf.Value), whose every number reads as null."""
    for field in descriptor.fields:
        where = f"{path}.{field.name}" if path else field.name
        if field.enum_type is not None and field.enum_type.full_name == "google.protobuf.NullValue":
            continue
        if field.enum_type is not None:
            yield where, field
        elif field.message_type is not None and field.message_type.full_name not in seen:
            yield from enum_fields(field.message_type, where, seen | {descriptor.full_name})


def test_every_enum_field_of_every_request_refuses_numbers_without_a_value() -> None:
    unchecked = []
    for service in SERVICES:
        for method in service.methods:
            for where, field in enum_fields(method.input_type):
                rules: validate_pb2.FieldRules = field.GetOptions().Extensions[validate_pb2.field]  # type: ignore[index]
                enum_rules = rules.repeated.items.enum if field.is_repeated else rules.enum
                if not enum_rules.defined_only:
                    unchecked.append(f"{method.input_type.full_name}.{where}")
    assert unchecked == []


def violations(exc: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(exc)
    assert status is not None
    fields = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        assert detail.Unpack(bad)
        fields += [violation.field for violation in bad.field_violations]
    return fields


async def refused(call: object, request: Message) -> list[str]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(request, timeout=10)  # type: ignore[operator]
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    return violations(caught.value)


def no_value(number: int) -> Any:
    """An enum number that names no value (typed Any: the stubs take only the defined ones)."""
    return number


def options(**fields: object) -> job_pb2.JobOptions:
    return job_pb2.JobOptions(**fields)  # type: ignore[arg-type]


async def test_enum_numbers_without_a_value(gateway: Gateway, gateway_log: LogProblems) -> None:
    jobs = job_service_pb2_grpc.JobServiceStub(gateway.channel)
    courses = course_service_pb2_grpc.CourseServiceStub(gateway.channel)
    submit = job_service_pb2.SubmitJobRequest
    priority = options(priority=no_value(77))
    assert await refused(jobs.SubmitJob, submit(spec=SPEC, options=priority)) == ["options.priority"]
    render = job_pb2.JobSpec(
        render_document=job_pb2.RenderDocument(
            course_id="c", formats=[course_pb2.DOCUMENT_FORMAT_MARKDOWN, no_value(99)]
        )
    )
    assert await refused(jobs.SubmitJob, submit(spec=render)) == ["spec.render_document.formats[1]"]
    assert await refused(jobs.ListJobs, job_service_pb2.ListJobsRequest(states=[no_value(42)])) == ["states[0]"]
    level = job_pb2.GenerateCourse(prompt="Intro to queues", level=no_value(9))
    create = course_service_pb2.CreateCourseRequest(course=level)
    assert await refused(courses.CreateCourse, create) == ["course.level"]
    document = course_service_pb2.GetCourseDocumentRequest(course_id="c", format=no_value(77))
    assert await refused(courses.GetCourseDocument, document) == ["format"]
    assert (await gateway.pipeline.store.list_jobs(JobQuery(tenant=TENANT))).jobs == []
    assert gateway_log() == []


@pytest.mark.parametrize(
    "seconds",
    [
        -62135596800,  # 0001-01-01, Go's zero time
        253402300799,  # 9999-12-31
        "11 years ago",
        "11 years ahead",
    ],
)
async def test_run_at_far_off_is_refused(gateway: Gateway, gateway_log: LogProblems, seconds: int | str) -> None:
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    if seconds == "11 years ago":
        seconds = now.seconds - 11 * YEAR
    elif seconds == "11 years ahead":
        seconds = now.seconds + 11 * YEAR
    assert isinstance(seconds, int)
    jobs = job_service_pb2_grpc.JobServiceStub(gateway.channel)
    request = job_service_pb2.SubmitJobRequest(
        spec=SPEC, options=options(run_at=timestamp_pb2.Timestamp(seconds=seconds))
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await jobs.SubmitJob(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details() == "invalid request: options.run_at: must be within 10 years of now"
    assert gateway_log() == []


async def test_run_at_in_range_is_taken(gateway: Gateway) -> None:
    now = timestamp_pb2.Timestamp()
    now.GetCurrentTime()
    jobs = job_service_pb2_grpc.JobServiceStub(gateway.channel)
    for seconds in (now.seconds - 9 * YEAR, now.seconds + 3600, now.seconds + 9 * YEAR):
        when = options(run_at=timestamp_pb2.Timestamp(seconds=seconds))
        response = await jobs.SubmitJob(job_service_pb2.SubmitJobRequest(spec=SPEC, options=when), timeout=10)
        assert response.job.options.run_at.seconds == seconds


@pytest.mark.parametrize(
    ("when", "field", "words"),
    [
        (options(run_at=timestamp_pb2.Timestamp(seconds=1_800_000_000, nanos=-5)), "options.run_at", "Nanos"),
        (options(run_at=timestamp_pb2.Timestamp(seconds=1 << 62)), "options.run_at", "Seconds"),
        (options(timeout=duration_pb2.Duration(seconds=5, nanos=-5)), "options.timeout", "Sign mismatch"),
        (options(timeout=duration_pb2.Duration(seconds=1, nanos=2_000_000_000)), "options.timeout", "Nanos"),
    ],
)
async def test_times_no_clock_can_show(
    gateway: Gateway, gateway_log: LogProblems, when: job_pb2.JobOptions, field: str, words: str
) -> None:
    jobs = job_service_pb2_grpc.JobServiceStub(gateway.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await jobs.SubmitJob(job_service_pb2.SubmitJobRequest(spec=SPEC, options=when), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert violations(caught.value) == [field] and words in caught.value.details()
    assert gateway_log() == []


async def test_health_list_answers_what_check_does(gateway: Gateway, gateway_log: LogProblems) -> None:
    health = health_pb2_grpc.HealthStub(gateway.channel)
    listed = await health.List(health_pb2.HealthListRequest(), timeout=10)
    serving = health_pb2.HealthCheckResponse.SERVING
    assert {name: status.status for name, status in listed.statuses.items()} == {
        "": serving,
        "syllabus.v1.JobService": serving,
        "syllabus.v1.AdminService": serving,
        "syllabus.v1.CourseService": serving,
        "syllabus.v1.ScheduleService": serving,
    }
    assert gateway_log() == []
