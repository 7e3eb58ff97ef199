"""Every method handler of the gateway, wrapped once when it is registered: request bytes which do not decode as
the method's message are INVALID_ARGUMENT, a request that breaks its proto rules is INVALID_ARGUMENT naming
the fields, and a failure of the method leaves as the google.rpc.Status it maps to (gateway.status).

grpc runs a method's request deserializer before any servicer code can catch what it raises, so a DecodeError
there ends the call as UNKNOWN and logs a traceback for every such call. Each method handler is therefore
registered with a deserializer that turns undecodable bytes into a marker value, and a behavior that refuses the
marker before the servicer sees it. grpc picks how to run a behavior from its kind (coroutine, async generator or
plain function), so each wrapper keeps the kind of the behavior it wraps.

Validation and error mapping are applied here rather than by decorating each servicer method, so a service
cannot forget them and its methods stay plain code (which mutation testing can mutate: mutmut leaves decorated
functions alone). The handlers are wrapped once, when the generated add_*_to_server functions register them
(`Registrar`), not by a server interceptor: grpc.aio runs an interceptor's Python code on every call, which the
benchmark showed as about a sixth more CPU per unary SubmitJob. Each wrapped behavior is also wrapped, once, to
count and time its calls (syllabus.metrics.requests).
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from typing import Any, NoReturn

import grpc
from google.protobuf.message import DecodeError, Message
from google.rpc import code_pb2

from gateway.auth import caller
from gateway.auth.access import WRITE_SCOPE, required_scope
from gateway.auth.gate import Gate, Refused
from gateway.status import abort, bad_request, build_status, status_for, violations_of
from syllabus.metrics.requests import measured
from syllabus.tracing.rpc import traced

log = logging.getLogger(__name__)
Behavior = Callable[..., Any]


class Undecodable:
    """What the wrapped deserializer returns for bytes that are not the method's message."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason

    def message(self) -> str:
        return f"cannot decode the request: {self.reason}"


def _decoder(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except DecodeError as exc:
            return Undecodable(str(exc))

    return decode


async def _refuse(request: Any, context: Any) -> None:
    if isinstance(request, Undecodable):
        log.debug("refused undecodable request: %s", request.reason)
        await abort(context, build_status(code_pb2.INVALID_ARGUMENT, request.message()))


def _refuse_sync(request: Any, context: Any) -> None:
    if isinstance(request, Undecodable):
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.message())


async def _admit(gate: Gate, context: Any, scope: str, method: str) -> None:
    try:
        caller.enter(await gate.admit(context, scope))
    except Refused as refused:
        await abort(context, refused.status)
    except Exception as exc:
        # A limit reached, or one that cannot be checked, has its status; anything else is a bug.
        await _fail(context, exc, method)


async def _validate(request: Message, context: Any) -> None:
    violations = violations_of(request)
    if violations:
        await abort(context, bad_request(violations))


async def _fail(context: Any, exc: Exception, method: str) -> NoReturn:
    status = status_for(exc)
    if status is None:
        log.exception("%s failed", method)
        status = build_status(code_pb2.INTERNAL, "internal error; the gateway log has the details")
    await abort(context, status)


def _unary_request(behavior: Behavior, method: str, gate: Gate | None, scope: str | None) -> Behavior:
    if inspect.isasyncgenfunction(behavior):

        async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
            if gate is not None and scope is not None:
                await _admit(gate, context, scope, method)
            await _refuse(request, context)
            await _validate(request, context)
            try:
                async for item in behavior(request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _fail(context, exc, method)

        return stream
    if inspect.iscoroutinefunction(behavior):

        async def call(request: Any, context: Any) -> Any:
            if gate is not None and scope is not None:
                await _admit(gate, context, scope, method)
            await _refuse(request, context)
            await _validate(request, context)
            try:
                return await behavior(request, context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _fail(context, exc, method)

        return call

    # A plain function runs on grpc's thread, where the gate (a coroutine) cannot: only the generated stubs of
    # methods a servicer leaves out are plain, and they answer UNIMPLEMENTED. A plain method that read its caller
    # would fail (no caller is set), never run as someone else.
    def plain(request: Any, context: Any) -> Any:
        _refuse_sync(request, context)
        return behavior(request, context)

    return plain


async def _checked(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
    async for request in requests:
        await _refuse(request, context)
        yield request


def _checked_sync(requests: Iterator[Any], context: Any) -> Iterator[Any]:
    for request in requests:
        _refuse_sync(request, context)
        yield request


def _streaming_request(behavior: Behavior, method: str, gate: Gate | None, scope: str | None) -> Behavior:
    if inspect.isasyncgenfunction(behavior):

        async def stream(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            if gate is not None and scope is not None:
                await _admit(gate, context, scope, method)
            async for item in behavior(_checked(requests, context), context):
                yield item

        return stream
    if inspect.iscoroutinefunction(behavior):

        async def call(requests: AsyncIterator[Any], context: Any) -> Any:
            if gate is not None and scope is not None:
                await _admit(gate, context, scope, method)
            return await behavior(_checked(requests, context), context)

        return call

    # A plain function runs on grpc's thread, where the gate (a coroutine) cannot: only the generated stubs of
    # methods a servicer leaves out are plain, and they answer UNIMPLEMENTED. A plain method that read its caller
    # would fail (no caller is set), never run as someone else.
    def plain(requests: Iterator[Any], context: Any) -> Any:
        return behavior(_checked_sync(requests, context), context)

    return plain


def checked(handler: grpc.RpcMethodHandler, method: str, gate: Gate | None = None) -> grpc.RpcMethodHandler:
    """`handler` of `method` (its full name): admitting only callers `gate` lets in with the scope the method
    declares (when a gate is given), refusing request bytes that do not decode as its message; with a single
    request, also refusing one that breaks its rules and mapping its failures."""
    if handler.request_deserializer is None:
        return handler
    scope = required_scope(method)
    decode = _decoder(handler.request_deserializer)
    serialize = handler.response_serializer
    if handler.request_streaming and handler.response_streaming:
        behavior = measured(_streaming_request(handler.stream_stream, method, gate, scope), method, timed=False)
        return grpc.stream_stream_rpc_method_handler(behavior, decode, serialize)
    if handler.request_streaming:
        behavior = measured(_streaming_request(handler.stream_unary, method, gate, scope), method, timed=False)
        return grpc.stream_unary_rpc_method_handler(behavior, decode, serialize)
    if handler.response_streaming:
        # A stream that writes (RunJob submits a job) is traced as a unary call is, so what it submits carries the
        # caller's trace; a watch is not (syllabus.tracing.rpc).
        stream = traced(handler.unary_stream, method) if scope == WRITE_SCOPE else handler.unary_stream
        behavior = measured(_unary_request(stream, method, gate, scope), method, timed=False)
        return grpc.unary_stream_rpc_method_handler(behavior, decode, serialize)
    behavior = measured(_unary_request(traced(handler.unary_unary, method), method, gate, scope), method, timed=True)
    return grpc.unary_unary_rpc_method_handler(behavior, decode, serialize)


class _CheckedGeneric(grpc.GenericRpcHandler):
    """A generic handler whose method handlers are checked, each wrapped once, the first time it is asked for."""

    def __init__(self, inner: grpc.GenericRpcHandler, gate: Gate | None) -> None:
        self._inner = inner
        self._gate = gate
        # Only methods the inner handler knows are kept, so unknown names sent by clients cannot grow it.
        self._checked: dict[str, grpc.RpcMethodHandler] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        method: str = handler_call_details.method
        found = self._checked.get(method)
        if found is None:
            handler = self._inner.service(handler_call_details)
            if handler is None:
                return None
            found = self._checked[method] = checked(handler, method, self._gate)
        return found


class Registrar:
    """What the generated add_*_to_server functions call on a server: forwarded to `server`, every method checked
    (and, with a gate, guarded)."""

    def __init__(self, server: grpc.aio.Server, gate: Gate | None = None) -> None:
        self._server = server
        self._gate = gate

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tuple(_CheckedGeneric(handler, self._gate) for handler in handlers))

    def add_registered_method_handlers(self, service_name: str, handlers: dict[str, grpc.RpcMethodHandler]) -> None:
        self._server.add_registered_method_handlers(
            service_name,
            {name: checked(handler, f"/{service_name}/{name}", self._gate) for name, handler in handlers.items()},
        )
