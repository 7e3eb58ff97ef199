"""What a process builds once and hands to every component: its NATS connection, its store, and the publishers,
submitter, dead-letter queue and parent bookkeeping on them.

One of each per process (syllabus.process builds it, gateway.main builds the gateway's), so that a process has
one reply subscription for everything it publishes, whatever number of services or handlers it runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.aio.client import Client

from syllabus.deadletters import DeadLetters
from syllabus.events import EventPublisher
from syllabus.parents import Parents
from syllabus.publisher import AckedPublisher
from syllabus.store.base import Store
from syllabus.submit import Submitter
from syllabus.topology import Topology

# Seconds a publish waits for JetStream's ack before it counts as an outage.
PUBLISH_TIMEOUT = 5.0


@dataclass(frozen=True)
class Runtime:
    nc: Client
    store: Store
    topology: Topology
    events: EventPublisher
    submitter: Submitter
    dead_letters: DeadLetters
    parents: Parents

    @classmethod
    def build(cls, nc: Client, store: Store, topology: Topology, timeout: float = PUBLISH_TIMEOUT) -> Runtime:
        acked = AckedPublisher(nc)
        events = EventPublisher(nc, topology, timeout, acked=acked)
        return cls(
            nc=nc,
            store=store,
            topology=topology,
            events=events,
            submitter=Submitter(store, topology, events, acked, timeout),
            dead_letters=DeadLetters(nc, topology, timeout),
            parents=Parents(store, events),
        )
