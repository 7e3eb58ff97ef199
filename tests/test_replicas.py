"""On a NATS cluster every stream and bucket is made with SYLLABUS_STREAM_REPLICAS copies, and a process started
without the setting does not take copies away."""

from __future__ import annotations

from pathlib import Path

from nats.aio.client import Client

from syllabus.jetstream import ensure_topology
from syllabus.topology import Topology
from tests.natscluster import running_cluster


def stored_streams(topology: Topology) -> list[str]:
    """Every stream ensure_topology makes: its own, and those behind the buckets and the object store."""
    buckets = (topology.tasks_bucket, topology.workers_bucket, topology.paused_bucket)
    return [
        topology.jobs_stream,
        topology.scheduled_stream,
        topology.events_stream,
        topology.dlq_stream,
        topology.advisories_stream,
        *(f"KV_{bucket}" for bucket in buckets),
        f"OBJ_{topology.artifacts_bucket}",
    ]


async def replica_counts(nc: Client, topology: Topology) -> dict[str, tuple[int, int]]:
    """Per stream: the replicas asked for, and the members that hold one (the leader and its followers)."""
    js = nc.jetstream()
    counts = {}
    for stream in stored_streams(topology):
        info = await js.stream_info(stream)
        assert info.cluster is not None
        held = (1 if info.cluster.leader else 0) + len(info.cluster.replicas or [])
        counts[stream] = (info.config.num_replicas or 1, held)
    return counts


async def test_streams_and_buckets_get_the_replicas_asked_and_keep_them(tmp_path: Path) -> None:
    async with running_cluster(tmp_path) as cluster:
        nc = await cluster.connect()
        try:
            await ensure_topology(nc, Topology("rep", replicas=3))
            expected = dict.fromkeys(stored_streams(Topology("rep")), (3, 3))
            assert await replica_counts(nc, Topology("rep")) == expected

            # Another process (a worker started without SYLLABUS_STREAM_REPLICAS) declares the topology again.
            await ensure_topology(nc, Topology("rep"))
            assert await replica_counts(nc, Topology("rep")) == expected

            # A namespace declared with one replica is kept on one member.
            await ensure_topology(nc, Topology("one"))
            assert set((await replica_counts(nc, Topology("one"))).values()) == {(1, 1)}
        finally:
            await nc.close()
