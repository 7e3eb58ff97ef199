"""Ports for the tests that cannot let a server pick its own (port 0) and read it back.

A port found free and handed on can be taken before it is used: by a server binding port 0 or by an outgoing
connection, both of which the kernel gives ports of its ephemeral range, or by another test. So these ports
come from outside that range, this process never hands one out twice, and where a test only needs a port
nobody listens on, it holds the port bound for as long as it needs it. Under pytest-xdist each worker process
takes its own residue class of ports, so two workers never hand out the same one.
"""

from __future__ import annotations

import contextlib
import os
import random
import socket
from collections.abc import Iterator
from pathlib import Path

HOST = "127.0.0.1"
_LOWEST = 10_000
_handed_out: set[int] = set()


def _ephemeral() -> range:
    try:
        low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    except (OSError, ValueError):
        low, high = 32768, 60999  # Linux's default
    return range(low, high + 1)


def _share() -> tuple[int, int]:
    """This process's share of the ports: (its index, how many workers share them)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    return int(worker.removeprefix("gw")), workers


def _candidates() -> list[int]:
    ephemeral = _ephemeral()
    index, workers = _share()
    ports = [
        port for port in range(_LOWEST + index, 65536, workers) if port not in ephemeral and port not in _handed_out
    ]
    random.shuffle(ports)
    return ports


def _bind(port: int, *, shared: bool) -> socket.socket | None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if shared:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        return None
    return sock


def _bound(*, shared: bool) -> socket.socket:
    for port in _candidates():
        sock = _bind(port, shared=shared)
        if sock is not None:
            _handed_out.add(port)
            return sock
    raise RuntimeError("no free port outside the ephemeral range")


def unassigned_port() -> int:
    """A port free now that nothing else in the system is handed meanwhile (for a process told its port)."""
    with _bound(shared=False) as sock:
        port: int = sock.getsockname()[1]
    return port


@contextlib.contextmanager
def held_port(*, shared: bool = False) -> Iterator[int]:
    """A port bound, but not listened on, for the block's duration: connecting to it is refused.

    With shared, sockets that set SO_REUSEPORT (a gRPC server does) can listen there too, so a test's own server
    can stop and start again on it while no other program can take it in between.
    """
    with _bound(shared=shared) as sock:
        port: int = sock.getsockname()[1]
        yield port
