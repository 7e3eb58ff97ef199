"""The Node.js client (clients/node: @grpc/grpc-js loading proto/ directly) against the in-process gateway."""

from __future__ import annotations

import re
from pathlib import Path

from tests.pipeline.conftest import StartWorker
from tests.rest.conftest import Rest, run_node
from tests.silent_gateway import silent_gateway


async def test_node_client_submits_watches_and_gets_a_job(
    rest: Rest, start_worker: StartWorker, node_client: Path, tmp_path: Path
) -> None:
    await start_worker()
    code, out, err = await run_node(
        node_client, "example.js", rest.grpc_target, "--skip-course", "--out", str(tmp_path)
    )
    assert code == 0, f"stdout:\n{out}\nstderr:\n{err}"
    lines = out.splitlines()
    submitted = re.fullmatch(r"submitted job (\S+) \(JOB_STATE_QUEUED, created: true\)", lines[0])
    assert submitted, out
    job_id = submitted.group(1)
    assert [line.split()[2] for line in lines[1:4]] == [
        "JOB_EVENT_TYPE_QUEUED",
        "JOB_EVENT_TYPE_STARTED",
        "JOB_EVENT_TYPE_SUCCEEDED",
    ]
    assert lines[4] == (
        f"job {job_id} JOB_STATE_SUCCEEDED: done by attempt 1: "
        "NATS JetStream keeps messages until they are acknowledged, so no job is lost."
    )
    stored = await rest.pipeline.store.get_job(job_id)
    assert stored is not None and stored.result.text.startswith("done by attempt 1")
    ran = re.fullmatch(r"ran job (\S+): (.+?): (.+)", lines[5])
    assert ran, out
    assert ran.group(2) == "JOB_EVENT_TYPE_QUEUED, JOB_EVENT_TYPE_STARTED, JOB_EVENT_TYPE_SUCCEEDED"
    assert ran.group(3) == "done by attempt 1: One call submits a job and follows it."
    assert (await rest.pipeline.store.get_job(ran.group(1))) is not None


async def test_node_client_reports_grpc_errors(node_client: Path, closed_addr: str) -> None:
    # Nothing listens there: the example fails with the gRPC status, not a stack trace.
    code, out, err = await run_node(node_client, "example.js", closed_addr, "--skip-course")
    assert code == 1 and out == ""
    assert err.startswith("failed: 14 UNAVAILABLE"), err


async def test_node_run_job_fails_when_the_gateway_never_answers(node_client: Path) -> None:
    script = Path(__file__).with_name("node_run_deadline.js")
    async with silent_gateway() as (addr, taken):
        code, out, err = await run_node(node_client, str(script), addr)
        assert taken.is_set()
    assert code == 0, err
    assert out == f"4 the gateway at {addr} did not answer within 0.5s\n"
