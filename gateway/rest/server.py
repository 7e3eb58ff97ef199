"""The REST shim: an aiohttp server that transcodes HTTP/JSON into calls on the gateway's own gRPC server.

Like grpc-gateway it is a reverse proxy over a loopback gRPC channel, so deadlines, metadata and statuses are
exactly the gRPC ones, and every route comes from the services' google.api.http options: there is no code per
RPC. It also serves /openapi.json and /docs, both generated from the same descriptors, and /metrics
(gateway.rest.metrics). Every answer that is not a success is a google.rpc.Status, including those to requests too
large, too slow or not HTTP at all (gateway.rest.connections).

Before any of that, a request must be one a browser could not have been tricked into sending: addressed to a host
this listener serves (gateway.rest.hosts), not another site's write (gateway.rest.origins), its body declared JSON
(gateway.rest.mediatypes); CORS preflights are answered for the configured origins only.

With TLS (syllabus.tls.GatewayCredentials) the shim serves HTTPS, and its loopback channel dials the gRPC server
with TLS as well, presenting the gateway's own certificate where clients must present one.
"""

from __future__ import annotations

import asyncio
import logging
import mimetypes
import re
import ssl
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from aiohttp import web
from google.protobuf.descriptor import Descriptor, ServiceDescriptor
from google.protobuf.descriptor_pool import Default as default_pool
from google.protobuf.message import Message
from google.rpc import code_pb2

from gateway.dashboard.assets import Dashboard
from gateway.rest import (
    connections,
    docs,
    errors,
    headers,
    hosts,
    mediatypes,
    openapi,
    origins,
    protojson,
    streams,
    transcode,
)
from gateway.rest.metrics import MetricsPage
from gateway.rest.routes import Resolved, Route, Router, RoutingError, routes_of
from gateway.services import MAX_MESSAGE
from gateway.status import build_status
from syllabus.metrics.requests import UNMATCHED, HttpInstruments
from syllabus.tls import GatewayCredentials

log = logging.getLogger(__name__)

# JSON is bigger than the protobuf it becomes, which must fit MAX_MESSAGE as well.
MAX_BODY = 16 << 20
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSIONS = {"application/pdf": ".pdf", "text/html": ".html", "text/markdown": ".md", "application/json": ".json"}
# Where a request's route template is noted for the request metrics.
_ROUTE = web.RequestKey("syllabus.route", str)

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


def _too_large(what: str, size: int, limit: int) -> errors.ClientError:
    # Not RESOURCE_EXHAUSTED (429, "try later"): the same request never fits.
    message = f"{what} is {size} bytes; the gateway takes at most {limit} ({limit >> 20} MiB)"
    return errors.ClientError(errors.bad_request(message), http=413)


class _TlsSite(web.TCPSite):
    """aiohttp's TCP site with a bound on the TLS handshake: the header timeout, not asyncio's 60 s. A connection
    reaches the shim (its header timer, its place among the bounded connections) only once the handshake is done,
    so a client that connects and never finishes it would otherwise hold a file descriptor for a minute."""

    __slots__ = ("_handshake_timeout",)

    def __init__(
        self, runner: web.BaseRunner, host: str, port: int, context: ssl.SSLContext, handshake_timeout: float
    ) -> None:
        super().__init__(runner, host, port, ssl_context=context)
        self._handshake_timeout = handshake_timeout

    async def start(self) -> None:
        # TCPSite.start, with ssl_handshake_timeout.
        await web.BaseSite.start(self)
        server = self._runner.server
        assert server is not None
        self._server = await asyncio.get_running_loop().create_server(
            server,
            self._host,
            self._port,
            ssl=self._ssl_context,
            backlog=self._backlog,
            ssl_handshake_timeout=self._handshake_timeout,
        )
        self._bound_port = self._server.sockets[0].getsockname()[1]


class RestGateway:
    def __init__(
        self,
        services: Sequence[ServiceDescriptor],
        target: str,
        *,
        title: str = "Syllabus API",
        header_timeout: float = 10.0,
        body_timeout: float = 30.0,
        max_connections: int = 1024,
        messages: Sequence[Descriptor] = (),
        cors_origins: Sequence[str] = (),
        allowed_hosts: Sequence[str] = (),
        tls: GatewayCredentials | None = None,
        metrics: MetricsPage | None = None,
        trace_url: str = "",
    ) -> None:
        """`messages`: the user's own types (SYLLABUS_DESCRIPTOR_SETS), described in /openapi.json too.
        `cors_origins`: origins (or `*`) whose pages may call the API from a browser (gateway.rest.origins);
        `allowed_hosts`: Host names served besides loopback ones (gateway.rest.hosts). `tls`: serve HTTPS, and
        reach a gRPC server that takes TLS only. `metrics`: the /metrics page (gateway.rest.metrics).
        `trace_url`: where the dashboard links a job's trace (GatewayConfig.trace_url)."""
        routes = routes_of(services)
        for route in routes:
            if route.method.client_streaming:
                log.warning("%s is client-streaming: the REST shim does not serve it", route.method.full_name)
        self.routes = [route for route in routes if not route.method.client_streaming]
        self.router = Router(self.routes)
        self._origins = origins.Origins(cors_origins, (route.http_method for route in self.routes))
        self._allowed_hosts = tuple(allowed_hosts)
        # Set for the address start() binds: the Host check depends on whether it is loopback.
        self._hosts = hosts.HostPolicy("", self._allowed_hosts)
        self._target = target
        self._tls = tls
        self._channel: grpc.aio.Channel | None = None
        self._calls: dict[str, Call] = {}
        self._active: set[Any] = set()
        self._closing = False
        self._runner: web.ServerRunner | None = None
        self._header_timeout = header_timeout
        self._body_timeout = body_timeout
        self._max_connections = max_connections
        self.server: connections.Server | None = None
        self.spec = openapi.build(self.routes, title=title, messages=messages)
        self._spec_body = protojson.dumps(self.spec)
        self._docs_body = docs.render(self.spec).encode()
        self._dashboard = Dashboard(trace_url=trace_url)
        self._sequence = {r.grpc_path: streams.sequence_path(r.method.output_type) for r in self.routes}
        self._metrics = metrics
        self._measured = HttpInstruments()

    async def start(self, addr: str) -> str:
        """Listen on host:port (port 0 picks one); returns the address actually bound."""
        # Answers come from this process's own server: its limit on what it sends is the one that counts.
        options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", -1)]
        ssl_context: ssl.SSLContext | None = None
        if self._tls is None:
            self._channel = grpc.aio.insecure_channel(self._target, options=options)
        else:
            credentials, names = self._tls.loopback()
            self._channel = grpc.aio.secure_channel(self._target, credentials, options=options + names)
            ssl_context = self._tls.http()
        for route in self.routes:
            self._calls.setdefault(route.grpc_path, self._method_call(route))
        # Every request goes to _handle: routing is ours. A client that goes away cancels its handler, and with
        # it the gRPC call.
        self.server = connections.Server(
            self._handle,
            max_connections=connections.connection_bound(self._max_connections),
            header_timeout=self._header_timeout,
            access_log=None,
        )
        self._runner = web.ServerRunner(self.server, shutdown_timeout=5.0)
        await self._runner.setup()
        host, _, port = addr.rpartition(":")
        self._hosts = hosts.HostPolicy(host, self._allowed_hosts)
        site: web.TCPSite
        if ssl_context is None:
            site = web.TCPSite(self._runner, host.strip("[]"), int(port))
        else:
            site = _TlsSite(self._runner, host.strip("[]"), int(port), ssl_context, self._header_timeout)
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

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        started = time.perf_counter()
        response = await self._respond(request)
        route = request.get(_ROUTE, UNMATCHED)
        self._measured.answered(route, request.method, response.status, time.perf_counter() - started)
        return response

    async def _respond(self, request: web.BaseRequest) -> web.StreamResponse:
        misdirected = self._hosts.refusal(request.headers.getall("Host", []))
        if misdirected is not None:
            return errors.response(misdirected.status, http=misdirected.http)
        if self._origins.is_preflight(request):
            return self._origins.preflight(request)
        response = await self._answer(request)
        if not response.prepared:
            self._origins.decorate(request, response.headers)
        return response

    async def _answer(self, request: web.BaseRequest) -> web.StreamResponse:
        refusal = self._origins.cross_origin_refusal(request) or mediatypes.refusal(request)
        if refusal is not None:
            return errors.response(refusal.status, http=refusal.http)
        path = request.rel_url.raw_path
        if request.method == "GET" and path == "/metrics" and self._metrics is not None:
            request[_ROUTE] = path
            return await self._metrics.answer(request)
        if request.method == "GET" and path in ("/openapi.json", "/docs", "/docs/"):
            request[_ROUTE] = path
        if request.method == "GET" and path == "/openapi.json":
            return web.Response(body=self._spec_body, content_type="application/json")
        if request.method == "GET" and path in ("/docs", "/docs/"):
            return web.Response(body=self._docs_body, content_type="text/html", charset="utf-8")
        if request.method == "GET" and self._dashboard.serves(path):
            # The dashboard's files are one route for the request metrics: their names are not worth a series each.
            request[_ROUTE] = "/dashboard"
            page = self._dashboard.response(path)
            return page if page is not None else errors.response(errors.routing_status(404))
        if self._closing:
            return errors.response(build_status(code_pb2.UNAVAILABLE, "the gateway is shutting down"))
        resolved = self.router.resolve(request.method, path)
        if isinstance(resolved, RoutingError):
            status = errors.routing_status(resolved.http_status)
            if resolved.http_status == 405:
                # grpc-gateway sends Unimplemented's 501; but a method the route does not take is the client's
                # mistake, so the HTTP status says so (the body keeps grpc-gateway's Status).
                allow = {"Allow": ", ".join(self.router.allowed_methods(path))}
                return errors.response(status, allow, http=405)
            return errors.response(status)
        request[_ROUTE] = resolved.route.template.source
        try:
            metadata = headers.incoming_metadata(request)
            timeout = headers.timeout_of(request)
            body = await self._body(request) if resolved.route.body else b""
            message = self._request_message(request, resolved, body)
            size = message.ByteSize()
            if size > MAX_MESSAGE:
                raise _too_large("the request as protobuf", size, MAX_MESSAGE)
        except errors.ClientError as exc:
            return await self._refuse(request, exc)
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

    async def _refuse(self, request: web.BaseRequest, refusal: errors.ClientError) -> web.StreamResponse:
        response = errors.response(refusal.status, http=refusal.http)
        if refusal.http == 413:
            # The rest of the body is not wanted: aiohttp reads and drops what still comes for a while (closing on
            # unread data would reset the connection, and the client might never see this answer), then closes.
            response.force_close()
        elif refusal.http == 408:
            # The client stopped sending: waiting on for the rest of its body would only hold the connection.
            response.force_close()
            self._origins.decorate(request, response.headers)
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()
        return response

    async def _body(self, request: web.BaseRequest) -> bytes:
        """The request body, read with a bound on its size and on the wait for each part of it."""
        length = request.content_length
        if length is not None and length > MAX_BODY:
            raise _too_large("the request body", length, MAX_BODY)
        expect = request.headers.get("Expect")
        if expect is not None:
            if expect.lower() != "100-continue":
                raise errors.ClientError(errors.bad_request(f"unsupported expectation: Expect: {expect}"), http=417)
            if request.version >= (1, 1):
                # The request got this far (route, headers): the client may send its body.
                await request.writer.write(_CONTINUE)
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                async with asyncio.timeout(self._body_timeout):
                    chunk = await request.content.readany()
            except TimeoutError:
                message = f"the request body stopped arriving: nothing came for {self._body_timeout:g} s"
                raise errors.ClientError(build_status(code_pb2.DEADLINE_EXCEEDED, message), http=408) from None
            except web.RequestPayloadError as exc:
                raise errors.ClientError(errors.bad_request(f"malformed request body: {exc}")) from None
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_BODY:
                raise _too_large("the request body", size, MAX_BODY)
            chunks.append(chunk)

    def _request_message(self, request: web.BaseRequest, resolved: Resolved, body: bytes) -> Message:
        route = resolved.route
        message = protojson.message_class(route.method.input_type)()
        transcode.build_request(route, message, resolved.params, request.rel_url.query.items(), body)
        last_event = request.headers.get("Last-Event-ID")
        resume = streams.resume_field(route.method.input_type) if route.server_streaming else None
        if last_event is not None and resume is not None:
            try:
                sequence = streams.sequence_number(resume, last_event)
            except ValueError as exc:
                raise transcode.BadInput(
                    errors.bad_request(
                        "Last-Event-ID must be the id of an event of this stream",
                        [(resume.name, f"Last-Event-ID {last_event!r} {exc}")],
                    )
                ) from None
            setattr(message, resume.name, sequence)
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

    async def _stream(self, request: web.BaseRequest, resolved: Resolved, call: Any) -> web.StreamResponse:
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
        self._origins.decorate(request, response.headers)
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
