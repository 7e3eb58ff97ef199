"""`syllabus probe`: this machine's service ready (or alive), asked at its status server, as an exit code.

For health checks that run a command inside the service's container (Docker's HEALTHCHECK, compose's
`healthcheck`): the status server's address comes from the same SYLLABUS_METRICS_ADDR the service listens on.
"""

from __future__ import annotations

import argparse
import sys
import urllib.error
import urllib.request
from typing import Any

from syllabus.config import ConfigError, MetricsConfig
from syllabus.status import LIVE, READY

WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def register(subparsers: argparse._SubParsersAction[Any]) -> None:
    parser = subparsers.add_parser(
        "probe",
        help="exit 0 if the service on this machine is ready (its status server's /readyz), else 1",
        description="Ask the status server on SYLLABUS_METRICS_ADDR whether its service is ready (/readyz) or, "
        "with --live, alive (/healthz). Prints one line; exit 0 yes, 1 no.",
    )
    parser.add_argument("--live", action="store_true", help="ask /healthz (alive) instead of /readyz (ready)")
    parser.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS", help="how long to wait (3)")
    parser.set_defaults(func=_probe)


def status_url(addr: str, path: str) -> str:
    """The status page at `addr` as reached from this machine: a wildcard listener by loopback."""
    host, _, port = addr.rpartition(":")
    if host in WILDCARDS:
        host = "127.0.0.1"
    return f"http://{host}:{port}{path}"


def _probe(args: argparse.Namespace) -> int:
    # Exit 1 (unhealthy), never 2: Docker reserves a health check's exit code 2.
    try:
        addr = MetricsConfig.from_env().addr
    except ConfigError as exc:
        print(f"syllabus probe: {exc}", file=sys.stderr)
        return 1
    if not addr:
        print("syllabus probe: SYLLABUS_METRICS_ADDR is not set: the service has no status server", file=sys.stderr)
        return 1
    url = status_url(addr, LIVE if args.live else READY)
    try:
        with urllib.request.urlopen(url, timeout=args.timeout) as answer:
            print(f"{url}: {answer.read().decode(errors='replace').strip()}")
            return 0
    except urllib.error.HTTPError as exc:
        print(f"{url}: {exc.code} {exc.read().decode(errors='replace').strip()}", file=sys.stderr)
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        print(f"{url}: no answer ({reason})", file=sys.stderr)
    return 1
