"""`python -m bench [--quick]`: throughput, latency, CPU and memory of the pipeline beside raw JetStream.

Starts its own NATS and Valkey and the services as real processes in a temporary home, runs every scenario
in one go on this machine, prints a table, then one line of JSON with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import nats
from nats.aio.client import Client
from nats.aio.msg import Msg

from bench import peer, raw
from bench.percentiles import pct
from bench.processes import CpuMeter, Stack, machine_ticks, rss_mb
from onemachine.servers import NATS_SYNC_ALWAYS, NATS_SYNC_DEFAULT
from syllabus.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc


@dataclass(frozen=True)
class Sizes:
    unary: int
    callers: int
    bulk: int
    batch: int
    drain: int
    round_trips: int
    watchers: int
    scale: int
    # Seconds of the open-loop run (jobs arriving at a fixed rate: half the measured drain rate).
    open_loop: float


QUICK = Sizes(
    unary=1000, callers=50, bulk=4000, batch=500, drain=4000, round_trips=100, watchers=500, scale=2000, open_loop=8
)
FULL = Sizes(
    unary=5000,
    callers=50,
    bulk=20000,
    batch=500,
    drain=20000,
    round_trips=500,
    watchers=10000,
    scale=10000,
    open_loop=30,
)
# A round trip's stages, between the client's clock and the stamps of the job and its events: sending the
# call until the gateway built the job, storing and enqueueing it until the client has the answer, the answer
# until the worker's STARTED (negative when the worker started first), STARTED until SUCCEEDED (the claim, the
# handler, the outcome stored), and SUCCEEDED until the client's watch has it.
ROUND_TRIP_STAGES = ("to_gateway", "submitted", "to_start", "run", "to_watch")
# Watches opened at once, each wave attached before the next.
WATCH_WAVE = 1000
# Submissions of the open-loop run go out on this tick (seconds): each carries the jobs that arrived since the last.
OPEN_LOOP_TICK = 0.005
TEXT = "Syllabus moves typed jobs through JetStream. Workers summarize this. It is short."


def request(i: int) -> job_service_pb2.SubmitJobRequest:
    return job_service_pb2.SubmitJobRequest(
        spec=job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text=f"{TEXT} {i}", max_words=8))
    )


def task_request(i: int, name: str = "bench.echo") -> job_service_pb2.SubmitJobRequest:
    """A job of a task of bench.tasks' pool: by default the one that does nothing."""
    spec = job_pb2.JobSpec(task=job_pb2.Task(name=name))
    spec.task.json.update({"i": i})
    return job_service_pb2.SubmitJobRequest(spec=spec)


def paced_request(i: int) -> job_service_pb2.SubmitJobRequest:
    return task_request(i, "bench.pace")


Requests = Callable[[int], job_service_pb2.SubmitJobRequest]


class Finished:
    """Counts SUCCEEDED events off NATS (core subscription, so the bench adds nothing to the pipeline), and keeps
    when the jobs being timed started and finished (the times the worker stamped on their events)."""

    def __init__(self) -> None:
        self.count = 0
        self._waiters: list[tuple[int, asyncio.Event]] = []
        # While timing (the open-loop run): job id -> [started ns, succeeded ns] of every job seen.
        self.timing = False
        self.timed: dict[str, list[int]] = {}

    async def on_event(self, msg: Msg) -> None:
        event = job_pb2.JobEvent.FromString(msg.data)
        times = self.timed.setdefault(event.job_id, [0, 0]) if self.timing else None
        if times is not None and event.type == job_pb2.JOB_EVENT_TYPE_STARTED:
            times[0] = event.time.ToNanoseconds()
        if event.type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED:
            if times is not None:
                times[1] = event.time.ToNanoseconds()
            self.count += 1
            for target, ready in self._waiters:
                if self.count >= target:
                    ready.set()

    async def until(self, target: int) -> None:
        ready = asyncio.Event()
        self._waiters.append((target, ready))
        if self.count >= target:
            ready.set()
        await ready.wait()
        self._waiters.remove((target, ready))


async def _reconnecting(exc: Exception) -> None:
    pass


class Bench:
    def __init__(self, stack: Stack, sizes: Sizes) -> None:
        self.stack = stack
        self.sizes = sizes
        self.figures: dict[str, Any] = {}
        self.finished = Finished()
        # Empty: the embedded store; set for the MongoDB scaling runs.
        self.store_env: dict[str, str] = {}

    def per_job_us(self, meter: CpuMeter, jobs: int, only: tuple[str, ...] = ()) -> float:
        spent = {k: v for k, v in meter.spent.items() if not only or k in only}
        return sum(spent.values()) / jobs * 1e6

    async def run(self) -> dict[str, Any]:
        stack = self.stack
        assert stack.nats is not None
        # The sync scenarios restart the server: the connection comes back by itself, and nats-py's traceback of
        # each refused reconnect would only bury the table.
        nc = await nats.connect(stack.nats.url, name="bench", error_cb=_reconnecting)
        await nc.subscribe(
            stack.topology.events_subjects, cb=self.finished.on_event, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        await self.raw_ceiling(nc)
        await self.bullmq()
        await stack.start("gateway", "gateway")
        await stack.start("scheduler", "scheduler")
        channel = grpc.aio.insecure_channel(stack.grpc_addr)
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        unary = await self.submit_unary()
        await self.submit_bulk(stub)
        backlog = self.finished.count + unary + self.sizes.bulk
        await self.start_workers(2)
        started = time.perf_counter()
        with CpuMeter(stack) as meter:
            await self.finished.until(backlog)
        elapsed = time.perf_counter() - started
        self.figures["backlog_jobs_per_s"] = (unary + self.sizes.bulk) / elapsed
        self.figures["backlog_cpu_us_per_job"] = self.per_job_us(meter, unary + self.sizes.bulk)
        await self.drain(stub, "drain", self.sizes.drain)
        # The drain compared with BullMQ's, in the state the drain above found (later scenarios leave the
        # gateway a larger heap and the events stream fuller).
        await self.task_drain(nc, stub)
        await self.start_workers(2, stub)
        await self.round_trip(stub)
        await self.round_trip(stub, "run_round_trip", one_call=True)
        await self.open_loop(stub, self.figures["drain_jobs_per_s"] / 2)
        await self.watchers(nc, stub)
        for workers in (1, 2, 4):
            await self.start_workers(workers, stub)
            await self.drain(stub, f"scale_{workers}w", self.sizes.scale)
        if self.stack.mongo_url:
            await self.scale_on_mongo(stub)
        await self.sync_costs(nc, stub)
        await channel.close()
        await nc.close()
        return self.figures

    async def task_drain(self, nc: Client, stub: job_service_pb2_grpc.JobServiceStub) -> None:
        """The drain again with task jobs, run by two processes of the bench's pool instead of generators."""
        for name in [n for n in self.stack.children if n.startswith("generator")]:
            await self.stack.stop(name)
        for i in range(2):
            await self.start_pool(nc, f"pool{i}", "bench.echo", concurrency=64)
        target = self.finished.count + 100
        await self.bulk(stub, 100, task_request)
        await self.finished.until(target)
        await self.drain(stub, "task_drain", self.sizes.drain, task_request)
        for i in range(2):
            await self.stack.stop(f"pool{i}")

    async def sync_costs(self, nc: Client, stub: job_service_pb2_grpc.JobServiceStub) -> None:
        """The no-op drain and round trip three ways, one after another at the end of the run, each with a gateway
        and pools started afresh: as the other scenarios run (JetStream's own 2-minute sync, the embedded store's
        WAL left to the OS: SYLLABUS_NATS_SYNC=default, SYLLABUS_STORE_SYNC=normal), with the store syncing its WAL
        at each commit, and with nats-server syncing before every acknowledgement too (`syllabus up`'s defaults)."""
        nats = self.stack.nats
        assert nats is not None
        for name in [n for n in self.stack.children if n.startswith("generator")]:
            await self.stack.stop(name)
        for scenario, nats_sync, store_sync in SYNC_SCENARIOS:
            await self.stack.stop("gateway")
            if nats.sync != nats_sync:
                nats.sync = nats_sync
                # Same port and store: the scheduler and the bench's connection reconnect by themselves.
                await nats.restart()
            env = {"SYLLABUS_STORE_SYNC": store_sync}
            await self.stack.start("gateway", "gateway", env)
            for i in range(2):
                await self.start_pool(nc, f"pool{i}", "bench.echo", concurrency=64, env=env)
            target = self.finished.count + 100
            await self.bulk(stub, 100, task_request)
            await self.finished.until(target)
            await self.drain(stub, f"{scenario}_drain", self.sizes.drain, task_request)
            await self.round_trip(stub, f"{scenario}_round_trip", task_request)
            for i in range(2):
                await self.stack.stop(f"pool{i}")

    async def start_pool(
        self, nc: Client, name: str, task: str, concurrency: int, env: dict[str, str] | None = None
    ) -> None:
        """A process of bench.tasks' pool, returned once `task` is declared (jobs of it are accepted)."""
        kv = await nc.jetstream().key_value(self.stack.topology.tasks_bucket)
        watcher = await kv.watch(task)
        await self.stack.start(
            name, "worker bench.tasks:app", {"SYLLABUS_WORKER_CONCURRENCY": str(concurrency), **(env or {})}
        )
        async for entry in watcher:
            if entry is not None and entry.value:
                break
        await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py leaves it unannotated

    async def scale_on_mongo(self, stub: job_service_pb2_grpc.JobServiceStub) -> None:
        """The drain, the round trip and the scaling drain again with the gateway and workers on MongoDB
        (SYLLABUS_MONGO_URL was set)."""
        self.store_env = {"SYLLABUS_MONGO_URL": self.stack.mongo_url, "SYLLABUS_MONGO_DATABASE": "syllabus_bench"}
        await self.stack.stop("gateway")
        await self.stack.start("gateway", "gateway", self.store_env)
        await self.start_workers(2, stub)
        await self.drain(stub, "mongo_drain", self.sizes.drain)
        await self.round_trip(stub, "mongo_round_trip")
        for workers in (1, 2, 4):
            await self.start_workers(workers, stub)
            await self.drain(stub, f"mongo_{workers}w", self.sizes.scale)

    async def start_workers(self, count: int, stub: job_service_pb2_grpc.JobServiceStub | None = None) -> None:
        """(Re)start `count` workers; with a stub, also warm them up so no start-up CPU lands in a figure."""
        for name in [n for n in self.stack.children if n.startswith("generator")]:
            await self.stack.stop(name)
        for i in range(count):
            env = {"SYLLABUS_GENERATOR_CONCURRENCY": "64", **self.store_env}
            await self.stack.start(f"generator{i}", "generator", env)
        if stub is not None:
            target = self.finished.count + 50 * count
            await self.bulk(stub, 50 * count)
            await self.finished.until(target)

    async def raw_ceiling(self, nc: Client) -> None:
        await raw.setup(nc)
        with CpuMeter(self.stack) as meter:
            seconds = await raw.pipelined_publish(nc, self.sizes.bulk)
        self.figures["raw_publish_per_s"] = self.sizes.bulk / seconds
        await nc.jetstream().purge_stream(raw.STREAM)
        await self.stack.start("raw0", "raw-consumer")
        await self.stack.start("raw1", "raw-consumer")
        with CpuMeter(self.stack) as meter:
            seconds = await raw.drain(nc, self.sizes.drain)
        self.figures["raw_drain_jobs_per_s"] = self.sizes.drain / seconds
        self.figures["raw_drain_cpu_us_per_job"] = self.per_job_us(meter, self.sizes.drain)
        latencies = await raw.round_trips(nc, self.sizes.round_trips)
        self.figures["raw_round_trip_p50_ms"] = pct(latencies, 0.5)
        self.figures["raw_round_trip_p99_ms"] = pct(latencies, 0.99)
        await self.stack.stop("raw0")
        await self.stack.stop("raw1")
        await nc.jetstream().delete_stream(raw.STREAM)

    async def bullmq(self) -> None:
        try:
            self.figures |= await peer.measure(self.stack, self.sizes.drain, self.sizes.round_trips)
        except peer.PeerUnavailable as exc:
            print(f"BullMQ not measured: {exc}", flush=True)

    async def submit_unary(self) -> int:
        """Callers each with a connection of their own (as separate clients are), one SubmitJob after another.
        Returns how many jobs were submitted, the round not measured included."""
        latencies: list[float] = []
        per_caller = self.sizes.unary // self.sizes.callers
        # A subchannel pool per channel, or grpc would share one connection among them.
        channels = [
            grpc.aio.insecure_channel(self.stack.grpc_addr, options=[("grpc.use_local_subchannel_pool", 1)])
            for _ in range(self.sizes.callers)
        ]
        for channel in channels:
            await channel.channel_ready()

        async def caller(offset: int, stub: job_service_pb2_grpc.JobServiceStub) -> None:
            for i in range(per_caller):
                started = time.perf_counter()
                await stub.SubmitJob(request(offset + i), timeout=30)
                latencies.append((time.perf_counter() - started) * 1000)

        stubs = [job_service_pb2_grpc.JobServiceStub(channel) for channel in channels]
        # A round not measured first: the connections' first calls, and the processes started just before.
        await asyncio.gather(*(caller(c * per_caller, stub) for c, stub in enumerate(stubs)))
        latencies.clear()
        started = time.perf_counter()
        with CpuMeter(self.stack) as meter:
            await asyncio.gather(*(caller(c * per_caller, stub) for c, stub in enumerate(stubs)))
        elapsed = time.perf_counter() - started
        for channel in channels:
            await channel.close()
        jobs = per_caller * self.sizes.callers
        self.figures["submit_unary_per_s"] = jobs / elapsed
        self.figures["submit_unary_p50_ms"] = pct(latencies, 0.5)
        self.figures["submit_unary_p99_ms"] = pct(latencies, 0.99)
        self.figures["submit_unary_cpu_us_per_job"] = self.per_job_us(meter, jobs)
        self.figures["submit_unary_client_cpu_us_per_job"] = meter.client / jobs * 1e6
        self.figures["submit_unary_cpu_split_us"] = {k: round(v / jobs * 1e6) for k, v in meter.spent.items()}
        return 2 * jobs

    async def bulk(self, stub: job_service_pb2_grpc.JobServiceStub, count: int, make: Requests = request) -> None:
        batch = self.sizes.batch
        for start in range(0, count, batch):
            requests = [make(i) for i in range(start, min(count, start + batch))]
            await stub.SubmitJobs(job_service_pb2.SubmitJobsRequest(requests=requests), timeout=60)

    async def submit_bulk(self, stub: job_service_pb2_grpc.JobServiceStub) -> None:
        started = time.perf_counter()
        with CpuMeter(self.stack) as meter:
            await self.bulk(stub, self.sizes.bulk)
        elapsed = time.perf_counter() - started
        self.figures["submit_bulk_per_s"] = self.sizes.bulk / elapsed
        self.figures["submit_bulk_cpu_us_per_job"] = self.per_job_us(meter, self.sizes.bulk)

    async def drain(
        self, stub: job_service_pb2_grpc.JobServiceStub, name: str, count: int, make: Requests = request
    ) -> None:
        target = self.finished.count + count
        started = time.perf_counter()
        with CpuMeter(self.stack) as meter:
            await self.bulk(stub, count, make)
            await self.finished.until(target)
        elapsed = time.perf_counter() - started
        self.figures[f"{name}_jobs_per_s"] = count / elapsed
        self.figures[f"{name}_cpu_us_per_job"] = self.per_job_us(meter, count)
        self.figures[f"{name}_cpu_split_us"] = {k: round(v / count * 1e6) for k, v in meter.spent.items()}
        self.figures[f"{name}_client_cpu_us_per_job"] = meter.client / count * 1e6

    async def round_trip(
        self,
        stub: job_service_pb2_grpc.JobServiceStub,
        name: str = "round_trip",
        make: Requests = request,
        *,
        one_call: bool = False,
    ) -> None:
        """Sequential round trips: SubmitJob, then WatchJob until SUCCEEDED; or, `one_call`, RunJob (the job's
        answer, then its events on the same stream)."""
        latencies: list[float] = []
        stages: dict[str, list[float]] = {stage: [] for stage in ROUND_TRIP_STAGES}
        with CpuMeter(self.stack) as meter:
            for i in range(self.sizes.round_trips):
                started = time.perf_counter()
                sent = time.time_ns()
                if one_call:
                    job, answered, stamps = await _run_once(stub, make(i))
                else:
                    job = (await stub.SubmitJob(make(i), timeout=30)).job
                    answered = time.time_ns()
                    stamps = await _watch_to_success(stub, job.id)
                latencies.append((time.perf_counter() - started) * 1000)
                # Every process stamps with this machine's one wall clock, so the stamps compare.
                created = job.create_time.ToNanoseconds()
                run_began, succeeded = stamps[job_pb2.JOB_EVENT_TYPE_STARTED], stamps[job_pb2.JOB_EVENT_TYPE_SUCCEEDED]
                edges = (sent, created, answered, run_began, succeeded, time.time_ns())
                for stage, (since, until) in zip(ROUND_TRIP_STAGES, itertools.pairwise(edges), strict=True):
                    stages[stage].append((until - since) / 1e6)
        self.figures[f"{name}_p50_ms"] = pct(latencies, 0.5)
        self.figures[f"{name}_p99_ms"] = pct(latencies, 0.99)
        self.figures[f"{name}_stages_p50_ms"] = {stage: round(pct(times, 0.5), 3) for stage, times in stages.items()}
        self.figures[f"{name}_cpu_us_per_job"] = self.per_job_us(meter, self.sizes.round_trips)

    async def open_loop(self, stub: job_service_pb2_grpc.JobServiceStub, rate: float) -> None:
        """Jobs arriving at a fixed `rate` whatever the system does with them (open loop: a slow answer does not
        slow the arrivals), for `sizes.open_loop` seconds: how long from submission to start and to finish."""
        sent: dict[str, int] = {}
        calls: list[asyncio.Task[None]] = []

        async def submit(count: int, first: int) -> None:
            requests = [request(first + i) for i in range(count)]
            at = time.time_ns()
            response = await stub.SubmitJobs(job_service_pb2.SubmitJobsRequest(requests=requests), timeout=60)
            for result in response.results:
                sent[result.job.id] = at

        target = self.finished.count + round(rate * self.sizes.open_loop)
        loop = asyncio.get_running_loop()
        began = loop.time()
        submitted = 0
        self.finished.timing = True
        with CpuMeter(self.stack) as meter:
            while (elapsed := loop.time() - began) < self.sizes.open_loop:
                due = min(round(rate * self.sizes.open_loop), round(rate * elapsed))
                if due > submitted:
                    calls.append(asyncio.create_task(submit(due - submitted, submitted)))
                    submitted = due
                await asyncio.sleep(OPEN_LOOP_TICK)  # the arrival clock, not synchronisation
            rest = round(rate * self.sizes.open_loop) - submitted
            if rest > 0:
                calls.append(asyncio.create_task(submit(rest, submitted)))
            await asyncio.gather(*calls)
            await self.finished.until(target)
        self.finished.timing = False
        timed = [(sent[job], *self.finished.timed.get(job, (0, 0))) for job in sent]
        self.finished.timed.clear()
        to_start = [(started - at) / 1e6 for at, started, _ in timed if started]
        to_finish = [(ended - at) / 1e6 for at, _, ended in timed if ended]
        self.figures["open_loop_rate_per_s"] = rate
        self.figures["open_loop_jobs"] = len(timed)
        self.figures["open_loop_cpu_us_per_job"] = self.per_job_us(meter, len(timed))
        for q, label in ((0.5, "p50"), (0.99, "p99"), (0.999, "p999")):
            self.figures[f"open_loop_start_{label}_ms"] = pct(to_start, q)
            self.figures[f"open_loop_finish_{label}_ms"] = pct(to_finish, q)

    async def watchers(self, nc: Client, stub: job_service_pb2_grpc.JobServiceStub) -> None:
        """W queued jobs, each watched by its own stream on one gateway, then run at a pace (bench.tasks' paced
        task, 1,000 a second): how long their events take from the worker to each watch, and what the gateway
        holds while they are attached."""
        count = self.sizes.watchers
        for name in [n for n in self.stack.children if n.startswith("generator")]:
            await self.stack.stop(name)
        # The pool declares its tasks, then stops: the jobs wait, queued, until every watch is attached.
        await self.start_pool(nc, "pace0", "bench.pace", concurrency=5)
        await self.stack.stop("pace0")
        jobs = []
        for start in range(0, count, self.sizes.batch):
            requests = [paced_request(i) for i in range(start, min(count, start + self.sizes.batch))]
            response = await stub.SubmitJobs(job_service_pb2.SubmitJobsRequest(requests=requests), timeout=60)
            jobs += [result.job for result in response.results]
        delays: list[float] = []
        attached = 0
        wave_attached = asyncio.Event()

        async def watch(job_id: str) -> None:
            nonlocal attached
            call = stub.WatchJob(job_service_pb2.WatchJobRequest(job_id=job_id), timeout=600)
            first = True
            async for response in call:
                if first:  # QUEUED, from the job's history: the watch is attached
                    first = False
                    attached += 1
                    wave_attached.set()
                else:
                    delays.append((time.time_ns() - response.event.time.ToNanoseconds()) / 1e6)

        gateway = self.stack.children["gateway"].pid
        base_rss = rss_mb(gateway)
        target = self.finished.count + count
        tasks = []
        with CpuMeter(self.stack) as meter:
            # In waves: grpc's overload protection cancels streams that arrive faster than the server takes them
            # (about a tenth of 2,000 opened at once), as a crowd of clients would not.
            for start in range(0, count, WATCH_WAVE):
                tasks += [asyncio.create_task(watch(job.id)) for job in jobs[start : start + WATCH_WAVE]]
                while attached < len(tasks):
                    wave_attached.clear()
                    await wave_attached.wait()
            attached_rss = rss_mb(gateway)
            for i in range(2):
                await self.stack.start(f"pace{i}", "worker bench.tasks:app", {"SYLLABUS_WORKER_CONCURRENCY": "5"})
            await self.finished.until(target)
            await asyncio.gather(*tasks)
        for i in range(2):
            await self.stack.stop(f"pace{i}")
        self.figures["watchers"] = count
        self.figures["watchers_delivery_p50_ms"] = pct(delays, 0.5)
        self.figures["watchers_delivery_p99_ms"] = pct(delays, 0.99)
        self.figures["watchers_gateway_rss_mb"] = attached_rss
        self.figures["watchers_gateway_peak_rss_mb"] = rss_mb(gateway, "VmHWM")
        self.figures["watchers_gateway_rss_before_mb"] = base_rss
        self.figures["watchers_cpu_us_per_job"] = self.per_job_us(meter, count)


# The sync scenarios: name, the nats-server's sync (SYLLABUS_NATS_SYNC), the embedded store's (SYLLABUS_STORE_SYNC).
SYNC_SCENARIOS = (
    ("sync_relaxed", NATS_SYNC_DEFAULT, "normal"),
    ("sync_default", NATS_SYNC_DEFAULT, "full"),
    ("sync_always", NATS_SYNC_ALWAYS, "full"),
)
SYNC_LABELS = {
    "sync_relaxed": "NATS sync every 2 min, store NORMAL (the bench's)",
    "sync_default": "NATS sync every 2 min, store FULL",
    "sync_always": "NATS sync always, store FULL (`up`'s defaults)",
}


def machine(steal_before: tuple[int, int]) -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        model = next(
            (
                line.split(":", 1)[1].strip()
                for line in cpuinfo.read_text().splitlines()
                if line.startswith("model name")
            ),
            "",
        )
    steal, total = (after - before for after, before in zip(machine_ticks(), steal_before, strict=True))
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "steal_percent": round(100 * steal / total, 2) if total else 0.0,
    }


async def _watch_to_success(stub: job_service_pb2_grpc.JobServiceStub, job_id: str) -> dict[int, int]:
    """The job's events until SUCCEEDED, as {event type: its time in ns}."""
    stamps = {}
    async for response in stub.WatchJob(job_service_pb2.WatchJobRequest(job_id=job_id), timeout=30):
        stamps[response.event.type] = response.event.time.ToNanoseconds()
        if response.event.type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED:
            break
    return stamps


async def _run_once(
    stub: job_service_pb2_grpc.JobServiceStub, submit: job_service_pb2.SubmitJobRequest
) -> tuple[job_pb2.Job, int, dict[int, int]]:
    """One RunJob until SUCCEEDED: the job, when its answer came (ns), and {event type: its time in ns}."""
    job, answered, stamps = job_pb2.Job(), 0, {}
    run = job_service_pb2.RunJobRequest(spec=submit.spec, options=submit.options)
    async for response in stub.RunJob(run, timeout=30):
        if response.HasField("submitted"):
            job, answered = response.submitted.job, time.time_ns()
            continue
        stamps[response.event.type] = response.event.time.ToNanoseconds()
        if response.event.type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED:
            break
    return job, answered, stamps


# Syllabus's figure over the peer's, same run: for rates above 1 is better, for CPU and latency below 1 is. The
# drains compared are of jobs that do nothing, as BullMQ's and raw JetStream's do: a task of bench.tasks' pool
# (the built-in summarize_text jobs of the other drains run the offline model provider).
RATIOS = {
    "vs_bullmq_drain_rate": ("task_drain_jobs_per_s", "bullmq_drain_jobs_per_s"),
    "vs_bullmq_drain_cpu": ("task_drain_cpu_us_per_job", "bullmq_drain_cpu_us_per_job"),
    "vs_bullmq_drain_cpu_with_clients": (
        "task_drain_with_client_cpu_us_per_job",
        "bullmq_drain_with_producer_cpu_us_per_job",
    ),
    "vs_bullmq_round_trip_p50": ("round_trip_p50_ms", "bullmq_round_trip_p50_ms"),
    "vs_bullmq_round_trip_p99": ("round_trip_p99_ms", "bullmq_round_trip_p99_ms"),
    "vs_bullmq_run_round_trip_p50": ("run_round_trip_p50_ms", "bullmq_round_trip_p50_ms"),
    "vs_bullmq_run_round_trip_p99": ("run_round_trip_p99_ms", "bullmq_round_trip_p99_ms"),
    "vs_raw_drain_rate": ("task_drain_jobs_per_s", "raw_drain_jobs_per_s"),
    "vs_raw_drain_cpu": ("task_drain_cpu_us_per_job", "raw_drain_cpu_us_per_job"),
    "vs_raw_round_trip_p50": ("round_trip_p50_ms", "raw_round_trip_p50_ms"),
}

WATCHERS_TARGET = 10_000
WATCHERS_RSS_MB = 300.0
WATCHERS_DELIVERY_P99_MS = 50.0
UNARY_P99_MS = 20.0


def derived(f: dict[str, Any]) -> dict[str, Any]:
    """Sums and ratios of measured figures (only of those that were measured)."""
    out: dict[str, Any] = {}
    for drain in ("drain", "task_drain"):
        servers, client = f.get(f"{drain}_cpu_us_per_job"), f.get(f"{drain}_client_cpu_us_per_job")
        if servers is not None and client is not None:
            out[f"{drain}_with_client_cpu_us_per_job"] = servers + client
    both = {**f, **out}
    for name, (ours, theirs) in RATIOS.items():
        if both.get(ours) is not None and both.get(theirs):
            out[name] = both[ours] / both[theirs]
    return out


def targets(f: dict[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """The targets against BullMQ: (figure, Syllabus, target, met); met is None when a side was not measured."""

    def at_most(ours: str, limit: float | None) -> bool | None:
        value = f.get(ours)
        return None if value is None or limit is None else bool(value <= limit)

    def ms(key: str) -> str:
        value = f.get(key)
        return "-" if value is None else f"{value:.2f} ms"

    def us(key: str) -> str:
        value = f.get(key)
        return "-" if value is None else f"{value:,.0f} µs"

    rate, peer_rate = f.get("task_drain_jobs_per_s"), f.get("bullmq_drain_jobs_per_s")
    watchers_ok = (
        None
        if f.get("watchers_gateway_rss_mb") is None
        else f.get("watchers", 0) >= WATCHERS_TARGET
        and f["watchers_gateway_rss_mb"] <= WATCHERS_RSS_MB
        and f["watchers_delivery_p99_ms"] <= WATCHERS_DELIVERY_P99_MS
    )
    return [
        (
            "drain rate of no-op jobs, 2 workers",
            "-" if rate is None else f"{rate:,.0f} jobs/s",
            "≥ BullMQ " + ("-" if peer_rate is None else f"{peer_rate:,.0f} jobs/s"),
            None if rate is None or peer_rate is None else rate >= peer_rate,
        ),
        (
            "CPU per drained no-op job (servers)",
            us("task_drain_cpu_us_per_job"),
            f"≤ BullMQ's worker + Valkey {us('bullmq_drain_cpu_us_per_job')}",
            at_most("task_drain_cpu_us_per_job", f.get("bullmq_drain_cpu_us_per_job")),
        ),
        (
            "CPU per drained no-op job (whole system: + client)",
            us("task_drain_with_client_cpu_us_per_job"),
            f"≤ BullMQ's + its producer {us('bullmq_drain_with_producer_cpu_us_per_job')}",
            at_most("task_drain_with_client_cpu_us_per_job", f.get("bullmq_drain_with_producer_cpu_us_per_job")),
        ),
        (
            "round trip p50",
            ms("round_trip_p50_ms"),
            f"≤ BullMQ {ms('bullmq_round_trip_p50_ms')}",
            at_most("round_trip_p50_ms", f.get("bullmq_round_trip_p50_ms")),
        ),
        (
            "round trip p99",
            ms("round_trip_p99_ms"),
            f"≤ BullMQ {ms('bullmq_round_trip_p99_ms')}",
            at_most("round_trip_p99_ms", f.get("bullmq_round_trip_p99_ms")),
        ),
        (
            "round trip p50, one RunJob call",
            ms("run_round_trip_p50_ms"),
            f"≤ BullMQ {ms('bullmq_round_trip_p50_ms')}",
            at_most("run_round_trip_p50_ms", f.get("bullmq_round_trip_p50_ms")),
        ),
        (
            "round trip p99, one RunJob call",
            ms("run_round_trip_p99_ms"),
            f"≤ BullMQ {ms('bullmq_round_trip_p99_ms')}",
            at_most("run_round_trip_p99_ms", f.get("bullmq_round_trip_p99_ms")),
        ),
        (
            f"unary SubmitJob p99, {f.get('callers', 50)} callers",
            ms("submit_unary_p99_ms"),
            f"≤ {UNARY_P99_MS:.0f} ms",
            at_most("submit_unary_p99_ms", UNARY_P99_MS),
        ),
        (
            f"{f.get('watchers', 0):,} watchers on one gateway",
            f"RSS {f.get('watchers_gateway_rss_mb') or 0:.0f} MB, delivery p99 {ms('watchers_delivery_p99_ms')}",
            f"{WATCHERS_TARGET:,} at ≤ {WATCHERS_RSS_MB:.0f} MB, p99 ≤ {WATCHERS_DELIVERY_P99_MS:.0f} ms",
            watchers_ok,
        ),
    ]


def aligned(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    out = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("-+-".join("-" * w for w in widths))
    out += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(out)


def table(f: dict[str, Any]) -> str:
    def r(key: str) -> float:
        value = f.get(key)
        return float("nan") if value is None else float(value)

    lines = [
        (
            f"submit, unary ({f.get('callers', 50)} callers)",
            f"{r('submit_unary_per_s'):,.0f} jobs/s",
            f"p50 {r('submit_unary_p50_ms'):.2f} ms, p99 {r('submit_unary_p99_ms'):.2f} ms",
            f"{r('submit_unary_cpu_us_per_job'):,.0f} µs",
        ),
        (
            "submit, bulk",
            f"{r('submit_bulk_per_s'):,.0f} jobs/s",
            f"{r('submit_bulk_per_s') / r('raw_publish_per_s'):.0%} of raw publish ({r('raw_publish_per_s'):,.0f}/s)",
            f"{r('submit_bulk_cpu_us_per_job'):,.0f} µs",
        ),
        (
            "drain, summarize_text jobs, 2 workers",
            f"{r('drain_jobs_per_s'):,.0f} jobs/s",
            f"{r('drain_jobs_per_s') / r('raw_drain_jobs_per_s'):.0%} of raw ({r('raw_drain_jobs_per_s'):,.0f}/s)",
            f"{r('drain_cpu_us_per_job'):,.0f} µs (raw {r('raw_drain_cpu_us_per_job'):,.0f}; "
            f"client {r('drain_client_cpu_us_per_job'):,.0f})",
        ),
        (
            "round trip",
            f"p50 {r('round_trip_p50_ms'):.2f} ms",
            f"p99 {r('round_trip_p99_ms'):.2f} ms "
            f"(raw p50 {r('raw_round_trip_p50_ms'):.2f}, p99 {r('raw_round_trip_p99_ms'):.2f})",
            f"{r('round_trip_cpu_us_per_job'):,.0f} µs",
        ),
        (
            "round trip, its stages (p50)",
            "",
            ", ".join(f"{stage} {ms:.2f}" for stage, ms in (f.get("round_trip_stages_p50_ms") or {}).items()),
            "",
        ),
        (
            "round trip, one RunJob call",
            f"p50 {r('run_round_trip_p50_ms'):.2f} ms",
            f"p99 {r('run_round_trip_p99_ms'):.2f} ms; stages "
            + ", ".join(f"{stage} {ms:.2f}" for stage, ms in (f.get("run_round_trip_stages_p50_ms") or {}).items()),
            f"{r('run_round_trip_cpu_us_per_job'):,.0f} µs",
        ),
        (
            f"open loop, {r('open_loop_rate_per_s'):,.0f} jobs/s arriving",
            f"{r('open_loop_jobs'):,.0f} jobs",
            f"to start p50/p99/p999 {r('open_loop_start_p50_ms'):.1f}/{r('open_loop_start_p99_ms'):.1f}/"
            f"{r('open_loop_start_p999_ms'):.1f} ms; to finish {r('open_loop_finish_p50_ms'):.1f}/"
            f"{r('open_loop_finish_p99_ms'):.1f}/{r('open_loop_finish_p999_ms'):.1f} ms",
            f"{r('open_loop_cpu_us_per_job'):,.0f} µs",
        ),
        (
            f"{f.get('watchers', 0):,} watchers",
            f"p99 {r('watchers_delivery_p99_ms'):.1f} ms",
            f"gateway RSS {r('watchers_gateway_rss_mb'):.0f} MB attached, "
            f"peak {r('watchers_gateway_peak_rss_mb'):.0f} MB",
            f"{r('watchers_cpu_us_per_job'):,.0f} µs",
        ),
    ]
    lines += [
        (
            f"drain, {w} worker{'s' if w > 1 else ''}",
            f"{r(f'scale_{w}w_jobs_per_s'):,.0f} jobs/s",
            "embedded store",
            f"{r(f'scale_{w}w_cpu_us_per_job'):,.0f} µs",
        )
        for w in (1, 2, 4)
    ]
    lines.append(
        (
            "drain, no-op task jobs, 2 pool processes",
            f"{r('task_drain_jobs_per_s'):,.0f} jobs/s",
            f"{r('task_drain_jobs_per_s') / r('raw_drain_jobs_per_s'):.0%} of raw; bench.tasks' pool",
            f"{r('task_drain_cpu_us_per_job'):,.0f} µs (client {r('task_drain_client_cpu_us_per_job'):,.0f})",
        )
    )
    baseline = r("sync_relaxed_drain_jobs_per_s")
    lines += [
        (
            f"no-op drain, {SYNC_LABELS[scenario]}",
            f"{r(f'{scenario}_drain_jobs_per_s'):,.0f} jobs/s",
            f"{r(f'{scenario}_drain_jobs_per_s') / baseline:.2f}x; round trip p50 "
            f"{r(f'{scenario}_round_trip_p50_ms'):.2f} ms, p99 {r(f'{scenario}_round_trip_p99_ms'):.2f} ms",
            f"{r(f'{scenario}_drain_cpu_us_per_job'):,.0f} µs",
        )
        for scenario, _, _ in SYNC_SCENARIOS
    ]
    if f.get("mongo_drain_jobs_per_s") is not None:
        lines += [
            (
                "MongoDB: drain, 2 workers",
                f"{r('mongo_drain_jobs_per_s'):,.0f} jobs/s",
                f"round trip p50 {r('mongo_round_trip_p50_ms'):.2f} ms, p99 {r('mongo_round_trip_p99_ms'):.2f} ms",
                f"{r('mongo_drain_cpu_us_per_job'):,.0f} µs",
            ),
            *(
                (
                    f"MongoDB: drain, {w} worker{'s' if w > 1 else ''}",
                    f"{r(f'mongo_{w}w_jobs_per_s'):,.0f} jobs/s",
                    "",
                    f"{r(f'mongo_{w}w_cpu_us_per_job'):,.0f} µs",
                )
                for w in (1, 2, 4)
            ),
        ]
    if f.get("bullmq_drain_jobs_per_s") is not None:
        lines += [
            (
                f"BullMQ drain, 1 process c={peer.CONCURRENCY}",
                f"{r('bullmq_drain_jobs_per_s'):,.0f} jobs/s",
                f"worker {r('bullmq_worker_cpu_us_per_job'):,.0f} + Valkey {r('bullmq_valkey_cpu_us_per_job'):,.0f}"
                f" + producer {r('bullmq_producer_cpu_us_per_job'):,.0f}",
                f"{r('bullmq_drain_cpu_us_per_job'):,.0f} µs",
            ),
            (
                "BullMQ round trip",
                f"p50 {r('bullmq_round_trip_p50_ms'):.2f} ms",
                f"p99 {r('bullmq_round_trip_p99_ms'):.2f} ms",
                "",
            ),
        ]
    ratio_line = (
        f"Syllabus / BullMQ (no-op jobs): drain rate {r('vs_bullmq_drain_rate'):.2f}x,"
        f" CPU per job {r('vs_bullmq_drain_cpu'):.2f}x"
        f" ({r('vs_bullmq_drain_cpu_with_clients'):.2f}x with both clients), round trip p50"
        f" {r('vs_bullmq_round_trip_p50'):.2f}x, p99 {r('vs_bullmq_round_trip_p99'):.2f}x.\n"
        f"Syllabus / raw JetStream (no-op jobs): drain rate {r('vs_raw_drain_rate'):.2f}x,"
        f" CPU per job {r('vs_raw_drain_cpu'):.2f}x,"
        f" round trip p50 {r('vs_raw_round_trip_p50'):.2f}x."
    )
    verdicts = [
        (name, ours, target, "not measured" if met is None else "met" if met else "NOT MET")
        for name, ours, target, met in targets(f)
    ]
    steal = f.get("machine", {}).get("steal_percent")
    return "\n\n".join(
        [
            aligned(("scenario", "rate", "detail", "CPU/job"), lines),
            ratio_line,
            aligned(("target", "Syllabus", "target", "verdict"), verdicts),
            f"CPU steal during the run: {steal}%",
        ]
    )


# Every key the JSON line has, measured or not (null), so lines of different commits compare key by key.
KEYS = (
    *(f"raw_{k}" for k in ("publish_per_s", "drain_jobs_per_s", "drain_cpu_us_per_job", "round_trip_p50_ms")),
    "raw_round_trip_p99_ms",
    *(
        f"bullmq_{k}"
        for k in (
            "drain_jobs_per_s",
            "drain_cpu_us_per_job",
            "drain_with_producer_cpu_us_per_job",
            "worker_cpu_us_per_job",
            "valkey_cpu_us_per_job",
            "producer_cpu_us_per_job",
            "round_trip_p50_ms",
            "round_trip_p99_ms",
        )
    ),
    *(
        f"submit_unary_{k}"
        for k in ("per_s", "p50_ms", "p99_ms", "cpu_us_per_job", "client_cpu_us_per_job", "cpu_split_us")
    ),
    "submit_bulk_per_s",
    "submit_bulk_cpu_us_per_job",
    "backlog_jobs_per_s",
    "backlog_cpu_us_per_job",
    *(
        f"{scenario}_{k}"
        for scenario in (
            "drain",
            "task_drain",
            "mongo_drain",
            *(f"{s}_{w}w" for s in ("scale", "mongo") for w in (1, 2, 4)),
            *(f"{scenario}_drain" for scenario, _, _ in SYNC_SCENARIOS),
        )
        for k in ("jobs_per_s", "cpu_us_per_job", "cpu_split_us", "client_cpu_us_per_job")
    ),
    "drain_with_client_cpu_us_per_job",
    "task_drain_with_client_cpu_us_per_job",
    *(
        f"{name}_{k}"
        for name in (
            "round_trip",
            "run_round_trip",
            "mongo_round_trip",
            *(f"{scenario}_round_trip" for scenario, _, _ in SYNC_SCENARIOS),
        )
        for k in ("p50_ms", "p99_ms", "cpu_us_per_job", "stages_p50_ms")
    ),
    "open_loop_rate_per_s",
    "open_loop_jobs",
    "open_loop_cpu_us_per_job",
    *(f"open_loop_{edge}_{q}_ms" for edge in ("start", "finish") for q in ("p50", "p99", "p999")),
    "watchers",
    *(
        f"watchers_{k}"
        for k in (
            "delivery_p50_ms",
            "delivery_p99_ms",
            "gateway_rss_mb",
            "gateway_peak_rss_mb",
            "gateway_rss_before_mb",
        )
    ),
    "watchers_cpu_us_per_job",
    *RATIOS,
)


async def run(sizes: Sizes) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="syllabus-bench-") as home:
        stack = Stack(Path(home))
        await stack.start_servers()
        try:
            figures = await Bench(stack, sizes).run()
        finally:
            await stack.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller counts: under a minute")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    ticks = machine_ticks()
    figures = asyncio.run(run(sizes))
    figures |= derived(figures)
    figures = dict.fromkeys(KEYS) | figures
    figures["callers"] = sizes.callers
    figures["machine"] = machine(ticks)
    figures["mode"] = "quick" if args.quick else "full"
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(table(figures))
    print(json.dumps(figures, sort_keys=True, default=lambda v: round(v, 3)))
    return 0
