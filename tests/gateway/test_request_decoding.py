"""Raw bytes to every method the gateway serves: what does not decode as the method's message is INVALID_ARGUMENT,
what does gets a proper answer, and neither leaves a traceback in the log."""

from __future__ import annotations

from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import MethodDescriptor
from grpc_health.v1 import health_pb2
from grpc_reflection.v1alpha import reflection_pb2
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syllabus.v1 import admin_service_pb2, course_service_pb2, job_service_pb2
from tests.gateway.conftest import Gateway, LogProblems

SERVICES = [
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"],
    admin_service_pb2.DESCRIPTOR.services_by_name["AdminService"],
    course_service_pb2.DESCRIPTOR.services_by_name["CourseService"],
    health_pb2.DESCRIPTOR.services_by_name["Health"],
    reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"],
]
METHODS = [method for service in SERVICES for method in service.methods]
# A tag that is no wire type, a length past the end, a varint cut off: no message decodes from these.
UNDECODABLE = [b"\xff\xff\xff", b"\x0a\x05ab", b"\x08\x80"]
# What a call may end with when nothing is down; a stream that is still open when the test stops reading ends
# with CANCELLED, one that never sends anything with DEADLINE_EXCEEDED.
PROPER = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
    grpc.StatusCode.ALREADY_EXISTS,
}
STREAM_ENDS = {grpc.StatusCode.CANCELLED, grpc.StatusCode.DEADLINE_EXCEEDED}


def path_of(method: MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


async def call(gateway: Gateway, method: MethodDescriptor, data: bytes) -> tuple[grpc.StatusCode, str]:
    """Send data as the request (the only one, for client streams); a stream is read up to its first message."""
    path = path_of(method)
    channel = gateway.channel
    if method.server_streaming:
        if method.client_streaming:
            stream: Any = channel.stream_stream(path)(iter([data]), timeout=2)
        else:
            # A watch of something that never changes sends nothing: its deadline ends it.
            stream = channel.unary_stream(path)(data, timeout=0.25)
        try:
            async for _ in stream:
                stream.cancel()
                break
        except grpc.aio.AioRpcError as exc:
            return exc.code(), exc.details() or ""
        code = await stream.code()
        return code, await stream.details()
    try:
        if method.client_streaming:
            await channel.stream_unary(path)(iter([data]), timeout=10)
        else:
            await channel.unary_unary(path)(data, timeout=10)
    except grpc.aio.AioRpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


@pytest.mark.parametrize("method", METHODS, ids=path_of)
async def test_undecodable_bytes_are_invalid_argument(
    gateway: Gateway, gateway_log: LogProblems, method: MethodDescriptor
) -> None:
    for data in UNDECODABLE:
        code, details = await call(gateway, method, data)
        assert code == grpc.StatusCode.INVALID_ARGUMENT, (data, code, details)
        assert details.startswith(
            f"cannot decode the request: Error parsing message with type '{method.input_type.full_name}'"
        )
    assert gateway_log() == []


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


@st.composite
def wire_fields(draw: st.DrawFn, depth: int = 0) -> bytes:
    """Protobuf wire format with arbitrary field numbers, wire types and values: it decodes, as whatever message,
    into fields of the right type with odd values (enum numbers no value has, times past year 9999, bad UTF-8
    that stops the decoding) or into unknown fields."""
    out = bytearray()
    for _ in range(draw(st.integers(0, 4))):
        number = draw(st.integers(1, 20))
        kind = draw(st.sampled_from(["varint", "len", "fixed64", "fixed32"]))
        if kind == "varint":
            out += varint(number << 3) + varint(draw(st.integers(0, (1 << 64) - 1)))
        elif kind == "fixed64":
            out += varint(number << 3 | 1) + draw(st.binary(min_size=8, max_size=8))
        elif kind == "fixed32":
            out += varint(number << 3 | 5) + draw(st.binary(min_size=4, max_size=4))
        else:
            inner = draw(
                st.one_of(st.binary(max_size=12), st.text(max_size=12).map(str.encode))
                if depth >= 2
                else st.one_of(st.binary(max_size=12), st.text(max_size=12).map(str.encode), wire_fields(depth + 1))
            )
            out += varint(number << 3 | 2) + varint(len(inner)) + inner
    return bytes(out)


@given(
    method=st.sampled_from(METHODS),
    data=st.one_of(st.binary(max_size=40), wire_fields()),
)
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
async def test_any_bytes_get_a_proper_answer(
    gateway: Gateway, gateway_log: LogProblems, method: MethodDescriptor, data: bytes
) -> None:
    code, details = await call(gateway, method, data)
    allowed = PROPER | STREAM_ENDS if method.server_streaming else PROPER
    assert code in allowed, (path_of(method), data, code, details)
    assert gateway_log() == []
