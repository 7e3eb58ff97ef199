"""Telling an outage from a failure: which exceptions mean that NATS, the store or Redis cannot be reached.

A job whose attempt meets an outage did nothing wrong, so the worker hands it back or holds its outcome until
the dependency answers, without spending an attempt. Anything else is the job's (or the code's) own failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import Awaitable, Callable, Collection
from typing import TypeVar

import nats.errors
import nats.js.errors

from syllabus.errors import BrokerUnavailable, StoreUnavailable
from syllabus.publisher import NoStreamError

T = TypeVar("T")

NATS = "NATS"
STORE = "the store"
REDIS = "Redis"

_NATS_ERRORS: tuple[type[BaseException], ...] = (
    nats.errors.ConnectionClosedError,
    nats.errors.ConnectionReconnectingError,
    nats.errors.ConnectionDrainingError,
    nats.errors.NoServersError,
    nats.errors.StaleConnectionError,
    nats.errors.OutboundBufferLimitError,
    nats.errors.FlushTimeoutError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
    nats.js.errors.ServiceUnavailableError,
    # JetStream's 500: the server could not do what was asked (its disk full, say), through no fault of the request.
    nats.js.errors.ServerError,
    nats.js.errors.NoStreamResponseError,
    NoStreamError,
    BrokerUnavailable,
)
# Outages of the libraries a process may not use at all (the embedded store needs no pymongo, the gateway no
# Redis), by module and class name: what a process never imported cannot have been raised in it, and importing
# them only to ask would cost every process their memory (a gateway holds ~13 MB less without both).
_STORE_ERRORS = ("pymongo.errors", ("ConnectionFailure",))
_REDIS_ERRORS = ("redis.exceptions", ("ConnectionError", "TimeoutError"))


def _raised_by(exc: BaseException, library: tuple[str, tuple[str, ...]]) -> bool:
    module = sys.modules.get(library[0])
    return module is not None and isinstance(exc, tuple(getattr(module, name) for name in library[1]))


# Seconds between tries of a step while what it needs is unreachable: doubling up to the max.
RETRY_FIRST = 0.25
RETRY_MAX = 5.0


def unreachable(exc: BaseException) -> str | None:
    """The dependency `exc` says is out of reach (NATS, STORE or REDIS), or None when it is no outage.

    Looks through the exception's causes too: a library often wraps the connection error it met.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, _NATS_ERRORS):
            return NATS
        if isinstance(current, StoreUnavailable) or _raised_by(current, _STORE_ERRORS):
            return STORE
        if _raised_by(current, _REDIS_ERRORS):
            return REDIS
        # Only explicit causes (raise ... from): an error merely raised while handling another is its own.
        current = current.__cause__
    return None


def describe(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


class OutageLog:
    """One warning when a dependency stops answering and one line when it is back, however many jobs meet it."""

    def __init__(self, logger: logging.Logger, announced_elsewhere: Collection[str] = ()) -> None:
        self._log = logger
        # Dependencies whose loss another part warns about already (a NATS connection logs its own): said at INFO.
        self._quiet = frozenset(announced_elsewhere)
        self._down: set[str] = set()

    def down(self, dependency: str, exc: BaseException, consequence: str) -> None:
        if dependency in self._down:
            return
        self._down.add(dependency)
        level = logging.INFO if dependency in self._quiet else logging.WARNING
        self._log.log(level, "%s is unreachable (%s): %s", dependency, describe(exc), consequence)

    def up(self, dependency: str) -> None:
        if dependency in self._down:
            self._down.discard(dependency)
            self._log.info("%s answers again", dependency)

    def all_up(self) -> None:
        for dependency in sorted(self._down):
            self.up(dependency)


class GaveUp(Exception):
    """The step met only outages until its caller stopped waiting for them to end."""


async def until_reachable(
    step: Callable[[], Awaitable[T]], outage_log: OutageLog, consequence: str, give_up: asyncio.Event
) -> T:
    """`step`'s result, trying again (with a doubling pause) for as long as it meets an outage.

    Any other error is raised at once. Raises GaveUp once `give_up` is set while the outage lasts.
    """
    delay = RETRY_FIRST
    while True:
        try:
            result = await step()
        except Exception as exc:
            dependency = unreachable(exc)
            if dependency is None:
                raise
            outage_log.down(dependency, exc, consequence)
            if give_up.is_set():
                raise GaveUp(describe(exc)) from exc
            with contextlib.suppress(TimeoutError):
                # The pause between tries, cut short by the caller giving up.
                await asyncio.wait_for(give_up.wait(), delay)
            delay = min(delay * 2, RETRY_MAX)
        else:
            if delay > RETRY_FIRST:
                outage_log.all_up()
            return result
