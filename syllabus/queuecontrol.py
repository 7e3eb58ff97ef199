"""Which work queues are paused: a key-value bucket holding one key per paused queue (AdminService.PauseQueue).

Pausing writes the queue's key, resuming deletes it. Every worker of a queue follows the bucket (a watch) and
asks for none of the queue's jobs while the key is there; the jobs it runs finish. The bucket lives in
JetStream, so a pause holds across restarts of every process until the queue is resumed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from syllabus.bucketkeys import bucket_keys
from syllabus.bucketwatch import BucketWatch
from syllabus.topology import Topology

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Pause:
    # Unix seconds.
    paused_at: float

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode()


def paused_bucket_config(topology: Topology) -> KeyValueConfig:
    return KeyValueConfig(bucket=topology.paused_bucket, storage=StorageType.FILE, replicas=topology.replicas)


async def paused_bucket(nc: Client, topology: Topology) -> KeyValue:
    """The bucket, created again if it is gone (a JetStream that lost its state)."""
    js = nc.jetstream()
    try:
        return await js.key_value(topology.paused_bucket)
    except NotFoundError:
        return await js.create_key_value(paused_bucket_config(topology))


class PausedQueues:
    """The paused set as the gateway reads and changes it."""

    def __init__(self, nc: Client, topology: Topology) -> None:
        self._nc = nc
        self._topology = topology

    async def pause(self, queue: str) -> None:
        await (await paused_bucket(self._nc, self._topology)).put(queue, Pause(time.time()).encode())

    async def resume(self, queue: str) -> None:
        kv = await paused_bucket(self._nc, self._topology)
        try:
            await kv.get(queue)
        except (KeyNotFoundError, KeyDeletedError):
            return  # not paused: no delete marker for nothing
        await kv.delete(queue)

    async def paused(self) -> frozenset[str]:
        await paused_bucket(self._nc, self._topology)
        return frozenset(await bucket_keys(self._nc.jetstream(), self._topology.paused_bucket))


class PauseWatch:
    """A worker following whether its queue is paused: `on_change(paused)` is called whenever that changes."""

    def __init__(self, nc: Client, topology: Topology, queue: str, on_change: Callable[[bool], None]) -> None:
        self._nc = nc
        self._topology = topology
        self._queue = queue
        self._on_change = on_change
        self.paused = False
        self._watch = BucketWatch(lambda key, _: self._saw(key, True), lambda key: self._saw(key, False))

    def _saw(self, key: str, paused: bool) -> None:
        if key != self._queue or paused == self.paused:
            return
        self.paused = paused
        log.info("queue %s %s", self._queue, "paused: no more of its jobs are taken" if paused else "resumed")
        self._on_change(paused)

    @property
    def watching(self) -> bool:
        return self._watch.watching

    async def start(self) -> None:
        """Returns once the queue's state at the start is known (and `on_change` told if it is paused)."""
        await self._watch.start(await paused_bucket(self._nc, self._topology))

    async def stop(self) -> None:
        await self._watch.stop()
