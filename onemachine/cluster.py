"""A NATS cluster on loopback for `syllabus up --cluster N`: N nats-servers routed to each other, JetStream on each
with its own store, to rehearse a multi-node deployment on one machine (streams and buckets in several replicas,
a node stopped, a stream leader moved).

Route ports are chosen before the first start, since every member's configuration lists all of them; each member
then keeps its client, route and monitoring ports across restarts, so the URLs the services hold stay valid.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import nats
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError

from onemachine.servers import NatsRoutes, NatsServer, free_port

log = logging.getLogger(__name__)

# How many copies of every stream and bucket a cluster keeps unless SYLLABUS_STREAM_REPLICAS says otherwise.
DEFAULT_REPLICAS = 3
# Generous: a healthy cluster elects its JetStream meta leader within seconds.
ELECTION_TIMEOUT = 60.0


def cluster_members(
    base: Path,
    size: int,
    *,
    sync: str,
    stop_timeout: float,
    name: str = "syllabus",
    host: str = "127.0.0.1",
    port: Callable[[], int] = free_port,
) -> dict[str, NatsServer]:
    """Members named n1 ... nN, each storing under `base/nK`; `port` chooses their route ports."""
    ports = [port() for _ in range(size)]
    routes = tuple(f"nats-route://{host}:{port}" for port in ports)
    return {
        f"n{i}": NatsServer(
            base / f"n{i}",
            host=host,
            sync=sync,
            routes=NatsRoutes(name, f"n{i}", route_port, routes),
            stop_timeout=stop_timeout,
        )
        for i, route_port in enumerate(ports, start=1)
    }


async def until_jetstream_answers(url: str, timeout: float = ELECTION_TIMEOUT) -> None:
    """Return once the cluster's JetStream answers (its members have elected a meta leader); TimeoutError after
    `timeout` seconds."""
    nc = await nats.connect(servers=url.split(","), name="syllabus-up-cluster", max_reconnect_attempts=-1)
    try:
        async with asyncio.timeout(timeout):
            while True:
                try:
                    await nc.jetstream().account_info()
                    return
                except (APIError, NatsTimeout, NoRespondersError) as exc:
                    log.debug("JetStream not answering yet: %s", exc)
                # An election takes a few heartbeats; asking every 200 ms costs nothing.
                await asyncio.sleep(0.2)
    except TimeoutError:
        raise TimeoutError(f"the NATS cluster elected no JetStream leader within {timeout:.0f}s") from None
    finally:
        await nc.close()
