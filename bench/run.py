"""`python -m bench [--quick]`: throughput, latency, CPU and memory of the pipeline beside raw JetStream.

Starts its own NATS and Valkey and the services as real processes in a temporary home, runs every scenario
in one go on this machine, prints a table, then one line of JSON with every figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import nats
from google.protobuf.timestamp_pb2 import Timestamp
from nats.aio.client import Client
from nats.aio.msg import Msg

from bench import raw
from bench.processes import CpuMeter, Stack, rss_mb
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


QUICK = Sizes(unary=1000, callers=50, bulk=4000, batch=500, drain=4000, round_trips=100, watchers=200, scale=2000)
FULL = Sizes(unary=5000, callers=50, bulk=20000, batch=500, drain=20000, round_trips=500, watchers=1000, scale=10000)
TEXT = "Syllabus moves typed jobs through JetStream. Workers summarize this. It is short."


def request(i: int) -> job_service_pb2.SubmitJobRequest:
    return job_service_pb2.SubmitJobRequest(
        spec=job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text=f"{TEXT} {i}", max_words=8))
    )


def task_request(i: int) -> job_service_pb2.SubmitJobRequest:
    """A job of bench.tasks' no-op task."""
    spec = job_pb2.JobSpec(task=job_pb2.Task(name="bench.echo"))
    spec.task.json.update({"i": i})
    return job_service_pb2.SubmitJobRequest(spec=spec)


Requests = Callable[[int], job_service_pb2.SubmitJobRequest]


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


class Finished:
    """Counts SUCCEEDED events off NATS (core subscription, so the bench adds nothing to the pipeline)."""

    def __init__(self) -> None:
        self.count = 0
        self._waiters: list[tuple[int, asyncio.Event]] = []

    async def on_event(self, msg: Msg) -> None:
        event = job_pb2.JobEvent.FromString(msg.data)
        if event.type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED:
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
        nc = await nats.connect(stack.nats.url, name="bench")
        await nc.subscribe(
            stack.topology.events_subjects, cb=self.finished.on_event, pending_msgs_limit=-1, pending_bytes_limit=-1
        )
        await self.raw_ceiling(nc)
        await stack.start("gateway", "gateway")
        await stack.start("scheduler", "scheduler")
        channel = grpc.aio.insecure_channel(stack.grpc_addr)
        stub = job_service_pb2_grpc.JobServiceStub(channel)
        await self.submit_unary(stub)
        await self.submit_bulk(stub)
        backlog = self.finished.count + self.sizes.unary + self.sizes.bulk
        await self.start_workers(2)
        started = time.perf_counter()
        with CpuMeter(stack) as meter:
            await self.finished.until(backlog)
        elapsed = time.perf_counter() - started
        self.figures["backlog_jobs_per_s"] = (self.sizes.unary + self.sizes.bulk) / elapsed
        self.figures["backlog_cpu_us_per_job"] = self.per_job_us(meter, self.sizes.unary + self.sizes.bulk)
        await self.drain(stub, "drain", self.sizes.drain)
        await self.round_trip(stub)
        await self.watchers(stub)
        for workers in (1, 2, 4):
            await self.start_workers(workers, stub)
            await self.drain(stub, f"scale_{workers}w", self.sizes.scale)
        await self.task_drain(nc, stub)
        if self.stack.mongo_url:
            await self.scale_on_mongo(stub)
        await channel.close()
        await nc.close()
        return self.figures

    async def task_drain(self, nc: Client, stub: job_service_pb2_grpc.JobServiceStub) -> None:
        """The drain again with task jobs, run by two processes of the bench's pool instead of generators."""
        for name in [n for n in self.stack.children if n.startswith("generator")]:
            await self.stack.stop(name)
        kv = await nc.jetstream().key_value(self.stack.topology.tasks_bucket)
        watcher = await kv.watch("bench.echo")
        for i in range(2):
            await self.stack.start(f"pool{i}", "worker bench.tasks:app", {"SYLLABUS_WORKER_CONCURRENCY": "64"})
        async for entry in watcher:
            if entry is not None and entry.value:
                break
        await watcher.stop()
        target = self.finished.count + 100
        await self.bulk(stub, 100, task_request)
        await self.finished.until(target)
        await self.drain(stub, "task_drain", self.sizes.drain, task_request)

    async def scale_on_mongo(self, stub: job_service_pb2_grpc.JobServiceStub) -> None:
        """The same scaling drain with the gateway and workers on MongoDB (SYLLABUS_MONGO_URL was set)."""
        self.store_env = {"SYLLABUS_MONGO_URL": self.stack.mongo_url, "SYLLABUS_MONGO_DATABASE": "syllabus_bench"}
        await self.stack.stop("gateway")
        await self.stack.start("gateway", "gateway", self.store_env)
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

    async def submit_unary(self, stub: job_service_pb2_grpc.JobServiceStub) -> None:
        latencies: list[float] = []
        per_caller = self.sizes.unary // self.sizes.callers

        async def caller(offset: int) -> None:
            for i in range(per_caller):
                started = time.perf_counter()
                await stub.SubmitJob(request(offset + i), timeout=30)
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        with CpuMeter(self.stack) as meter:
            await asyncio.gather(*(caller(c * per_caller) for c in range(self.sizes.callers)))
        elapsed = time.perf_counter() - started
        jobs = per_caller * self.sizes.callers
        self.figures["submit_unary_per_s"] = jobs / elapsed
        self.figures["submit_unary_p50_ms"] = pct(latencies, 0.5)
        self.figures["submit_unary_p99_ms"] = pct(latencies, 0.99)
        self.figures["submit_unary_cpu_us_per_job"] = self.per_job_us(meter, jobs)

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

    async def round_trip(self, stub: job_service_pb2_grpc.JobServiceStub) -> None:
        latencies: list[float] = []
        with CpuMeter(self.stack) as meter:
            for i in range(self.sizes.round_trips):
                started = time.perf_counter()
                job = (await stub.SubmitJob(request(i), timeout=30)).job
                async for response in stub.WatchJob(job_service_pb2.WatchJobRequest(job_id=job.id), timeout=30):
                    if response.event.type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED:
                        break
                latencies.append((time.perf_counter() - started) * 1000)
        self.figures["round_trip_p50_ms"] = pct(latencies, 0.5)
        self.figures["round_trip_p99_ms"] = pct(latencies, 0.99)
        self.figures["round_trip_cpu_us_per_job"] = self.per_job_us(meter, self.sizes.round_trips)

    async def watchers(self, stub: job_service_pb2_grpc.JobServiceStub) -> None:
        """W jobs due in a few seconds, each watched by its own stream: delivery delay of their events."""
        count = self.sizes.watchers
        run_at = Timestamp()
        run_at.FromNanoseconds(time.time_ns() + 4_000_000_000)
        jobs = []
        for start in range(0, count, self.sizes.batch):
            requests = [request(i) for i in range(start, min(count, start + self.sizes.batch))]
            for r in requests:
                r.options.run_at.CopyFrom(run_at)
            response = await stub.SubmitJobs(job_service_pb2.SubmitJobsRequest(requests=requests), timeout=60)
            jobs += [result.job for result in response.results]
        delays: list[float] = []
        attached = 0
        all_attached = asyncio.Event()

        async def watch(job_id: str) -> None:
            nonlocal attached
            call = stub.WatchJob(job_service_pb2.WatchJobRequest(job_id=job_id), timeout=120)
            first = True
            async for response in call:
                if first:
                    first = False
                    attached += 1
                    if attached == count:
                        all_attached.set()
                if response.event.type != job_pb2.JOB_EVENT_TYPE_SCHEDULED:
                    delays.append((time.time_ns() - response.event.time.ToNanoseconds()) / 1e6)

        gateway = self.stack.children["gateway"].pid
        base_rss = rss_mb(gateway)
        with CpuMeter(self.stack) as meter:
            tasks = [asyncio.create_task(watch(job.id)) for job in jobs]
            await all_attached.wait()
            attached_rss = rss_mb(gateway)
            await asyncio.gather(*tasks)
        self.figures["watchers"] = count
        self.figures["watchers_delivery_p50_ms"] = pct(delays, 0.5)
        self.figures["watchers_delivery_p99_ms"] = pct(delays, 0.99)
        self.figures["watchers_gateway_rss_mb"] = attached_rss
        self.figures["watchers_gateway_rss_before_mb"] = base_rss
        self.figures["watchers_cpu_us_per_job"] = self.per_job_us(meter, count)


def machine() -> dict[str, Any]:
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
    return {"cpus": os.cpu_count(), "cpu_model": model, "python": platform.python_version()}


def table(f: dict[str, Any]) -> str:
    def r(key: str) -> float:
        return float(f.get(key, float("nan")))

    lines = [
        (
            "submit, unary (50 callers)",
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
            "drain, 2 workers",
            f"{r('drain_jobs_per_s'):,.0f} jobs/s",
            f"{r('drain_jobs_per_s') / r('raw_drain_jobs_per_s'):.0%} of raw ({r('raw_drain_jobs_per_s'):,.0f}/s)",
            f"{r('drain_cpu_us_per_job'):,.0f} µs (raw {r('raw_drain_cpu_us_per_job'):,.0f})",
        ),
        (
            "round trip",
            f"p50 {r('round_trip_p50_ms'):.2f} ms",
            f"p99 {r('round_trip_p99_ms'):.2f} ms "
            f"(raw p50 {r('raw_round_trip_p50_ms'):.2f}, p99 {r('raw_round_trip_p99_ms'):.2f})",
            f"{r('round_trip_cpu_us_per_job'):,.0f} µs",
        ),
        (
            f"{f.get('watchers', 0)} watchers",
            f"p99 {r('watchers_delivery_p99_ms'):.1f} ms",
            f"gateway RSS {r('watchers_gateway_rss_mb'):.0f} MB",
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
            "drain, task jobs, 2 pool processes",
            f"{r('task_drain_jobs_per_s'):,.0f} jobs/s",
            "a no-op task (bench.tasks)",
            f"{r('task_drain_cpu_us_per_job'):,.0f} µs",
        )
    )
    widths = [max(len(row[i]) for row in lines) for i in range(4)]
    header = ("scenario", "rate", "detail", "CPU/job")
    widths = [max(w, len(h)) for w, h in zip(widths, header, strict=True)]
    out = [" | ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out.append("-+-".join("-" * w for w in widths))
    out += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in lines]
    return "\n".join(out)


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
    figures = asyncio.run(run(sizes))
    figures["machine"] = machine()
    figures["mode"] = "quick" if args.quick else "full"
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(table(figures))
    print(json.dumps(figures, sort_keys=True, default=lambda v: round(v, 3)))
    return 0
