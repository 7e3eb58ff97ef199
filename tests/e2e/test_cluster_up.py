"""`syllabus up --cluster 3` as an operator rehearses a deployment across machines: three nats-servers with every
stream in three replicas, two processes of each worker service, and a course that completes, each of its jobs
once, while the node leading the jobs stream is killed and started again by `up`, and then while the stream's
leader is moved on purpose. The model holds every lesson call until both faults are over, so they land with
the course's lessons running."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
from pathlib import Path

import grpc
import nats
import pytest
from nats.aio.client import Client

from renderer.documents import FORMATS
from syllabus.client import SyllabusClient
from syllabus.topology import Topology
from syllabus.v1 import course_service_pb2, course_service_pb2_grpc, job_pb2
from tests.conditions import eventually
from tests.e2e.conftest import Stack, running_stack
from tests.e2e.test_fault_scenarios import QUICK, SETTLE, CourseModel, course_writes
from tests.ledger import Ledger

pytestmark = pytest.mark.e2e

MODULES = 3
TOPOLOGY = Topology(replicas=3)
# A leader elected after a member died or stepped down: generous, a healthy cluster takes seconds.
ELECTION = 60.0


def log_lines(stack: Stack) -> list[str]:
    return stack.log.read_text(errors="replace").splitlines()


def started(stack: Stack, member: str, after: int = 0) -> int | None:
    """The pid `up` last said it started `member` with (after line `after`), or None."""
    pattern = re.compile(rf"syllabus\.up: {re.escape(member)} started \(pid (\d+)\)")
    pids = [int(m.group(1)) for line in log_lines(stack)[after:] if (m := pattern.search(line))]
    return pids[-1] if pids else None


def nats_urls(stack: Stack) -> str:
    for line in log_lines(stack):
        if line.startswith("  NATS   "):
            return line.split()[1]
    raise AssertionError(f"no NATS line in the banner:\n{stack.log_tail()}")


async def leader(nc: Client, stream: str) -> str:
    """The member leading `stream` with every replica current, or "" while it is not so."""
    try:
        info = await nc.jetstream().stream_info(stream)
    except Exception:
        return ""
    cluster = info.cluster
    if cluster is None or not cluster.leader or len(cluster.replicas or []) != TOPOLOGY.replicas - 1:
        return ""
    return cluster.leader if all(replica.current for replica in cluster.replicas or []) else ""


async def settled_leader(nc: Client, stream: str, other_than: str = "") -> str:
    found: list[str] = []

    async def elected() -> bool:
        found[:] = [await leader(nc, stream)]
        return found[0] not in ("", other_than)

    await eventually(elected, timeout=ELECTION)
    return found[0]


async def test_a_course_completes_while_a_nats_node_stops_and_the_stream_leader_moves(tmp_path: Path) -> None:
    model = CourseModel(hold=MODULES)
    await model.api.start()
    try:
        async with running_stack(tmp_path, QUICK | model.env(), args=("--cluster", "3")) as stack:
            await course_through_faults(stack, model)
    finally:
        await model.api.stop()


async def course_through_faults(stack: Stack, model: CourseModel) -> None:
    async def banner() -> bool:
        # The gateway answers a moment before `up` prints its banner.
        return "Syllabus is up." in log_lines(stack)

    await eventually(banner)
    text = "\n".join(log_lines(stack))
    assert "a cluster (nats-n1, nats-n2, nats-n3), every stream and bucket in 3 replicas" in text, stack.log_tail()
    for process in ("generator-1", "generator-2", "renderer-1", "renderer-2"):
        assert started(stack, process) is not None, stack.log_tail()
    nc = await nats.connect(servers=nats_urls(stack).split(","), max_reconnect_attempts=-1, reconnect_time_wait=0.2)
    channel = grpc.aio.insecure_channel(stack.grpc_addr)
    async with SyllabusClient.connect(stack.grpc_addr, timeout=30) as client:
        try:
            for stream in (TOPOLOGY.jobs_stream, TOPOLOGY.events_stream):
                info = await nc.jetstream().stream_info(stream)
                assert info.config.num_replicas == 3, (stream, info.config)
            ledger = Ledger(client)
            courses = course_service_pb2_grpc.CourseServiceStub(channel)
            answer = await courses.CreateCourse(
                course_service_pb2.CreateCourseRequest(
                    course=job_pb2.GenerateCourse(prompt="Queues that survive their brokers", modules=MODULES),
                    options=ledger.options(),
                ),
                timeout=30,
            )
            ledger.record(answer.job)
            # Every lesson is running, its model call held.
            await asyncio.wait_for(model.holding.wait(), SETTLE)

            # 1. The node leading the jobs stream dies; another takes the lead, and `up` starts the node again.
            first = await settled_leader(nc, TOPOLOGY.jobs_stream)
            mark = len(log_lines(stack))
            pid = started(stack, f"nats-{first}")
            assert pid is not None
            os.kill(pid, signal.SIGKILL)

            async def back() -> bool:
                return started(stack, f"nats-{first}", after=mark) is not None

            await eventually(back, timeout=SETTLE)
            # Caught up: three current replicas again.
            await settled_leader(nc, TOPOLOGY.jobs_stream)

            # 2. The leader of the jobs stream, and of the events stream, moves on purpose.
            for stream in (TOPOLOGY.jobs_stream, TOPOLOGY.events_stream):
                before = await settled_leader(nc, stream)
                reply = await nc.request(f"$JS.API.STREAM.LEADER.STEPDOWN.{stream}", b"", timeout=10)
                assert json.loads(reply.data).get("success") is True, reply.data
                assert await settled_leader(nc, stream, other_than=before) != before

            model.api.release()
            tally = await ledger.settle(SETTLE)
            assert tally.completed == 1, ledger.unfinished()
            for job in list(ledger.jobs.values()):
                ledger.record(job)
            everything = await ledger.settle(SETTLE)
            # The course, a lesson and a quiz per module, its documents: each accepted job completed, once.
            assert everything.accepted == 1 + 2 * MODULES + 1
            assert everything.completed == everything.accepted, ledger.unfinished()
            assert (everything.duplicated, everything.lost, everything.failed) == (0, 0, 0)
            print(everything.line("3-node cluster under `up`: leader node killed and back, leaders moved"))
            course = (
                await courses.GetCourse(course_service_pb2.GetCourseRequest(course_id=answer.course.id), timeout=30)
            ).course
            assert all(module.HasField("lesson") and module.HasField("quiz") for module in course.modules)
            assert sorted(document.format for document in course.documents) == sorted(FORMATS)
            # Each part stored once: its creation, the outline, each lesson and quiz, the documents.
            writes = await asyncio.to_thread(course_writes, Path(stack.env["SYLLABUS_HOME"]) / "store.db")
            assert writes[answer.course.id] == 3 + 2 * MODULES, writes
            assert [line for line in log_lines(stack) if "Traceback" in line] == []
        finally:
            await nc.close()
            await channel.close()
