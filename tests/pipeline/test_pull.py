"""The workers' pull consumer on a real NATS: requests covering many messages, credits given back, lost requests
asked for again, and a stopped consumer skipped by the server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import pytest_asyncio
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StorageType, StreamConfig

from onemachine.servers import NatsServer
from syllabus.deliveries import pending_after, stream_sequence
from syllabus.jetstream import connect
from syllabus.pull import PullConsumer
from syllabus.topology import Topology


@dataclass
class Queue:
    nc: NatsClient
    stream: str
    subject: str

    async def put(self, count: int) -> None:
        js = self.nc.jetstream()
        for i in range(count):
            await js.publish(self.subject, f"job {i}".encode())

    async def consumer(self, durable: str = "workers") -> str:
        config = ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=30)
        await self.nc.jetstream().add_consumer(self.stream, config)
        return durable


@pytest_asyncio.fixture
async def queue(nc: NatsClient, topology: Topology) -> AsyncIterator[Queue]:
    stream = f"{topology.namespace.upper()}_PULL"
    subject = f"{topology.namespace}.pull"
    js = nc.jetstream()
    await js.add_stream(StreamConfig(name=stream, subjects=[subject], retention=RetentionPolicy.WORK_QUEUE))
    try:
        yield Queue(nc, stream, subject)
    finally:
        await js.delete_stream(stream)


@dataclass
class Taker:
    """What a worker does with the consumer: takes every message, hears every credit given back."""

    messages: list[Msg] = field(default_factory=list)
    credits: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def on_message(self, msg: Msg) -> None:
        self.messages.append(msg)
        self.changed.set()

    def on_credit(self) -> None:
        self.credits += 1
        self.changed.set()

    async def until(self, done: object) -> None:
        while not done():  # type: ignore[operator]
            self.changed.clear()
            await self.changed.wait()


def puller(nc: NatsClient, queue: Queue, durable: str, taker: Taker, **timing: float) -> PullConsumer:
    return PullConsumer(nc, queue.stream, durable, on_message=taker.on_message, on_credit=taker.on_credit, **timing)


async def test_one_request_covers_many_messages(nc: NatsClient, queue: Queue) -> None:
    await queue.put(10)
    taker = Taker()
    consumer = puller(nc, queue, await queue.consumer(), taker)
    await consumer.start()
    try:
        assert consumer.request(10) is not None
        assert consumer.outstanding == 10
        await taker.until(lambda: len(taker.messages) == 10)
        assert [msg.data for msg in taker.messages] == [f"job {i}".encode() for i in range(10)]
        assert consumer.outstanding == 0
        # The consumer still held 9, then 8, ... after each: read from the reply subject.
        assert [pending_after(msg) for msg in taker.messages] == list(range(9, -1, -1))
    finally:
        await consumer.stop()


async def test_a_request_that_expires_gives_back_what_it_did_not_deliver(nc: NatsClient, queue: Queue) -> None:
    await queue.put(2)
    taker = Taker()
    consumer = puller(nc, queue, await queue.consumer(), taker, expires=0.3, heartbeat=0.1)
    await consumer.start()
    try:
        consumer.request(5)
        await taker.until(lambda: taker.credits >= 1)
        assert len(taker.messages) == 2
        assert consumer.outstanding == 0
    finally:
        await consumer.stop()


async def test_requests_lost_with_a_killed_server_are_asked_for_again(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / "nats")
    await server.start()
    nc = await connect(server.url, "pytest-pull")
    try:
        stream = "RESTARTED"
        await nc.jetstream().add_stream(StreamConfig(name=stream, subjects=["restarted"], storage=StorageType.FILE))
        queue = Queue(nc, stream, "restarted")
        taker = Taker()
        consumer = puller(nc, queue, await queue.consumer(), taker, expires=30, heartbeat=0.1)
        await consumer.start()
        consumer.request(3)
        await nc.flush()
        # The server keeps the consumer on disk but its waiting requests only in memory; killed, it cannot say
        # they are gone (stopped, it would: "409 Server Shutdown").
        assert server.process is not None
        server.process.kill()
        await server.restart()
        # Nothing heard for three heartbeats with requests out: the credit comes back, and the owner asks again.
        await taker.until(lambda: taker.credits >= 1)
        assert consumer.outstanding == 0
        consumer.request(3)
        await queue.put(1)
        await taker.until(lambda: len(taker.messages) == 1)
        await consumer.stop()
    finally:
        await nc.close()
        await server.stop()


async def test_a_request_nobody_answered_is_asked_for_again(nc: NatsClient, queue: Queue) -> None:
    taker = Taker()
    consumer = puller(nc, queue, "not-yet", taker, expires=0.5, heartbeat=0.1)
    await consumer.start()
    try:
        # No such consumer: the server answers "no responders" and the request is gone.
        consumer.request(2)
        await nc.flush()
        await queue.consumer("not-yet")
        await queue.put(1)
        # Silent for longer than a request lives: the owner is told to ask again.
        await taker.until(lambda: taker.credits >= 1)
        assert consumer.outstanding == 0
        consumer.request(2)
        await taker.until(lambda: len(taker.messages) == 1)
    finally:
        await consumer.stop()


async def test_the_server_skips_a_stopped_consumers_requests(nc: NatsClient, queue: Queue) -> None:
    durable = await queue.consumer()
    stopped, other = Taker(), Taker()
    first = puller(nc, queue, durable, stopped)
    await first.start()
    first.request(5)
    await nc.flush()
    await first.stop()
    second = puller(nc, queue, durable, other)
    await second.start()
    try:
        second.request(5)
        await queue.put(3)
        await other.until(lambda: len(other.messages) == 3)
        assert stopped.messages == []
    finally:
        await second.stop()


def test_sequence_and_pending_are_read_from_either_form_of_the_reply_subject() -> None:
    short = Msg(_client=None, reply="$JS.ACK.JOBS.generator-interactive.1.42.17.1700000000000000000.5")  # type: ignore[arg-type]
    long = Msg(
        _client=None,  # type: ignore[arg-type]
        reply="$JS.ACK._.ACCHASH.JOBS.generator-interactive.1.42.17.1700000000000000000.7.RANDOM",
    )
    assert (pending_after(short), pending_after(long)) == (5, 7)
    assert (stream_sequence(short), stream_sequence(long)) == (42, 42)
    for reply in ("", "_INBOX.abc.1", "$JS.ACK.JOBS.c.1", "$JS.ACK._.ACCHASH.JOBS.c.1.42.17.1700000000000000000"):
        with pytest.raises(ValueError):
            stream_sequence(Msg(_client=None, reply=reply))  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            pending_after(Msg(_client=None, reply=reply))  # type: ignore[arg-type]
