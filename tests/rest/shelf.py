"""The resttest.v1.Shelf service of protos/shelf.proto: compiled at test time, served by echoing handlers, and
put behind a REST shim of its own. It exercises the google.api.http features our own protos do not use."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import grpc
from google.api import httpbody_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, json_format
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass
from google.rpc import code_pb2, error_details_pb2
from grpc_status import rpc_status
from grpc_tools import protoc

from gateway.status import build_status

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
SERVICE = "resttest.v1.Shelf"


@functools.cache
def shelf_service(out_dir: str) -> ServiceDescriptor:
    """Compile shelf.proto (with its imports) and add the files the default pool lacks; once per process."""
    out = Path(out_dir) / "shelf.pb"
    include = str(resources.files("grpc_tools") / "_proto")
    args = [
        "protoc",
        f"-I{HERE / 'protos'}",
        f"-I{ROOT / 'third_party' / 'proto'}",
        f"-I{include}",
        "--include_imports",
        f"--descriptor_set_out={out}",
        "shelf.proto",
    ]
    if protoc.main(args) != 0:
        raise RuntimeError("protoc failed on shelf.proto")
    pool = descriptor_pool.Default()
    for file in descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes()).file:
        try:
            pool.FindFileByName(file.name)
        except KeyError:
            pool.Add(file)
    return pool.FindServiceByName(SERVICE)


def _cls(descriptor: Any) -> type[Message]:
    cls: type[Message] = GetMessageClass(descriptor)
    return cls


async def _echo(request: Message, context: Any) -> Message:
    # An "echo-me" metadata value comes back as "echoed" header metadata (for the outgoing header mapping).
    echo = dict(context.invocation_metadata() or ()).get("echo-me")
    if echo is not None:
        await context.send_initial_metadata((("echoed", echo), ("echoed-bin", b"\x00\xff")))
    return request


async def _download(request: Any, context: Any) -> Message:
    body: Message = httpbody_pb2.HttpBody(content_type="application/pdf", data=b"%PDF-1.7 " + request.id.encode())
    return body


async def _fail(request: Any, context: Any) -> Message:
    detail = error_details_pb2.BadRequest(
        field_violations=[error_details_pb2.BadRequest.FieldViolation(field=request.id, description="no good")]
    )
    await context.abort_with_status(rpc_status.to_status(build_status(request.i32, f"failed: {request.id}", detail)))
    raise AssertionError("abort_with_status returned")


async def _count(request: Any, context: Any) -> AsyncIterator[Message]:
    service = descriptor_pool.Default().FindServiceByName(SERVICE)
    response = _cls(service.methods_by_name["Count"].output_type)
    first = request.after_sequence + 1
    for sequence in range(first, first + request.i32):
        yield json_format.ParseDict({"tick": {"sequence": sequence, "id": request.id}}, response())
    if request.flag:
        await context.abort_with_status(
            rpc_status.to_status(build_status(code_pb2.DATA_LOSS, f"lost after {first + request.i32 - 1}"))
        )


def add_shelf(server: grpc.aio.Server, service: ServiceDescriptor) -> None:
    handlers: dict[str, grpc.RpcMethodHandler] = {}
    special: dict[str, Any] = {"Download": _download, "Fail": _fail, "Count": _count}
    for method in service.methods:
        request, response = _cls(method.input_type), _cls(method.output_type)
        behaviour = special.get(method.name, _echo)
        kind = grpc.unary_stream_rpc_method_handler if method.server_streaming else grpc.unary_unary_rpc_method_handler
        handlers[method.name] = kind(
            behaviour, request_deserializer=request.FromString, response_serializer=response.SerializeToString
        )
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service.full_name, handlers),))
