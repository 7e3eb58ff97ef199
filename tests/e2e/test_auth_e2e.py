"""`syllabus up` with authentication and every tenant limit configured, used as a user would: the command line,
curl and a course, each tenant seeing only its own; and a gateway that refuses to listen open beyond loopback."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import jwt
import pytest
import pytest_asyncio

from tests.e2e.conftest import ROOT, Stack, running_stack, stack_env

pytestmark = pytest.mark.e2e

SECRET = "e2e-secret-for-hs256-tokens-of-32-bytes-and-more"
LIMITS = {
    "SYLLABUS_AUTH_JWT_SECRET": SECRET,
    "SYLLABUS_RATE_LIMIT": "200",
    "SYLLABUS_MAX_WAITING_JOBS": "50",
    "SYLLABUS_MAX_RUNNING_JOBS": "2",
    "SYLLABUS_SPEND_BUDGET_USD": "5",
}


def token(tenant: str, scopes: str = "read write") -> str:
    return jwt.encode({"tenant": tenant, "scope": scopes, "exp": time.time() + 3600}, SECRET)


@pytest_asyncio.fixture(scope="module")
async def guarded(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    async with running_stack(tmp_path_factory.mktemp("auth-e2e"), LIMITS) as running:
        yield running


async def test_the_command_line_needs_a_token_and_each_tenant_sees_its_own(guarded: Stack) -> None:
    refused = await guarded.syllabus("submit", "summarize", "--text", "a text to summarize")
    assert refused.code != 0 and refused.out == ""
    assert refused.err.startswith("syllabus: UNAUTHENTICATED: this call needs credentials"), refused.err
    acme = {"SYLLABUS_TOKEN": token("acme")}
    guarded.env.update(acme)
    try:
        submitted = await guarded.syllabus("submit", "summarize", "--text", "a text to summarize", "--watch")
        assert submitted.code == 0, submitted.err
        job_id = submitted.out.split()[0]
        got = await guarded.syllabus("get", job_id)
        assert "state     SUCCEEDED" in got.out, got.out
        guarded.env["SYLLABUS_TOKEN"] = token("globex")
        other = await guarded.syllabus("get", job_id)
        assert other.code != 0 and "NOT_FOUND" in other.err
    finally:
        guarded.env.pop("SYLLABUS_TOKEN", None)


async def test_curl_without_a_token_gets_401_and_with_one_runs_a_course(guarded: Stack, tmp_path: Path) -> None:
    url = f"http://{guarded.env['SYLLABUS_HTTP_ADDR']}"
    body = json.dumps({"course": {"prompt": "Intro to Rust for Python developers", "modules": 2}})
    curl = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Content-Type: application/json"]
    refused = await guarded.run(*curl, "-d", body, f"{url}/v1/courses")
    assert refused.out == "401"
    created = await guarded.run(
        "curl",
        "-sf",
        "-H",
        "Content-Type: application/json",
        "-H",
        f"Authorization: Bearer {token('acme')}",
        "-d",
        body,
        f"{url}/v1/courses",
    )
    assert created.code == 0, created.err
    job_id = json.loads(created.out)["job"]["id"]
    guarded.env["SYLLABUS_TOKEN"] = token("acme")
    try:
        watched = await guarded.syllabus("watch", job_id)
        assert watched.code == 0, watched.err + guarded.log_tail()
    finally:
        guarded.env.pop("SYLLABUS_TOKEN", None)


async def test_an_open_gateway_will_not_listen_beyond_loopback(tmp_path: Path, closed_addr: str) -> None:
    env = stack_env(tmp_path) | {
        "SYLLABUS_GRPC_ADDR": "0.0.0.0:0",
        "SYLLABUS_NATS_URL": f"nats://{closed_addr}",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syllabus",
        "gateway",
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 2
    lines = err.decode().strip().splitlines()
    assert len(lines) == 1 and "SYLLABUS_GRPC_ADDR=0.0.0.0:0 is not a loopback address" in lines[0], err
