"""The REST shim: an aiohttp server that transcodes HTTP/JSON into calls on the gateway's own gRPC server.

Like grpc-gateway it is a reverse proxy over a loopback gRPC channel, so deadlines, metadata and statuses are
exactly the gRPC ones, and every route comes from the services' google.api.http options: there is no code per
RPC. It also serves /openapi.json and /docs, both generated from the same descriptors.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.descriptor import ServiceDescriptor
from google.protobuf.descriptor_pool import Default as default_pool
from google.protobuf.message import Message
from google.rpc import code_pb2

from gateway.rest import docs, errors, headers, openapi, protojson, streams, transcode
from gateway.rest.routes import Resolved, Route, Router, RoutingError, routes_of
from gateway.status import build_status

log = logging.getLogger(__name__)

# JSON is bigger than the protobuf it becomes; the gRPC server refuses messages over 4 MiB anyway.
MAX_BODY = 16 << 20
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSIONS = {"application/pdf": ".pdf", "text/html": ".html", "text/markdown": ".md", "application/json": ".json"}

Call = Callable[..., Any]


def services_named(names: Sequence[str]) -> list[ServiceDescriptor]:
    """Service descriptors by full name, from the default pool (the generated *_pb2 modules register them)."""
    pool = default_pool()
    return [pool.FindServiceByName(name) for name in names]


def loopback_target(grpc_addr: str, port: int) -> str:
    """Where this process reaches its own gRPC server: a wildcard address is dialled on loopback."""
    host = grpc_addr.rpartition(":")[0]
    if host in ("", "0.0.0.0", "[::]", "::"):
        host = "127.0.0.1" if host in ("", "0.0.0.0") else "[::1]"
    return f"{host}:{port}"


def _filename(route: Route, params: dict[str, str], content_type: str) -> str:
    """`course-<id>.pdf` for /v1/courses/{course_id}/document: the collection before the last variable."""
    stem = route.method.name.lower()
    segments = route.template.segments
    variables = route.template.variables
    if variables:
        last = variables[-1]
        before = segments[last.start - 1] if last.start > 0 else None
        noun = before.literal if before is not None and before.kind == "literal" else last.field_path[-1]
        noun = noun[:-1] if noun.endswith("s") and len(noun) > 1 else noun
        stem = f"{noun}-{params.get(last.name, '')}"
    media = content_type.split(";")[0].strip().lower()
    extension = _EXTENSIONS.get(media) or mimetypes.guess_extension(media) or ".bin"
    return _SAFE_NAME.sub("_", stem).strip("_") + extension


class RestGateway:
    def __init__(self, services: Sequence[ServiceDescriptor], target: str, *, title: str = "Syllabus API") -> None:
        routes = routes_of(services)
        for route in routes:
            if route.method.client_streaming:
                log.warning("%s is client-streaming: the REST shim does not serve it", route.method.full_name)
        self.routes = [route for route in routes if not route.method.client_streaming]
        self.router = Router(self.routes)
        self._target = target
        self._channel: grpc.aio.Channel | None = None
        self._calls: dict[str, Call] = {}
        self._active: set[Any] = set()
        self._closing = False
        self._runner: web.AppRunner | None = None
        self.spec = openapi.build(self.routes, title=title)
        self._spec_body = protojson.dumps(self.spec)
        self._docs_body = docs.render(self.spec).encode()
        self._sequence = {r.grpc_path: streams.sequence_path(r.method.output_type) for r in self.routes}

    def app(self) -> web.Application:
        # Every request goes to _handle, before (and whatever) aiohttp's own router would say: routing is ours.
        @web.middleware
        async def everything(request: web.Request, handler: Any) -> web.StreamResponse:
            return await self._handle(request)

        return web.Application(client_max_size=MAX_BODY, middlewares=[everything])

    async def start(self, addr: str) -> str:
        """Listen on host:port (port 0 picks one); returns the address actually bound."""
        self._channel = grpc.aio.insecure_channel(self._target)
        for route in self.routes:
            self._calls.setdefault(route.grpc_path, self._method_call(route))
        # handler_cancellation: a client that goes away cancels its handler, and with it the gRPC call.
        self._runner = web.AppRunner(self.app(), handler_cancellation=True, access_log=None, shutdown_timeout=5.0)
        await self._runner.setup()
        host, _, port = addr.rpartition(":")
        site = web.TCPSite(self._runner, host.strip("[]"), int(port))
        await site.start()
        bound = self._runner.addresses[0]
        return f"{host}:{bound[1]}"

    async def stop(self) -> None:
        """Stop listening, end open streams (their clients get an UNAVAILABLE error line), close the channel."""
        self._closing = True
        for call in list(self._active):
            call.cancel()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        channel, self._channel = self._channel, None
        if channel is not None:
            await channel.close()

    def _method_call(self, route: Route) -> Call:
        assert self._channel is not None
        request = protojson.message_class(route.method.input_type)
        response = protojson.message_class(route.method.output_type)
        factory = self._channel.unary_stream if route.server_streaming else self._channel.unary_unary
        call: Call = factory(
            route.grpc_path, request_serializer=request.SerializeToString, response_deserializer=response.FromString
        )
        return call

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        if request.method == "GET" and path == "/openapi.json":
            return web.Response(body=self._spec_body, content_type="application/json")
        if request.method == "GET" and path in ("/docs", "/docs/"):
            return web.Response(body=self._docs_body, content_type="text/html", charset="utf-8")
        if self._closing:
            return errors.response(build_status(code_pb2.UNAVAILABLE, "the gateway is shutting down"))
        resolved = self.router.resolve(request.method, path)
        if isinstance(resolved, RoutingError):
            return errors.response(errors.routing_status(resolved.http_status))
        try:
            metadata = headers.incoming_metadata(request)
            timeout = headers.timeout_of(request)
            message = await self._request_message(request, resolved)
        except (transcode.BadInput, headers.BadHeader) as exc:
            return errors.response(exc.status)
        except web.HTTPRequestEntityTooLarge:
            return errors.response(errors.bad_request(f"the request body is larger than {MAX_BODY} bytes"))
        if timeout is not None and timeout <= 0:
            # A deadline already past: Go's gRPC fails such a call before sending it, and so does the shim.
            return errors.response(build_status(code_pb2.DEADLINE_EXCEEDED, "context deadline exceeded"))
        call = self._calls[resolved.route.grpc_path](message, metadata=metadata, timeout=timeout)
        self._active.add(call)
        try:
            if resolved.route.server_streaming:
                return await self._stream(request, resolved, call)
            return await self._unary(resolved, call)
        finally:
            self._active.discard(call)
            call.cancel()

    async def _request_message(self, request: web.Request, resolved: Resolved) -> Message:
        route = resolved.route
        message = protojson.message_class(route.method.input_type)()
        body = await request.read() if route.body else b""
        transcode.build_request(route, message, resolved.params, request.rel_url.query.items(), body)
        last_event = request.headers.get("Last-Event-ID")
        resume = streams.resume_field(route.method.input_type) if route.server_streaming else None
        if last_event is not None and resume is not None:
            if not last_event.strip().isdigit():
                raise transcode.BadInput(
                    errors.bad_request(
                        "Last-Event-ID must be the id of an event of this stream",
                        [(resume.name, f"Last-Event-ID {last_event!r} is not a sequence number")],
                    )
                )
            setattr(message, resume.name, int(last_event))
        return message

    async def _unary(self, resolved: Resolved, call: Any) -> web.StreamResponse:
        route = resolved.route
        try:
            reply: Message = await call
        except grpc.aio.AioRpcError as exc:
            return errors.response(errors.from_rpc_error(exc), headers.outgoing(exc.initial_metadata()))
        initial = await call.initial_metadata()
        out = headers.outgoing(initial)
        if route.http_body_response:
            content_type = getattr(reply, "content_type", "") or "application/octet-stream"
            # A server may name the file itself (content-disposition header metadata); else it is derived.
            disposition = next((v for k, v in initial or () if k == "content-disposition"), None)
            if not isinstance(disposition, str):
                disposition = f'attachment; filename="{_filename(route, resolved.params, content_type)}"'
            out |= {"Content-Type": content_type, "Content-Disposition": disposition}
            return web.Response(body=bytes(getattr(reply, "data", b"")), headers=out)
        value: Any = protojson.to_dict(reply)
        if route.response_body:
            field = route.method.output_type.fields_by_name[route.response_body]
            value = value.get(field.json_name, {} if field.message_type and not field.is_repeated else None)
        out["Content-Type"] = "application/json"
        return web.Response(body=protojson.dumps(value), headers=out)

    async def _stream(self, request: web.Request, resolved: Resolved, call: Any) -> web.StreamResponse:
        sse = streams.wants_sse(request.headers.get("Accept", ""))
        sequence = self._sequence[resolved.route.grpc_path]
        messages = call.__aiter__()
        # Like grpc-gateway, the response starts with the first message: a stream that fails before it answers
        # as a unary call does, with the status's own HTTP code.
        try:
            first: Message = await messages.__anext__()
        except StopAsyncIteration:
            return web.Response(body=streams.sse_end() if sse else b"", content_type=self._stream_type(sse))
        except grpc.aio.AioRpcError as exc:
            return errors.response(errors.from_rpc_error(exc), headers.outgoing(exc.initial_metadata()))
        except asyncio.CancelledError:
            if self._shutting_down():
                return errors.response(build_status(code_pb2.UNAVAILABLE, "the gateway is shutting down"))
            raise
        out = headers.outgoing(await call.initial_metadata())
        out |= {"Content-Type": self._stream_type(sse), "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
        response = web.StreamResponse(status=200, headers=out)
        response.enable_chunked_encoding()
        await response.prepare(request)
        message: Message | None = first
        try:
            while message is not None:
                await response.write(streams.sse_result(message, sequence) if sse else streams.ndjson_result(message))
                message = await anext(messages, None)
            if sse:
                await response.write(streams.sse_end())
        except grpc.aio.AioRpcError as exc:
            failure = errors.from_rpc_error(exc)
            await response.write(streams.sse_error(failure) if sse else streams.ndjson_error(failure))
        except asyncio.CancelledError:
            if not self._shutting_down():
                raise
            failure = build_status(code_pb2.UNAVAILABLE, "the gateway is shutting down")
            await response.write(streams.sse_error(failure) if sse else streams.ndjson_error(failure))
        await response.write_eof()
        return response

    def _shutting_down(self) -> bool:
        """True when the CancelledError came from stop() cancelling the call, not from this task's cancellation."""
        task = asyncio.current_task()
        return self._closing and (task is None or task.cancelling() == 0)

    @staticmethod
    def _stream_type(sse: bool) -> str:
        return streams.SSE_CONTENT_TYPE if sse else streams.NDJSON_CONTENT_TYPE
