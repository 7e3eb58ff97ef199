"""Connecting to NATS and declaring the JetStream topology (streams, consumers, bucket), idempotently."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import nats
import nats.errors
from nats.aio.client import Client
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DiscardPolicy,
    KeyValueConfig,
    ObjectStoreConfig,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from nats.js.errors import APIError, BadRequestError, NotFoundError

from syllabus.apikeys import keys_bucket_config
from syllabus.config import CommonConfig, ConfigError, WorkerConfig
from syllabus.presence import workers_bucket_config
from syllabus.queuecontrol import paused_bucket_config
from syllabus.tls import client_context
from syllabus.topology import PRIORITIES, Topology, WorkQueue

log = logging.getLogger(__name__)


# Seconds between two warnings that NATS cannot be reached.
REPEAT_CONNECT_ERROR = 10.0
# Seconds within which JetStream drops a message whose Nats-Msg-Id it has already stored.
DUPLICATE_WINDOW = 120.0
# JetStream's error code for a stream of several replicas asked of a server not in a cluster.
_REPLICAS_NEED_CLUSTER = 10074


@dataclass(frozen=True)
class StreamLimits:
    """How much the JOBS queue holds before it refuses work (discard new: the caller sees RESOURCE_EXHAUSTED)."""

    max_jobs: int = 1_000_000
    max_job_bytes: int = 1 << 30
    # Nats-Msg-Id (the job id) de-duplication window of JOBS, seconds.
    duplicate_window: float = DUPLICATE_WINDOW
    # How long job events stay replayable, seconds.
    events_max_age: float = 7 * 24 * 3600.0


class _TlsOnlyClient(Client):
    """nats-py upgrades a connection to TLS only when the server's INFO asks for it: given a tls:// URL, a server
    that does not (a misconfigured one, or whoever answers in its place) would get the credentials in plaintext.
    This client refuses such a server at every (re)connect, before it sends anything."""

    async def _process_info(self, info: dict[str, Any], initial_connection: bool = False) -> None:
        server = self._current_server
        if initial_connection and server is not None and server.uri.scheme == "tls" and not info.get("tls_required"):
            where = f"{server.uri.hostname}:{server.uri.port}"
            raise nats.errors.Error(f"nats: {where} does not require TLS, and the URL asks for tls://")
        await super()._process_info(info, initial_connection)


def nats_client() -> Client:
    """A nats-py client to call connect() on, as nats.connect does, which keeps a tls:// URL on TLS."""
    return _TlsOnlyClient()


def nats_options(common: CommonConfig) -> dict[str, Any]:
    """nats.connect's TLS and credential options from the settings; a user and password, or a token, ride in the
    URL. A tls:// URL without SYLLABUS_NATS_TLS_* files verifies the server against the system's CAs."""
    options: dict[str, Any] = {}
    if common.nats_tls:
        options["tls"] = client_context(common.nats_tls, "SYLLABUS_NATS_TLS")
    if common.nats_creds:
        options["user_credentials"] = common.nats_creds
    if common.nats_nkey:
        options["nkeys_seed"] = common.nats_nkey
    return options


async def connect(
    url: str,
    name: str,
    on_change: Callable[[bool], Awaitable[None]] | None = None,
    *,
    options: Mapping[str, Any] | None = None,
) -> Client:
    """A connection that keeps (re)connecting forever; callers bound their own waits with timeouts. `options`
    are more of nats.connect's (nats_options: TLS, credentials).

    A lost connection is one warning and its return one line; `on_change` hears each (False: lost, True: back).
    """
    last_said = -REPEAT_CONNECT_ERROR
    established = lost = False
    connection: list[Client] = []

    async def on_error(exc: Exception) -> None:
        # nats-py reports every failed attempt (two a second while NATS is away): say it now and then. Once the
        # connection was up, losing it is the one warning (on_disconnected); the error that announces the loss
        # (before it) is debug detail, and the failed attempts after it are said at INFO, now and then.
        nonlocal last_said
        now = time.monotonic()
        if now - last_said >= REPEAT_CONNECT_ERROR:
            last_said = now
            level = logging.WARNING if not established else logging.INFO if lost else logging.DEBUG
            log.log(level, "NATS at %s: %s; retrying", url, exc or type(exc).__name__)

    async def on_disconnected() -> None:
        nonlocal lost
        if connection and (connection[0].is_closed or connection[0].is_draining):
            return  # closed on purpose (nats-py tells that as a disconnect too)
        if not lost:
            lost = True
            log.warning("lost the connection to NATS at %s; reconnecting", url)
            if on_change is not None:
                await on_change(False)

    async def on_reconnected() -> None:
        nonlocal lost
        lost = False
        log.info("reconnected to NATS at %s", url)
        if on_change is not None:
            await on_change(True)

    nc = nats_client()
    await nc.connect(
        servers=[part.strip() for part in url.split(",")],
        name=name,
        connect_timeout=2,
        max_reconnect_attempts=-1,
        error_cb=on_error,
        disconnected_cb=on_disconnected,
        reconnected_cb=on_reconnected,
        # Seconds, and a fraction of one is meant: nats-py's annotation says int, its code takes any number.
        **{"reconnect_time_wait": 0.5, **(options or {})},
    )
    established = True
    connection.append(nc)
    return nc


async def disconnect(nc: Client) -> None:
    """Drain the connection (what is in flight is delivered first), or close it while NATS is away: draining
    needs the server, and nats-py refuses it (ConnectionReconnectingError) while it reconnects."""
    if nc.is_connected:
        try:
            await nc.drain()
        except nats.errors.Error:
            # Lost while draining: what was in flight is redelivered, as after any lost connection.
            await nc.close()
    elif not nc.is_closed:
        await nc.close()


def _stream_configs(topology: Topology, limits: StreamLimits) -> list[StreamConfig]:
    return [
        StreamConfig(
            name=topology.jobs_stream,
            subjects=[topology.jobs_subjects],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            num_replicas=topology.replicas,
            discard=DiscardPolicy.NEW,
            max_msgs=limits.max_jobs,
            max_bytes=limits.max_job_bytes,
            duplicate_window=limits.duplicate_window,
        ),
        # Message schedules cannot live in a discard-new stream, and a schedule can only target its own stream,
        # so delayed jobs wait here and the scheduler relays each one into JOBS when its schedule fires.
        StreamConfig(
            name=topology.scheduled_stream,
            subjects=[topology.scheduled_subjects],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            num_replicas=topology.replicas,
            allow_msg_schedules=True,
            duplicate_window=limits.duplicate_window,
        ),
        StreamConfig(
            name=topology.events_stream,
            subjects=[topology.events_subjects],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=topology.replicas,
            max_age=limits.events_max_age,
            duplicate_window=limits.duplicate_window,
            allow_direct=True,
        ),
        StreamConfig(
            name=topology.dlq_stream,
            subjects=[topology.dead_letter_subjects],
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            num_replicas=topology.replicas,
            # A job has at most one dead letter: the newest replaces an older one.
            max_msgs_per_subject=1,
            duplicate_window=limits.duplicate_window,
            allow_direct=True,
        ),
        # So that none is lost while no scheduler runs: each becomes a dead letter (scheduler.advisories).
        StreamConfig(
            name=topology.advisories_stream,
            subjects=[topology.max_deliveries_subjects],
            retention=RetentionPolicy.WORK_QUEUE,
            storage=StorageType.FILE,
            num_replicas=topology.replicas,
        ),
    ]


async def ensure_topology(nc: Client, topology: Topology, limits: StreamLimits | None = None) -> None:
    """Create or update every stream and the artifacts bucket. Safe to run at every start of every process."""
    try:
        await _ensure_topology(nc, topology, limits)
    except APIError as exc:
        if exc.err_code == _REPLICAS_NEED_CLUSTER:
            raise ConfigError(
                f"SYLLABUS_STREAM_REPLICAS={topology.replicas} needs a NATS cluster, and the server at "
                f"SYLLABUS_NATS_URL runs alone ({exc.description})"
            ) from None
        raise


async def _ensure_topology(nc: Client, topology: Topology, limits: StreamLimits | None) -> None:
    js = nc.jetstream()
    for config in _stream_configs(topology, limits or StreamLimits()):
        name = str(config.name)
        try:
            info = await js.stream_info(name)
        except NotFoundError:
            try:
                await js.add_stream(config)
                log.info("created stream %s", config.name)
            except BadRequestError:
                # Another process created it between our look and our create.
                await js.update_stream(config)
        else:
            # A process started without the replica setting must not shrink a replicated stream: more copies stay.
            replicas = max(topology.replicas, info.config.num_replicas or 1)
            await js.update_stream(dataclasses.replace(config, num_replicas=replicas))
    buckets = [
        KeyValueConfig(bucket=topology.tasks_bucket, storage=StorageType.FILE, replicas=topology.replicas),
        workers_bucket_config(topology),
        paused_bucket_config(topology),
        keys_bucket_config(topology),
    ]
    for bucket in buckets:
        try:
            await js.key_value(bucket.bucket)
        except NotFoundError:
            await js.create_key_value(bucket)
    try:
        await js.object_store(topology.artifacts_bucket)
    except NotFoundError:
        await js.create_object_store(
            topology.artifacts_bucket,
            ObjectStoreConfig(bucket=topology.artifacts_bucket, storage=StorageType.FILE, replicas=topology.replicas),
        )


def _filters(subjects: tuple[str, ...]) -> dict[str, Any]:
    if len(subjects) == 1:
        return {"filter_subject": subjects[0]}
    return {"filter_subjects": list(subjects)}


def consumer_config(queue: WorkQueue, priority: str, worker: WorkerConfig) -> ConsumerConfig:
    return ConsumerConfig(
        durable_name=queue.consumer(priority),
        # One subject stays a filter_subject, as consumers made before pools had several.
        **_filters(queue.subjects[priority]),
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=worker.ack_wait,
        # Attempts are counted by the worker against each job's own max_attempts; this only bounds a message
        # that never gets an outcome (its advisory dead-letters the job: scheduler.advisories).
        max_deliver=worker.retry.max_deliveries,
        max_ack_pending=max(64, worker.concurrency * 4),
        max_waiting=512,
    )


async def ensure_consumers(nc: Client, topology: Topology, queue: WorkQueue, worker: WorkerConfig) -> None:
    """The durable pull consumers of one work queue, one per priority: created, or updated to `queue`'s filters."""
    js = nc.jetstream()
    for priority in PRIORITIES:
        await js.add_consumer(topology.jobs_stream, consumer_config(queue, priority, worker))
