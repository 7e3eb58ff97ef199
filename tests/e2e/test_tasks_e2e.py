"""Tasks as a new user runs them: the example package outside the repository, its proto built into a descriptor set
for the gateway, `syllabus worker` beside `syllabus up`, and jobs sent with curl, buf curl and the CLI."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path
from typing import Any

import nats
import pytest
import pytest_asyncio
from grpc_tools import protoc

from tests.e2e.conftest import ROOT, STEP_DEADLINE, Stack, running_stack
from tests.e2e.test_first_job import buf_curl, json_messages
from tests.metrics.scrape import Page
from tests.rest import conftest as rest_fixtures

pytestmark = pytest.mark.e2e
node_client = rest_fixtures.node_client
STATS = "type.googleapis.com/acme.v1.StatsRequest"


def build_acme(home: Path) -> Path:
    """The example copied out, its Python code generated, and its descriptor set built; returns the set."""
    shutil.copytree(ROOT / "examples" / "acme", home, ignore=shutil.ignore_patterns("*_pb2.py", "__pycache__"))
    include = str(resources.files("grpc_tools") / "_proto")
    args = ["protoc", f"-I{home / 'proto'}", f"-I{ROOT / 'third_party' / 'proto'}", f"-I{include}"]
    assert protoc.main([*args, f"--python_out={home}", "acme/v1/stats.proto"]) == 0
    descriptor_set = home / "acme.binpb"
    assert (
        protoc.main([*args, "--include_imports", f"--descriptor_set_out={descriptor_set}", "acme/v1/stats.proto"]) == 0
    )
    return descriptor_set


@pytest_asyncio.fixture(scope="module")
async def tasks_stack(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[tuple[Stack, Path]]:
    base = tmp_path_factory.mktemp("tasks")
    acme = base / "acme-project"
    descriptor_set = build_acme(acme)
    async with running_stack(base, {"SYLLABUS_DESCRIPTOR_SETS": str(descriptor_set)}) as stack:
        # The NATS that `up` started (logged before any service starts), and the home of the job store.
        nats_url = re.search(r"nats-server started \(pid \d+\) at (nats://\S+)", stack.log.read_text())
        assert nats_url is not None, stack.log_tail()
        env = stack.env | {"SYLLABUS_NATS_URL": nats_url.group(1)}
        with (base / "worker.log").open("wb") as sink:
            worker = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "syllabus",
                "worker",
                "acme.tasks:app",
                cwd=acme,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:
            await declared(nats_url.group(1), "clock.wait")
            yield stack, base / "worker.log"
        finally:
            worker.terminate()
            assert await asyncio.wait_for(worker.wait(), STEP_DEADLINE) == 0


async def curl(stack: Stack, path: str, body: dict[str, Any] | None = None) -> Any:
    url = f"http://{stack.env['SYLLABUS_HTTP_ADDR']}{path}"
    data = ["-H", "Content-Type: application/json", "-d", json.dumps(body)] if body is not None else []
    run = await stack.run("curl", "-sS", "--fail-with-body", url, *data)
    assert run.code == 0, (run.out, run.err)
    return run.out


async def submitted(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    answer = json.loads(await curl(stack, "/v1/jobs", body))
    job: dict[str, Any] = answer["job"]
    return job


async def declared(nats_url: str, name: str) -> None:
    """Once the pool has declared `name` (its last task): a watch of the tasks bucket, no polling."""
    nc = await nats.connect(nats_url, name="e2e-tasks")
    try:
        kv = await nc.jetstream().key_value("tasks")
        watcher = await kv.watch(name)
        async with asyncio.timeout(STEP_DEADLINE):
            async for entry in watcher:
                if entry is not None and entry.value:
                    break
        await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py leaves it unannotated
    finally:
        await nc.close()


async def test_a_typed_task_over_rest_is_validated_run_by_the_pool_and_read_back_typed(
    tasks_stack: tuple[Stack, Path],
) -> None:
    stack, _ = tasks_stack
    typed = {"@type": STATS, "numbers": [2, 4, 9]}
    job = await submitted(stack, {"spec": {"task": {"name": "math.stats", "message": typed}}})
    assert (job["kind"], job["maxAttempts"], job["spec"]["task"]["message"]) == ("task", 3, typed)
    lines = (await curl(stack, f"/v1/jobs/{job['id']}:watch")).splitlines()
    events = [json.loads(line)["result"]["event"] for line in lines]
    assert [e["type"] for e in events][-1] == "JOB_EVENT_TYPE_SUCCEEDED"
    result = events[-1]["result"]["message"]
    assert result == {
        "@type": "type.googleapis.com/acme.v1.StatsResult",
        "count": "3",
        "mean": 5.0,
        "minimum": 2.0,
        "maximum": 9.0,
    }

    url = f"http://{stack.env['SYLLABUS_HTTP_ADDR']}/v1/jobs"
    empty = {"spec": {"task": {"name": "math.stats", "message": {"@type": STATS, "numbers": []}}}}
    described = json.loads(await curl(stack, "/openapi.json"))["components"]["schemas"]["acme.v1.StatsRequest"]
    assert described["properties"]["numbers"]["type"] == "array"

    # buf curl finds the type through the gateway's reflection, which serves the loaded descriptor set too.
    typed_body = {"spec": {"task": {"name": "math.stats", "message": {"@type": STATS, "numbers": [1, 3]}}}}
    by_buf = await buf_curl(stack, "syllabus.v1.JobService/SubmitJob", typed_body)
    assert by_buf.code == 0, by_buf.err
    assert json_messages(by_buf.out)[0]["job"]["spec"]["task"]["message"] == {"@type": STATS, "numbers": [1, 3]}

    json_body = ("-H", "Content-Type: application/json", "-d", json.dumps(empty))
    refused = await stack.run("curl", "-sS", "-o", "/dev/stderr", "-w", "%{http_code}", url, *json_body)
    assert refused.out == "400"
    assert json.loads(refused.err)["details"][0]["fieldViolations"][0]["field"] == "spec.task.message.numbers"


async def test_a_json_task_by_buf_curl_and_the_cli_then_dead_lettered_and_retried_edited(
    tasks_stack: tuple[Stack, Path],
) -> None:
    stack, _ = tasks_stack
    body = {"spec": {"task": {"name": "text.reverse", "json": {"text": "ab"}}}}
    answer = await buf_curl(stack, "syllabus.v1.JobService/SubmitJob", body)
    assert answer.code == 0, answer.err
    [submitted_job] = json_messages(answer.out)
    watched = await stack.syllabus("watch", submitted_job["job"]["id"])
    assert watched.code == 0, watched.err
    assert '"reversed": "ba"' in watched.out

    failing = await stack.syllabus("submit", "task", "text.reverse", "--json", '{"words": "no text"}', "--watch")
    assert failing.code == 1, failing.err
    job_id = failing.out.splitlines()[0]
    shown = await stack.syllabus("deadletters", "show", job_id)
    assert "NoText" in shown.out
    retried = await stack.syllabus("deadletters", "retry", job_id, "--json", '{"text": "stressed"}')
    assert retried.code == 0, retried.err
    done = await stack.syllabus("watch", job_id)
    assert done.code == 0, done.err
    assert '"reversed": "desserts"' in done.out


async def test_a_node_worker_beside_up_runs_a_task_sent_with_curl(
    tasks_stack: tuple[Stack, Path], node_client: Path
) -> None:
    stack, _ = tasks_stack
    worker = await asyncio.create_subprocess_exec(
        "node",
        "example_worker.js",
        stack.grpc_addr,
        "--pool",
        "node-example",
        cwd=node_client,
        stdin=subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert worker.stderr is not None
        line = (await asyncio.wait_for(worker.stderr.readline(), STEP_DEADLINE)).decode()
        assert "syllabus worker node-example: connected to" in line, line
        job = await submitted(
            stack, {"spec": {"task": {"name": "strings.reverse", "json": {"text": "drawer", "flaky": True}}}}
        )
        lines = (await curl(stack, f"/v1/jobs/{job['id']}:watch")).splitlines()
        events = [json.loads(line)["result"]["event"] for line in lines]
        assert [e["type"].removeprefix("JOB_EVENT_TYPE_") for e in events] == [
            "QUEUED",
            "STARTED",
            "RETRYING",
            "STARTED",
            "PROGRESS",
            "SUCCEEDED",
        ]
        assert events[-1]["result"]["json"] == {"text": "reward", "length": 6.0, "attempt": 2.0}
        # A remote pool's attempts run in the gateway, whose /metrics counts them.
        page = Page(await curl(stack, "/metrics"))
        assert page.value("syllabus_jobs_retried_total", kind="strings.reverse") == 1
        assert page.value("syllabus_jobs_succeeded_total", kind="strings.reverse") == 1
        worker.terminate()
        assert await asyncio.wait_for(worker.wait(), STEP_DEADLINE) == 0
    finally:
        if worker.returncode is None:
            worker.kill()
            await worker.wait()
