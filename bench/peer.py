"""BullMQ, the peer Syllabus is measured against, through the same scenarios in the same run: a drain of no-op
jobs by one Node worker process at concurrency 50, and sequential round trips (add, then see it completed).

The peer's code is bench/bullmq/peer.js, on the Valkey the bench already starts; its npm packages are installed
from the lock file on first use. The drain's CPU is the worker's and Valkey's (the servers), as Syllabus's is the
gateway's, the workers' and NATS's; the producer's own CPU (it submits and hears the completions, as the bench's
client does for Syllabus) is measured apart, and added for the whole-system figure.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from bench.percentiles import pct
from bench.processes import Child, CpuMeter, Stack

PEER = Path(__file__).resolve().parent / "bullmq"
CONCURRENCY = 50
WARM_UP = 500


class PeerUnavailable(Exception):
    """The peer cannot run here (no Node.js, or its packages did not install)."""


async def _run(*argv: str, cwd: Path = PEER) -> str:
    process = await asyncio.create_subprocess_exec(
        *argv, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise PeerUnavailable(f"{' '.join(argv[:2])} failed: {out.decode(errors='replace').strip()[-400:]}")
    return out.decode()


async def install() -> None:
    """`npm ci` once, and again only when the lock file changes."""
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise PeerUnavailable(f"{tool} is not on PATH (BullMQ runs on Node.js 18+)")
    stamp = PEER / "node_modules" / ".syllabus-lock-sha256"
    want = hashlib.sha256((PEER / "package-lock.json").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == want:
        return
    print("installing BullMQ for the peer (npm ci in bench/bullmq) ...", flush=True)
    await _run("npm", "ci", "--no-audit", "--no-fund")
    stamp.write_text(want)


async def _client(stack: Stack, command: str, queue: str, count: int) -> dict[str, Any]:
    assert stack.valkey is not None
    out = await _run("node", "peer.js", command, stack.valkey.url, queue, str(count))
    result: dict[str, Any] = json.loads(out.splitlines()[-1])
    return result


async def _beside(worker: Child, client: Awaitable[dict[str, Any]]) -> dict[str, Any]:
    """The client's result; PeerUnavailable if the worker process ends first (the client would wait forever)."""
    running = asyncio.ensure_future(client)
    exited = asyncio.ensure_future(worker.process.wait())
    await asyncio.wait({running, exited}, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        exited.cancel()
        return running.result()
    running.cancel()
    raise PeerUnavailable(f"the BullMQ worker exited with status {worker.process.returncode}")


async def measure(stack: Stack, drain: int, round_trips: int) -> dict[str, Any]:
    """The peer's figures, under the same keys as Syllabus's with a `bullmq_` prefix."""
    await install()
    assert stack.valkey is not None
    name = "bullmq-worker"
    node = shutil.which("node") or "node"  # the process wrapper runs a path, it does not search PATH
    argv = [node, str(PEER / "peer.js"), "worker", stack.valkey.url, "drain", str(CONCURRENCY)]
    worker = await stack.start_argv(name, argv)
    try:
        # Start-up and JIT warm-up stay out of the measured drain, as the Syllabus workers' do.
        await _beside(worker, _client(stack, "drain", "drain", WARM_UP))
        with CpuMeter(stack) as meter:
            drained = await _beside(worker, _client(stack, "drain", "drain", drain))
        spent = {k: v for k, v in meter.spent.items() if k in (name, "valkey")}
        trips = (await _beside(worker, _client(stack, "round-trips", "drain", round_trips)))["ms"]
    finally:
        await stack.stop(name)
    worker_us, valkey_us = (spent.get(k, 0.0) / drain * 1e6 for k in (name, "valkey"))
    producer_us = drained["cpu_seconds"] / drain * 1e6
    return {
        "bullmq_drain_jobs_per_s": drain / drained["seconds"],
        "bullmq_drain_cpu_us_per_job": worker_us + valkey_us,
        "bullmq_drain_with_producer_cpu_us_per_job": worker_us + valkey_us + producer_us,
        "bullmq_worker_cpu_us_per_job": worker_us,
        "bullmq_valkey_cpu_us_per_job": valkey_us,
        "bullmq_producer_cpu_us_per_job": producer_us,
        "bullmq_round_trip_p50_ms": pct(trips, 0.5),
        "bullmq_round_trip_p99_ms": pct(trips, 0.99),
    }
