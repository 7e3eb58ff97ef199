"""The ceiling: the same drain and round trip with plain nats-py (publish with acks, durable pull consumer,
fetch in batches, ack), to compare Syllabus against in the same run.

`python -m bench.raw consumer URL STREAM DURABLE` is the raw worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from typing import Any

import nats
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig

STREAM = "RAWBENCH"
SUBJECT = "rawbench.jobs"
DONE = "rawbench.done"
DURABLE = "raw-workers"
PAYLOAD = b"x" * 120  # about the size of a small serialized job


async def consume(url: str) -> None:
    """A raw worker: fetch up to 64, ack each, tell the bench (core NATS) which ones finished."""
    nc = await nats.connect(url)
    js = nc.jetstream()
    sub = await js.pull_subscribe_bind(durable=DURABLE, stream=STREAM)
    while True:
        try:
            msgs = await sub.fetch(64, timeout=1.0)
        except (TimeoutError, NatsTimeout):
            continue
        for msg in msgs:
            await msg.ack()
            await nc.publish(DONE, msg.headers["Id"].encode() if msg.headers else b"")


async def setup(nc: Client) -> None:
    js = nc.jetstream()
    with contextlib.suppress(Exception):
        await js.delete_stream(STREAM)
    await js.add_stream(StreamConfig(name=STREAM, subjects=[SUBJECT], retention=RetentionPolicy.WORK_QUEUE))
    await js.add_consumer(STREAM, ConsumerConfig(durable_name=DURABLE, ack_policy=AckPolicy.EXPLICIT, ack_wait=30))


async def pipelined_publish(nc: Client, count: int, window: int = 2000) -> float:
    """Publish `count` messages with acks, keeping `window` in flight. Returns seconds taken."""
    js = nc.jetstream()
    started = time.perf_counter()
    pending: list[asyncio.Future[Any]] = []
    for i in range(count):
        pending.append(await js.publish_async(SUBJECT, PAYLOAD, headers={"Id": str(i)}))
        if len(pending) >= window:
            await asyncio.gather(*pending)
            pending.clear()
    await asyncio.gather(*pending)
    return time.perf_counter() - started


async def drain(nc: Client, count: int) -> float:
    """Seconds from the first publish until every message was acked by a worker."""
    done = asyncio.Event()
    seen = 0

    async def on_done(_: object) -> None:
        nonlocal seen
        seen += 1
        if seen == count:
            done.set()

    sub = await nc.subscribe(DONE, cb=on_done, pending_msgs_limit=-1, pending_bytes_limit=-1)
    started = time.perf_counter()
    await pipelined_publish(nc, count)
    await done.wait()
    elapsed = time.perf_counter() - started
    await sub.unsubscribe()
    return elapsed


async def round_trips(nc: Client, count: int) -> list[float]:
    """Publish one (ack awaited), wait until a worker acked it: milliseconds each."""
    js = nc.jetstream()
    latencies: list[float] = []
    sub = await nc.subscribe(DONE)
    for i in range(count):
        started = time.perf_counter()
        await js.publish(SUBJECT, PAYLOAD, headers={"Id": f"rt{i}"})
        while (await sub.next_msg(timeout=10)).data != f"rt{i}".encode():
            pass
        latencies.append((time.perf_counter() - started) * 1000)
    await sub.unsubscribe()
    return latencies


if __name__ == "__main__" and sys.argv[1:2] == ["consumer"]:
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(consume(sys.argv[2]))
