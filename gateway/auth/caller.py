"""The caller of the method being served: its tenant and scopes, set for the call's task by the gate (or why its
token proves no caller)."""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

ADMIN = "admin"


@dataclass(frozen=True, slots=True)
class Caller:
    tenant: str
    scopes: frozenset[str]
    # Who, for the log: a token's subject, `key:<id>`, or `anonymous` when authentication is off.
    subject: str

    def may(self, scope: str) -> bool:
        return scope in self.scopes or ADMIN in self.scopes


class InvalidToken(Exception):
    """A bearer token that does not prove who the caller is; the message says why, without the token."""


_CALLER: ContextVar[Caller] = ContextVar("syllabus_caller")


def enter(caller: Caller) -> None:
    """Makes `caller` the caller of the current task: grpc.aio serves each call in a task of its own."""
    _CALLER.set(caller)


def current() -> Caller:
    return _CALLER.get()


def tenant() -> str:
    """The tenant everything the current call reads or writes belongs to."""
    return _CALLER.get().tenant
