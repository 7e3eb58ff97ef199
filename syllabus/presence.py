"""Which workers are alive: each worker process keeps an entry in the `workers` key-value bucket.

The entry (key `<queue>.<worker id>`) is written again every PRESENCE_INTERVAL seconds while the process runs
and deleted when it stops; the bucket's max age drops an entry not written for PRESENCE_TTL seconds, so a worker
killed outright is gone within that. Readers (the gateway) keep the entries in memory from a watch, and count
an entry as alive for PRESENCE_TTL after they last saw it written, by their own clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass

from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import NoKeysError, NotFoundError
from nats.js.kv import KeyValue

from syllabus import outages
from syllabus.bucketwatch import BucketWatch
from syllabus.topology import Topology

log = logging.getLogger(__name__)
PRESENCE_INTERVAL = 5.0
PRESENCE_TTL = 15.0


@dataclass(frozen=True)
class WorkerPresence:
    worker_id: str
    # The work queue it takes jobs from: a service ("generator") or a task pool ("pool-acme").
    queue: str
    host: str
    pid: int
    concurrency: int
    running: int
    started: float

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> WorkerPresence:
        return cls(**json.loads(data))


def workers_bucket_config(topology: Topology) -> KeyValueConfig:
    # Entries a worker stopped writing age out: what is left is alive.
    return KeyValueConfig(bucket=topology.workers_bucket, storage=StorageType.FILE, ttl=PRESENCE_TTL)


async def workers_bucket(nc: Client, topology: Topology) -> KeyValue:
    """The bucket, created again if it is gone (a JetStream that lost its state)."""
    js = nc.jetstream()
    try:
        return await js.key_value(topology.workers_bucket)
    except NotFoundError:
        return await js.create_key_value(workers_bucket_config(topology))


class Presence:
    """A worker process's own entry, kept while `run` runs."""

    def __init__(self, nc: Client, topology: Topology, queue: str, concurrency: int, running: Callable[[], int]):
        self._nc = nc
        self._topology = topology
        self._queue = queue
        self._concurrency = concurrency
        self._running = running
        self._id = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._started = time.time()
        self._stopped = asyncio.Event()

    @property
    def key(self) -> str:
        return f"{self._queue}.{self._id}"

    def _entry(self) -> WorkerPresence:
        return WorkerPresence(
            worker_id=self._id,
            queue=self._queue,
            host=socket.gethostname(),
            pid=os.getpid(),
            concurrency=self._concurrency,
            running=self._running(),
            started=self._started,
        )

    def stop(self) -> None:
        """End `run`, which deletes the entry. A flag rather than a cancellation: on Python 3.11 a cancellation that
        lands just as nats-py's request (asyncio.wait_for inside) completes is swallowed, and the loop would go on."""
        self._stopped.set()

    async def run(self) -> None:
        """Until `stop`. Never raises: a worker whose presence cannot be written (NATS away, the bucket gone) works
        on."""
        kv: KeyValue | None = None
        try:
            while not self._stopped.is_set():
                try:
                    kv = kv or await workers_bucket(self._nc, self._topology)
                    await kv.put(self.key, self._entry().encode())
                except Exception as exc:
                    # The entry ages out meanwhile, and is written again once NATS answers.
                    if outages.unreachable(exc) is None:
                        log.warning("presence of %s not written: %s", self.key, exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopped.wait(), PRESENCE_INTERVAL)
        finally:
            # Only while connected: a delete buffered for a NATS that is away would be left pending in the client,
            # which nats-py then fails to write when the connection is closed. The entry ages out anyway.
            if kv is not None and self._nc.is_connected:
                with contextlib.suppress(Exception):
                    await asyncio.shield(kv.delete(self.key))


class LiveWorkers:
    """The gateway's view of the workers' entries."""

    def __init__(self, nc: Client, topology: Topology) -> None:
        self._nc = nc
        self._topology = topology
        # Key -> when this process last saw it written (monotonic clock).
        self._seen: dict[str, float] = {}
        self._watch = BucketWatch(self._saw, lambda key: self._seen.pop(key, None))

    def _saw(self, key: str, value: bytes) -> None:
        self._seen[key] = time.monotonic()

    async def _bucket(self) -> KeyValue:
        return await workers_bucket(self._nc, self._topology)

    async def start(self) -> None:
        await self._watch.start(await self._bucket())

    async def stop(self) -> None:
        await self._watch.stop()

    async def any_alive(self, queue: str) -> bool:
        """Whether a worker of `queue` has been seen within PRESENCE_TTL."""
        if not self._watch.watching:
            # Not watching (tests, tools): ask the bucket, whose max age drops entries not written meanwhile.
            try:
                keys = await (await self._bucket()).keys(filters=[f"{queue}."])
            except NoKeysError:
                return False
            return any(key.startswith(f"{queue}.") for key in keys)
        horizon = time.monotonic() - PRESENCE_TTL
        return any(key.startswith(f"{queue}.") and seen > horizon for key, seen in self._seen.items())
