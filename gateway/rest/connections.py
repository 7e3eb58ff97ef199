"""The REST shim's HTTP connections: aiohttp's low-level server, with what aiohttp does not do for us.

- Requests aiohttp's own parser refuses (a bad request line, header or chunk, too many or too long headers)
  aiohttp answers in plain text, logging each with a traceback. `RequestHandler.handle_error` is the one place
  that answer is made, so a subclass overrides it: a google.rpc.Status, and a debug line instead of a traceback.
  The same subclass keeps a body that turns out malformed only after the answer (aiohttp reads what is left of
  it) from being logged as a failure of the server.
- Open connections are bounded. Over the bound a new connection is answered `503` UNAVAILABLE at once and closed,
  as nginx's `limit_conn` answers, instead of waiting unanswered in the listen backlog, and its close lingers as
  every answered one does (below); while MAX_REFUSALS of those linger, further ones are closed at once, unanswered.
- The bound must be reached before the process runs out of file descriptors (then accept() fails, and NATS,
  gRPC and the store with it): the open-file limit is raised as far as allowed for it, as Go's runtime does at
  start, and the bound lowered, with a warning, if that is not far enough.
- Closing after an answer lingers, as nginx's `lingering_close`: the answer is sent, the connection half-closed,
  and what the client still sends read and dropped until it closes (or the header timeout ends). Closing a socket
  with unread input makes the kernel reset the connection, and a reset discards what the client has not read
  yet: the 400 to a bad header, sent before the request's body was read, would be lost under it. A connection
  closed unanswered (idle, or stopped in its headers) has no answer to lose, and is closed at once.
- The header timeout is aiohttp's keep-alive timer: it starts when a connection opens (and again when an answer
  ends) and closes the connection if no whole request has arrived by then, so a client that sends nothing, or
  stops half-way through its headers, is closed. It does not run while a request is being answered: a long
  stream is never cut by it.
"""

from __future__ import annotations

import asyncio
import logging
import resource
from http import HTTPStatus
from typing import Any, cast

from aiohttp import web, web_protocol
from aiohttp.http_exceptions import LineTooLong
from google.rpc import code_pb2

from gateway.rest import errors
from gateway.status import build_status

log = logging.getLogger(__name__)
_TOO_MANY_HEADERS = "Too many headers"
# Connections over the bound that may wait at once for their client to close after the 503; past that, a new
# one is closed without an answer, so a flood of them cannot use up file descriptors either.
MAX_REFUSALS = 64
# File descriptors the gateway may need besides HTTP connections: those refusals, gRPC, NATS, the store, logs.
RESERVED_FILES = MAX_REFUSALS + 128


def connection_bound(wanted: int) -> int:
    """How many HTTP connections the process can hold open: wanted, once the open-file limit allows it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = wanted + RESERVED_FILES
    if soft == resource.RLIM_INFINITY or soft >= need:
        return wanted
    try:
        raised = need if hard == resource.RLIM_INFINITY else min(need, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (raised, hard))
        soft = raised
    except (ValueError, OSError):
        pass
    if soft >= need:
        return wanted
    usable = max(1, soft - RESERVED_FILES)
    log.warning(
        "SYLLABUS_HTTP_MAX_CONNECTIONS=%d, but this process may open only %d files: at most %d HTTP connections",
        wanted,
        soft,
        usable,
    )
    return usable


class _LingeringTransport:
    """A connection's transport whose close() half-closes and waits for the client to close (see the docstring)."""

    def __init__(self, transport: asyncio.Transport, server: Server) -> None:
        self._transport = transport
        self._server = server
        self._closing = False
        self._answered = False
        self._abort: asyncio.TimerHandle | None = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._answered = True
        self._transport.write(data)

    def writelines(self, data: Any) -> None:
        self._answered = True
        self._transport.writelines(data)

    def is_closing(self) -> bool:
        return self._closing or self._transport.is_closing()

    def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        transport = self._transport
        if not self._answered or self._server.shutting_down or transport.is_closing() or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        # aiohttp pauses reading while requests queue up; the client's close can only be seen by reading.
        transport.resume_reading()
        self._server.lingering.add(self)
        self._abort = asyncio.get_running_loop().call_later(self._server.header_timeout, self.abort)

    def abort(self) -> None:
        self._closing = True
        self._transport.abort()

    def ended(self) -> None:
        if self._abort is not None:
            self._abort.cancel()
        self._server.lingering.discard(self)


class _Connection(web_protocol.RequestHandler):
    """One HTTP connection; tells its server when it ends, for the connection bound."""

    def __init__(self, server: Server, **kwargs: Any) -> None:
        super().__init__(server, **kwargs)
        self._server = server
        self._counted = True
        self._lingering: _LingeringTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # Under uvloop a transport is no asyncio.Transport subclass, though it has all of its methods.
        self._lingering = _LingeringTransport(cast(asyncio.Transport, transport), self._server)
        # aiohttp only calls the transport's methods, which the wrapper forwards.
        super().connection_made(cast(asyncio.Transport, self._lingering))

    def data_received(self, data: bytes) -> None:
        if self._lingering is not None and self._lingering.is_closing():
            return
        super().data_received(data)

    def connection_lost(self, exc: BaseException | None) -> None:
        super().connection_lost(exc)
        if self._lingering is not None:
            self._lingering.ended()
        if self._counted:
            self._counted = False
            self._server.connection_ended()

    def log_exception(self, *args: Any, **kw: Any) -> None:
        # After answering, aiohttp reads and drops what is left of a body the handler did not read; if that part
        # is malformed (bad chunking, bad compression) the read raises, and aiohttp logs it as its own failure.
        # It is the client's, and there is no one left to answer.
        failure = kw.get("exc_info")
        if isinstance(failure, web_protocol.RequestPayloadError):
            log.debug("malformed request body, after the answer: %s", failure)
            return
        super().log_exception(*args, **kw)

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:
            # The shim's own failure (an exception out of its handler), not the client's: worth a traceback.
            log.error("REST request %s %s failed", request.method, request.rel_url, exc_info=exc)
            code = code_pb2.DEADLINE_EXCEEDED if status == 504 else code_pb2.INTERNAL
            value = build_status(code, "internal error; the gateway log has the details")
        else:
            reason = message or HTTPStatus(status).phrase
            log.debug("malformed HTTP request from %s: %s", request.remote, reason)
            value = errors.bad_request(f"malformed HTTP request: {reason}")
            if isinstance(exc, LineTooLong) or reason.startswith(_TOO_MANY_HEADERS):
                status = HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE
        if request.writer.output_size > 0:
            # As aiohttp's own handler: part of an answer went out, so no other answer can follow.
            raise ConnectionError("the answer has started; no error answer can follow it")
        response = errors.response(value, http=status)
        response.force_close()
        return response


class _Refusal(asyncio.Protocol):
    """A connection over the bound: the 503 answer at once, then the lingering close every answer ends with."""

    def __init__(self, server: Server) -> None:
        self._server = server
        self._lingering: _LingeringTransport | None = None

    def connection_made(self, base: asyncio.BaseTransport) -> None:
        transport = cast(asyncio.Transport, base)
        if len(self._server.refusals) >= MAX_REFUSALS:
            transport.abort()
            return
        self._lingering = _LingeringTransport(transport, self._server)
        self._server.refusals.add(self._lingering)
        self._lingering.write(self._server.refusal)
        self._lingering.close()

    def data_received(self, data: bytes) -> None:
        pass

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        if self._lingering is not None:
            self._lingering.ended()
            self._server.refusals.discard(self._lingering)


class Server(web.Server):
    """aiohttp's low-level server with the connection handler above and a bound on open connections."""

    def __init__(self, handler: Any, *, max_connections: int, header_timeout: float, **handler_args: Any) -> None:
        super().__init__(handler, handler_cancellation=True)
        self.max_connections = max_connections
        self.header_timeout = header_timeout
        self.refusals: set[_LingeringTransport] = set()
        self.lingering: set[_LingeringTransport] = set()
        self.shutting_down = False
        self._handler_args = {"keepalive_timeout": header_timeout, **handler_args}
        self._open = 0
        self._refusing = False
        body = errors.body_of(
            build_status(
                code_pb2.UNAVAILABLE,
                f"the gateway has {max_connections} HTTP connections open, as many as it takes; retry shortly",
            )
        )
        self.refusal = (
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\nRetry-After: 1\r\nConnection: close\r\n\r\n%s" % (len(body), body)
        )

    @property
    def open_connections(self) -> int:
        return self._open

    # The event loop is the only caller and takes any protocol, so this may return the refusal instead.
    def __call__(self) -> asyncio.Protocol:  # type: ignore[override]
        if self._open >= self.max_connections:
            if not self._refusing:
                self._refusing = True
                log.warning(
                    "%d HTTP connections are open, the most SYLLABUS_HTTP_MAX_CONNECTIONS allows: "
                    "new ones are answered 503 until some close",
                    self._open,
                )
            return _Refusal(self)
        if self._refusing:
            self._refusing = False
            log.info("HTTP connections are below SYLLABUS_HTTP_MAX_CONNECTIONS again")
        # Counted from here, not from connection_made: the loop accepts a burst of connections before any of
        # them is made, and each must see the ones before it.
        self._open += 1
        return _Connection(self, loop=asyncio.get_running_loop(), **self._handler_args)

    def connection_ended(self) -> None:
        self._open -= 1

    def pre_shutdown(self) -> None:
        self.shutting_down = True
        # Refusals among them.
        for lingering in list(self.lingering):
            lingering.abort()
        self.lingering.clear()
        super().pre_shutdown()
