"""How the course commands end when the gateway cannot answer or refuses: one line (and one per bad field) on
stderr, and the exit code: 2 for invalid input, 1 for anything else."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any

import grpc

from syllabus.client import GatewayUnreachable, SyllabusError

EXIT_FAILED = 1
EXIT_USAGE = 2


def run_against_gateway(call: Coroutine[Any, Any, int]) -> int:
    """Runs the command's coroutine in its own event loop; its exit code, or the gateway's refusal as one."""
    try:
        return asyncio.run(call)
    except GatewayUnreachable as exc:
        print(f"syllabus: cannot reach the gateway at {exc.addr} (is `syllabus up` running?)", file=sys.stderr)
        return EXIT_FAILED
    except SyllabusError as exc:
        print(f"syllabus: {exc.code.name}: {exc.message}", file=sys.stderr)
        for violation in exc.field_violations:
            print(f"  {violation.field}: {violation.description}", file=sys.stderr)
        return EXIT_USAGE if exc.code == grpc.StatusCode.INVALID_ARGUMENT else EXIT_FAILED
