"""The queues' gauges, computed when the gateway is scraped from what AdminService.GetQueueStats computes (over
every tenant), and kept for a moment so that many scrapers (or one scraping often) cost one round of queries."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence

from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from syllabus import outages
from syllabus.v1 import admin_service_pb2 as pb

log = logging.getLogger(__name__)
# Seconds a computed snapshot is served before the next scrape computes it again.
MAX_AGE = 2.0
# The job states of syllabus_queue_jobs: those of jobs not ended (ended ones are counted by the workers).
STATES = ("scheduled", "waiting", "running", "retrying", "waiting_for_children")

QueueStatsSource = Callable[[], Awaitable[Sequence[pb.QueueStats]]]


class QueueGauges(Collector):
    """Call `refresh()` before collecting: it computes the stats unless a recent snapshot is there."""

    def __init__(self, stats: QueueStatsSource, max_age: float = MAX_AGE, clock: Callable[[], float] = time.monotonic):
        self._stats = stats
        self._max_age = max_age
        self._clock = clock
        self._snapshot: Sequence[pb.QueueStats] = ()
        self._taken = -max_age
        self._lock = asyncio.Lock()
        self._outages = outages.OutageLog(log)

    async def refresh(self) -> None:
        if self._clock() - self._taken < self._max_age:
            return
        async with self._lock:  # scrapes that come meanwhile wait for this one's snapshot
            if self._clock() - self._taken < self._max_age:
                return
            try:
                self._snapshot = await self._stats()
            except Exception as exc:
                # Without stats the page leaves the queue gauges out rather than show stale ones.
                self._snapshot = ()
                dependency = outages.unreachable(exc)
                if dependency is None:
                    log.warning("queue metrics unavailable: %s", exc)
                else:
                    self._outages.down(dependency, exc, "the queue metrics are left out until it answers")
            else:
                self._outages.all_up()
            self._taken = self._clock()

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "syllabus_queue_jobs", "Jobs of every tenant by queue and state.", labels=["queue", "state"]
        )
        oldest = GaugeMetricFamily(
            "syllabus_queue_oldest_waiting_seconds",
            "Age of the oldest job waiting for a worker in the queue; 0 when none waits.",
            labels=["queue"],
        )
        pending = GaugeMetricFamily(
            "syllabus_consumer_pending_messages",
            "Messages of the queue's JetStream consumers not yet delivered (every priority).",
            labels=["queue"],
        )
        ack_pending = GaugeMetricFamily(
            "syllabus_consumer_ack_pending_messages",
            "Messages of the queue's JetStream consumers delivered and not yet acknowledged (every priority).",
            labels=["queue"],
        )
        paused = GaugeMetricFamily("syllabus_queue_paused", "1 while the queue is paused, else 0.", labels=["queue"])
        workers = GaugeMetricFamily("syllabus_workers", "Worker processes alive for the queue.", labels=["queue"])
        for queue in self._snapshot:
            name = queue.queue
            for state in STATES:
                jobs.add_metric([name, state], sum(getattr(count, state) for count in queue.counts))
            age = queue.oldest_waiting_age.ToNanoseconds() / 1e9 if queue.HasField("oldest_waiting_age") else 0.0
            oldest.add_metric([name], age)
            pending.add_metric([name], sum(consumer.pending for consumer in queue.consumers))
            ack_pending.add_metric([name], sum(consumer.ack_pending for consumer in queue.consumers))
            paused.add_metric([name], 1.0 if queue.paused else 0.0)
            workers.add_metric([name], queue.workers)
        yield from (jobs, oldest, pending, ack_pending, paused, workers)
