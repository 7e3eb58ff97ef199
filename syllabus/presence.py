"""Which workers are alive: each worker process keeps an entry in the `workers` key-value bucket.

The entry (key `<queue>.<worker id>`) is written again every PRESENCE_INTERVAL seconds while the process runs
and deleted when it stops; the bucket's max age drops an entry not written for PRESENCE_TTL seconds, so a worker
killed outright is gone within that. Readers (the gateway) keep the entries in memory from a watch, and count
an entry as alive for PRESENCE_TTL after they last saw it written, by their own clock.

The entry says what the worker is (its queue, the job kinds or task names it runs, its version, since when) and
what it holds (the ids of the jobs it runs), as of its last write: AdminService.ListWorkers shows them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import importlib.metadata
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass

from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from syllabus import outages
from syllabus.bucketkeys import bucket_keys
from syllabus.bucketwatch import BucketWatch
from syllabus.status import advertised_url
from syllabus.topology import Topology

log = logging.getLogger(__name__)
PRESENCE_INTERVAL = 5.0
PRESENCE_TTL = 15.0


def _version() -> str:
    try:
        return importlib.metadata.version("syllabus")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


VERSION = _version()


@dataclass(frozen=True)
class WorkerPresence:
    worker_id: str
    # The work queue it takes jobs from: a service ("generator") or a task pool ("pool-acme").
    queue: str
    host: str
    pid: int
    concurrency: int
    running: int
    # Unix seconds.
    started: float
    # The job kinds (or, in a task pool, the task names) it runs.
    kinds: tuple[str, ...] = ()
    # The jobs in its hand.
    job_ids: tuple[str, ...] = ()
    version: str = ""
    # When the entry was written, Unix seconds by the worker's clock.
    written: float = 0.0
    # Its Prometheus metrics page (SYLLABUS_METRICS_ADDR); "" without one.
    metrics_url: str = ""

    def encode(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> WorkerPresence:
        # Fields a newer or older build wrote that this one does not know are left out.
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {name: value for name, value in json.loads(data).items() if name in known}
        for name in ("kinds", "job_ids"):
            fields[name] = tuple(fields.get(name, ()))
        return cls(**fields)


def workers_bucket_config(topology: Topology) -> KeyValueConfig:
    # Entries a worker stopped writing age out: what is left is alive.
    return KeyValueConfig(
        bucket=topology.workers_bucket, storage=StorageType.FILE, ttl=PRESENCE_TTL, replicas=topology.replicas
    )


async def workers_bucket(nc: Client, topology: Topology) -> KeyValue:
    """The bucket, created again if it is gone (a JetStream that lost its state)."""
    js = nc.jetstream()
    try:
        return await js.key_value(topology.workers_bucket)
    except NotFoundError:
        return await js.create_key_value(workers_bucket_config(topology))


class Presence:
    """A worker process's own entry, kept while `run` runs."""

    def __init__(
        self,
        nc: Client,
        topology: Topology,
        queue: str,
        concurrency: int,
        holding: Callable[[], Collection[str]],
        worker_id: str = "",
        kinds: Sequence[str] = (),
        host: str = "",
        pid: int | None = None,
    ):
        self._nc = nc
        self._topology = topology
        self._queue = queue
        self._concurrency = concurrency
        self._holding = holding
        self._kinds = tuple(sorted(kinds))
        # A remote worker's own host and pid (gateway.workers), not the gateway's.
        self._host = host or socket.gethostname()
        self._pid = os.getpid() if pid is None else pid
        # A remote worker's metrics are its own business, not the gateway's process's.
        self._remote = pid is not None
        # A remote worker's is the one its stream was given (gateway.workers).
        self._id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self._started = time.time()
        self._stopped = asyncio.Event()

    @property
    def worker_id(self) -> str:
        return self._id

    @property
    def key(self) -> str:
        return f"{self._queue}.{self._id}"

    def _entry(self) -> WorkerPresence:
        held = tuple(sorted(self._holding()))
        return WorkerPresence(
            worker_id=self._id,
            queue=self._queue,
            host=self._host,
            pid=self._pid,
            concurrency=self._concurrency,
            running=len(held),
            started=self._started,
            kinds=self._kinds,
            job_ids=held,
            version=VERSION,
            written=time.time(),
            metrics_url="" if self._remote else advertised_url(),
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
    """The gateway's view of the workers' entries.

    The bucket's max age removes an entry no longer written without a trace a watch would see (no delete marker),
    so a worker killed outright is gone only by the clock: `expiry` says when the next entry counts as gone, and a
    watcher wakes then."""

    def __init__(
        self, nc: Client, topology: Topology, on_change: Callable[[str, bytes | None], None] | None = None
    ) -> None:
        self._nc = nc
        self._topology = topology
        # Key -> when this process last saw it written (monotonic clock), and what was written.
        self._seen: dict[str, tuple[float, bytes]] = {}
        # Told every entry written (key, value) and deleted (key, None) while watching.
        self._on_change = on_change
        self._watch = BucketWatch(self._saw, self._gone)

    def _saw(self, key: str, value: bytes) -> None:
        self._seen[key] = (time.monotonic(), value)
        if self._on_change is not None:
            self._on_change(key, value)

    def _gone(self, key: str) -> None:
        if self._seen.pop(key, None) is not None and self._on_change is not None:
            self._on_change(key, None)

    def expiry(self) -> float | None:
        """When (monotonic clock) the first entry alive now counts as gone unless written again; None: none is."""
        horizon = time.monotonic() - PRESENCE_TTL
        alive = [seen for seen, _ in self._seen.values() if seen > horizon]
        return min(alive) + PRESENCE_TTL if alive else None

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
            await self._bucket()
            return bool(await bucket_keys(self._nc.jetstream(), self._topology.workers_bucket, f"{queue}."))
        horizon = time.monotonic() - PRESENCE_TTL
        return any(key.startswith(f"{queue}.") and seen > horizon for key, (seen, _) in self._seen.items())

    async def workers(self, queue: str = "") -> list[WorkerPresence]:
        """The entries of the workers alive (of `queue`, or all), by queue and id."""
        if self._watch.watching:
            horizon = time.monotonic() - PRESENCE_TTL
            values = [value for seen, value in self._seen.values() if seen > horizon]
        else:
            values = await self._read_all()
        found = []
        for value in values:
            try:
                entry = WorkerPresence.decode(value)
            except (ValueError, TypeError) as exc:
                log.warning("unreadable worker entry skipped: %s", exc)
                continue
            if not queue or entry.queue == queue:
                found.append(entry)
        return sorted(found, key=lambda entry: (entry.queue, entry.worker_id))

    async def _read_all(self) -> list[bytes]:
        # Not watching: the bucket itself, whose max age drops entries not written within PRESENCE_TTL.
        kv = await self._bucket()
        keys = await bucket_keys(self._nc.jetstream(), self._topology.workers_bucket)

        async def read(key: str) -> bytes | None:
            try:
                return (await kv.get(key)).value
            except (KeyNotFoundError, KeyDeletedError):
                return None  # gone since the keys were listed

        return [value for value in await asyncio.gather(*(read(key) for key in keys)) if value]
