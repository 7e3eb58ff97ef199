"""Syllabus on a 3-node NATS cluster with every stream and bucket in 3 replicas, the services as real processes
given all three URLs: 1,000 jobs submitted while a follower of the JOBS stream is SIGKILLed and restarted, then
the stream's leader is SIGKILLed. Every accepted job succeeds exactly once; none is lost."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from nats.aio.client import Client
from nats.errors import Error as NatsError
from nats.js.api import DeliverPolicy

from onemachine.health import wait_healthy
from onemachine.servers import die_with_parent
from syllabus.topology import Topology
from syllabus.v1 import job_pb2, job_service_pb2, job_service_pb2_grpc
from tests.conditions import eventually
from tests.e2e.conftest import ROOT, STEP_DEADLINE, stack_env
from tests.natscluster import ELECTION_DEADLINE, NatsCluster, running_cluster

pytestmark = pytest.mark.e2e

JOBS = 1000
# Jobs offered per second (open loop), so that the faults land while submissions go on.
RATE = 80.0
IN_FLIGHT = 64
# The faults, by jobs accepted so far: a follower killed, the follower back, the leader killed.
KILL_FOLLOWER, RESTART_FOLLOWER, KILL_LEADER = 200, 400, 600
CALL_TIMEOUT = 10.0
# A caller's pause before it submits again after UNAVAILABLE (the gateway answers at once while it reconnects).
RETRY_PAUSE = 0.2
# Bounds that a healthy run stays far below: every job accepted, then every accepted job ended.
SUBMIT_DEADLINE = 60.0
SETTLE_DEADLINE = 60.0
RETRIED_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@dataclass
class Tally:
    """What the client saw: the job each key was accepted as, calls answered UNAVAILABLE or timed out."""

    accepted: dict[str, str] = field(default_factory=dict)
    retried_calls: int = 0
    # The longest a job took from its first call to its acceptance, seconds.
    longest: float = 0.0
    _waiting: list[tuple[int, asyncio.Event]] = field(default_factory=list)

    def accept(self, key: str, job_id: str) -> None:
        self.accepted[key] = job_id
        for target, reached in self._waiting:
            if len(self.accepted) >= target:
                reached.set()

    async def reached(self, count: int) -> None:
        reached = asyncio.Event()
        self._waiting.append((count, reached))
        if len(self.accepted) >= count:
            reached.set()
        await reached.wait()


@dataclass
class Service:
    name: str
    process: asyncio.subprocess.Process
    log: Path

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


@contextlib.asynccontextmanager
async def services(base: Path, env: Mapping[str, str], names: list[str]) -> AsyncIterator[dict[str, Service]]:
    """`python -m syllabus <name>` for each name, output in base/<name>.log; SIGTERMed afterwards."""
    started: dict[str, Service] = {}
    try:
        for name in names:
            log = base / f"{name}.log"
            with log.open("wb") as sink:
                process = await asyncio.create_subprocess_exec(
                    *die_with_parent([sys.executable, "-m", "syllabus", name]),
                    env=dict(env),
                    cwd=ROOT,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=sink,
                    stderr=asyncio.subprocess.STDOUT,
                )
            started[name] = Service(name, process, log)
        yield started
    finally:
        for service in started.values():
            if service.process.returncode is None:
                service.process.send_signal(signal.SIGTERM)
        for service in started.values():
            try:
                await asyncio.wait_for(service.process.wait(), STEP_DEADLINE)
            except TimeoutError:
                service.process.kill()
                await service.process.wait()


def summarize(i: int) -> job_service_pb2.SubmitJobRequest:
    request = job_service_pb2.SubmitJobRequest(
        spec=job_pb2.JobSpec(
            summarize_text=job_pb2.SummarizeText(text=f"Job {i} of the cluster test. It must run once.", max_words=8)
        )
    )
    # A client that retries an unanswered call sends the same key, so a job it was not told about is not doubled.
    request.options.idempotency_key = f"cluster-{i}"
    return request


async def submit_one(stub: job_service_pb2_grpc.JobServiceStub, i: int, tally: Tally) -> None:
    request = summarize(i)
    loop = asyncio.get_running_loop()
    first = loop.time()
    while True:
        try:
            response = await stub.SubmitJob(request, timeout=CALL_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in RETRIED_CODES:
                raise
            tally.retried_calls += 1
            await asyncio.sleep(RETRY_PAUSE)  # a client's back-off before it calls again
        else:
            tally.longest = max(tally.longest, loop.time() - first)
            tally.accept(request.options.idempotency_key, response.job.id)
            return


async def submit_all(stub: job_service_pb2_grpc.JobServiceStub, tally: Tally) -> None:
    loop = asyncio.get_running_loop()
    start = loop.time()
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def one(i: int) -> None:
        async with slots:
            await submit_one(stub, i, tally)

    async with asyncio.TaskGroup() as calls:
        for i in range(JOBS):
            # Arrivals at a fixed rate (an open loop), whatever the answers: the pace of the load, not a wait for it.
            await asyncio.sleep(max(0.0, start + i / RATE - loop.time()))
            calls.create_task(one(i))


async def stream_leader(cluster: NatsCluster, nc: Client, stream: str) -> str:
    """The member leading `stream`, or "" while the cluster cannot say (an election, a reconnect)."""
    try:
        return await cluster.stream_leader(nc, stream)
    except (NatsError, TimeoutError):
        return ""


async def all_current(nc: Client, stream: str) -> bool:
    try:
        info = await nc.jetstream().stream_info(stream)
    except (NatsError, TimeoutError):
        return False
    peers = info.cluster.replicas if info.cluster is not None else None
    return bool(peers) and all(peer.current and not peer.offline for peer in peers or [])


async def inflict(cluster: NatsCluster, nc: Client, stream: str, tally: Tally, said: list[str]) -> None:
    """The faults, each once enough jobs are in: a follower killed and restarted, then the leader killed."""
    leader = ""

    async def known_leader() -> bool:
        nonlocal leader
        leader = await stream_leader(cluster, nc, stream)
        return leader != ""

    await tally.reached(KILL_FOLLOWER)
    await eventually(known_leader, ELECTION_DEADLINE)
    follower = next(name for name in cluster.servers if name != leader)
    await cluster.kill(follower)
    said.append(f"{follower} (follower of {leader}) killed at {len(tally.accepted)} accepted")
    await tally.reached(RESTART_FOLLOWER)
    await cluster.restart(follower)
    restarted = len(tally.accepted)
    # Caught up before the leader goes: otherwise only one current copy would be left.
    await eventually(lambda: all_current(nc, stream), ELECTION_DEADLINE)
    said.append(f"{follower} restarted at {restarted}, caught up at {len(tally.accepted)}")
    await tally.reached(KILL_LEADER)
    await eventually(known_leader, ELECTION_DEADLINE)
    old = leader
    await cluster.kill(old)
    killed = asyncio.get_running_loop().time()
    said.append(f"{old} (leader) killed at {len(tally.accepted)} accepted")

    async def another_leader() -> bool:
        return await known_leader() and leader != old

    await eventually(another_leader, ELECTION_DEADLINE)
    elected = asyncio.get_running_loop().time() - killed
    said.append(f"{leader} seen leading {elected:.1f} s later ({len(tally.accepted)} accepted by then)")


async def succeeded_events(nc: Client, topology: Topology) -> collections.Counter[str]:
    """SUCCEEDED events per job id in the EVENTS stream: each is one transition (its own message id)."""
    js = nc.jetstream()
    last = (await js.stream_info(topology.events_stream)).state.last_seq
    counts: collections.Counter[str] = collections.Counter()
    sub = await js.subscribe(topology.events_subjects, ordered_consumer=True, deliver_policy=DeliverPolicy.ALL)
    try:
        while True:
            msg = await sub.next_msg(timeout=STEP_DEADLINE)
            event = job_pb2.JobEvent.FromString(msg.data)
            if event.type == job_pb2.JOB_EVENT_TYPE_SUCCEEDED:
                counts[event.job_id] += 1
            if msg.metadata.sequence.stream >= last:
                return counts
    finally:
        await sub.unsubscribe()


async def ended(stub: job_service_pb2_grpc.JobServiceStub, job_ids: set[str]) -> dict[str, job_pb2.Job]:
    """Each job as stored once all have succeeded, or as they stand after SETTLE_DEADLINE."""
    jobs: dict[str, job_pb2.Job] = {}
    waiting = set(job_ids)

    async def all_succeeded() -> bool:
        requests = [job_service_pb2.GetJobRequest(job_id=job_id) for job_id in waiting]
        for answer in await asyncio.gather(*(stub.GetJob(r, timeout=CALL_TIMEOUT) for r in requests)):
            jobs[answer.job.id] = answer.job
            if answer.job.state == job_pb2.JOB_STATE_SUCCEEDED:
                waiting.discard(answer.job.id)
        return not waiting

    with contextlib.suppress(TimeoutError):
        await eventually(all_succeeded, SETTLE_DEADLINE, every=0.5)
    return jobs


@dataclass
class Counts:
    accepted: set[str]
    completed: set[str]
    # A job whose record holds two successful attempts, or whose history two SUCCEEDED events.
    twice: set[str]
    lost: set[str]
    # Jobs that succeeded although no caller was told they were accepted.
    unaccepted: set[str]
    attempts: dict[int, int]

    @classmethod
    def of(cls, tally: Tally, jobs: dict[str, job_pb2.Job], events: collections.Counter[str]) -> Counts:
        accepted = set(tally.accepted.values())
        completed = {job_id for job_id in accepted if jobs[job_id].state == job_pb2.JOB_STATE_SUCCEEDED}
        stored_twice = {
            job_id
            for job_id in accepted
            if sum(attempt.outcome == job_pb2.JOB_STATE_SUCCEEDED for attempt in jobs[job_id].attempts) > 1
        }
        announced_twice = {job_id for job_id, count in events.items() if count > 1}
        attempts = collections.Counter(len(jobs[job_id].attempts) for job_id in accepted)
        return cls(
            accepted,
            completed,
            stored_twice | announced_twice,
            accepted - completed,
            set(events) - accepted,
            dict(sorted(attempts.items())),
        )

    def line(self, tally: Tally) -> str:
        return (
            f"accepted {len(self.accepted)} of {JOBS} ({tally.retried_calls} calls answered UNAVAILABLE or timed out"
            f" and sent again; the longest acceptance took {tally.longest:.1f} s), completed {len(self.completed)},"
            f" completed twice {len(self.twice)}, lost {len(self.lost)}; jobs by attempts {self.attempts};"
            f" succeeded without being accepted {len(self.unaccepted)}"
        )


async def test_jobs_survive_a_follower_and_then_the_leader_killed(tmp_path: Path) -> None:
    topology = Topology("", replicas=3)
    async with running_cluster(tmp_path / "cluster") as cluster:
        env = stack_env(tmp_path / "home") | {
            "SYLLABUS_NATS_URL": cluster.urls,
            "SYLLABUS_STREAM_REPLICAS": "3",
            # A job whose delivery died with a server comes again after this, not after the default 30 s.
            "SYLLABUS_GENERATOR_ACK_WAIT": "5",
        }
        nc = await cluster.connect("pytest-observer")
        try:
            async with services(tmp_path, env, ["gateway", "generator", "scheduler"]) as running:
                try:
                    await wait_healthy(env["SYLLABUS_GRPC_ADDR"], STEP_DEADLINE)
                except TimeoutError:
                    pytest.fail("the gateway did not answer:\n" + running["gateway"].tail())
                tally, said = Tally(), list[str]()
                async with grpc.aio.insecure_channel(env["SYLLABUS_GRPC_ADDR"]) as channel:
                    stub = job_service_pb2_grpc.JobServiceStub(channel)
                    try:
                        async with asyncio.timeout(SUBMIT_DEADLINE), asyncio.TaskGroup() as group:
                            group.create_task(submit_all(stub, tally))
                            group.create_task(inflict(cluster, nc, topology.jobs_stream, tally, said))
                    except TimeoutError:
                        pytest.fail(f"{len(tally.accepted)} of {JOBS} accepted in {SUBMIT_DEADLINE:.0f}s: {said}")
                    jobs = await ended(stub, set(tally.accepted.values()))
                events = await succeeded_events(nc, topology)
        finally:
            await nc.close()

    counts = Counts.of(tally, jobs, events)
    print(f"\ncluster faults: {'; '.join(said)}\n{counts.line(tally)}")
    assert len(counts.accepted) == JOBS
    assert not counts.twice, sorted(counts.twice)[:10]
    assert not counts.lost, sorted(counts.lost)[:10]
    assert not counts.unaccepted, sorted(counts.unaccepted)[:10]
