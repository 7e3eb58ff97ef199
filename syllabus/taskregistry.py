"""Which worker pool serves which task name, and the defaults its jobs take: a JetStream key-value bucket.

A pool declares its task names when it starts (every process of the pool, on any machine, declares the same);
a name belongs to one pool, as JetStream work-queue consumers may not overlap. A pool that starts without a
name it declared before gives the name up, so a task moves to another pool by redeploying the first without it.
The gateway reads the declarations to refuse tasks no pool has declared and to give a task's jobs its attempts.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass

from nats.aio.client import Client
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

from syllabus.bucketkeys import bucket_keys
from syllabus.bucketwatch import BucketWatch
from syllabus.topology import Topology

log = logging.getLogger(__name__)
# A key never written, and one deleted (a released task): nats-py raises either.
_ABSENT = (KeyNotFoundError, KeyDeletedError)


class TaskTaken(Exception):
    """A task name is already declared by another pool, or a pool name by another tenant's pool (which is not
    named to the one that asked)."""


def _held_by(name: str, pool: str, other: str) -> TaskTaken:
    return TaskTaken(
        f"task {name!r} is already served by worker pool {other!r}: a task name belongs to one pool "
        f"(stop declaring it in pool {other!r} first, or rename it in pool {pool!r})"
    )


@dataclass(frozen=True)
class TaskDeclaration:
    name: str
    pool: str
    # Attempts a job of the task gets when it asks for none.
    max_attempts: int
    # Time limit of one attempt when the job sets none, seconds.
    timeout: float
    # The full name of the typed input message, or "" for JSON.
    input_type: str = ""
    # The tenants whose jobs the pool serves; empty: every tenant's (an operator's pool).
    tenants: tuple[str, ...] = ()

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> TaskDeclaration:
        raw = json.loads(data)
        return cls(**{**raw, "tenants": tuple(raw.get("tenants", ()))})

    def serves(self, tenant: str) -> bool:
        return not self.tenants or tenant in self.tenants


class TaskRegistry:
    def __init__(self, nc: Client, topology: Topology) -> None:
        self._nc = nc
        self._topology = topology
        self._kv: KeyValue | None = None
        self._known: dict[str, TaskDeclaration] = {}
        self._watch = BucketWatch(self._declared, lambda name: self._known.pop(name, None))

    def _declared(self, name: str, value: bytes) -> None:
        self._known[name] = TaskDeclaration.decode(value)

    async def _bucket(self) -> KeyValue:
        if self._kv is None:
            self._kv = await self._nc.jetstream().key_value(self._topology.tasks_bucket)
        return self._kv

    async def declare(self, pool: str, tasks: Iterable[TaskDeclaration]) -> None:
        """Claim every name for `pool` (TaskTaken if another pool holds one, or if the pool is another tenant's),
        and give up the pool's others."""
        kv = await self._bucket()
        mine = {task.name: task for task in tasks}
        owners = {task.tenants for task in mine.values()}
        held_now = await self._all(kv)
        # A pool declaring nothing (giving every name up) says no owner: only an operator's own code does that, as
        # a remote worker must declare a task and a TaskApp with none does not start.
        if owners and any(held.pool == pool and held.tenants not in owners for held in held_now.values()):
            # Joining it would share its queue: its jobs would reach this worker.
            raise TaskTaken(f"worker pool {pool!r} belongs to another tenant: choose another name")
        for task in mine.values():
            await self._claim(kv, task)
        for name, held in (await self._all(kv)).items():
            if held.pool == pool and name not in mine:
                log.info("pool %s no longer serves task %s: released", pool, name)
                await kv.delete(name)

    async def _claim(self, kv: KeyValue, task: TaskDeclaration) -> None:
        while True:
            try:
                await kv.create(task.name, task.encode())
                return
            except KeyWrongLastSequenceError:
                pass
            try:
                entry = await kv.get(task.name)
            except _ABSENT:
                continue  # released between our create and our look: create again
            if entry.value is None:
                continue
            held = TaskDeclaration.decode(entry.value)
            if held.tenants != task.tenants and task.tenants:
                raise TaskTaken(f"task {task.name!r} is already served by another worker pool")
            if held.pool != task.pool:
                raise _held_by(task.name, task.pool, held.pool)
            if held == task:
                return
            try:
                await kv.update(task.name, task.encode(), last=entry.revision)
                return
            except KeyWrongLastSequenceError:
                continue  # another process of the pool wrote meanwhile: look again

    async def _all(self, kv: KeyValue) -> dict[str, TaskDeclaration]:
        names = await bucket_keys(self._nc.jetstream(), self._topology.tasks_bucket)
        found = {}
        for name in names:
            with contextlib.suppress(*_ABSENT):
                entry = await kv.get(name)
                if entry.value:
                    found[name] = TaskDeclaration.decode(entry.value)
        return found

    async def declarations(self) -> list[TaskDeclaration]:
        """Every declaration, read from the bucket (the queue stats name every pool's queue)."""
        return list((await self._all(await self._bucket())).values())

    async def start(self) -> None:
        """Keep every declaration in memory from now on, so that a submission reads none from NATS."""
        await self._watch.start(await self._bucket())

    async def stop(self) -> None:
        await self._watch.stop()

    async def lookup(self, name: str) -> TaskDeclaration | None:
        """The declaration of `name`, or None if no pool declared it."""
        known = self._known.get(name)
        if known is not None:
            return known
        # Declared a moment ago and not seen by the watch yet, or not watching: ask the bucket itself.
        kv = await self._bucket()
        try:
            entry = await kv.get(name)
        except _ABSENT:
            return None
        return TaskDeclaration.decode(entry.value) if entry.value else None
