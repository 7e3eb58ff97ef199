"""A real worker process's JSON log: every line about a job carries its job id, kind, attempt, tenant, worker and
trace id, and a job's transitions are one info line each, nothing more."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from pathlib import Path

from syllabus.v1 import job_pb2, job_service_pb2
from tests.pipeline.conftest import Pipeline

ROOT = Path(__file__).resolve().parents[2]
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
TRACEPARENT = f"00-{TRACE_ID}-b7ad6b7169203331-01"


async def test_a_job_that_retries_once_logs_its_transitions_with_its_fields(pipeline: Pipeline, nats_url: str) -> None:
    env = os.environ | {
        "SYLLABUS_NATS_URL": nats_url,
        "SYLLABUS_NAMESPACE": pipeline.topology.namespace,
        "SYLLABUS_HOME": str(pipeline.home),
        "SYLLABUS_MAX_ATTEMPTS": "3",
        "SYLLABUS_BACKOFF": "0.05",
        "SYLLABUS_LOG_FORMAT": "json",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tests.pipeline.worker_proc", cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    request = job_service_pb2.SubmitJobRequest(
        spec=job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text="fail-retryable:1"))
    )
    try:
        response = await pipeline.jobs.SubmitJob(request, timeout=10, metadata=(("traceparent", TRACEPARENT),))
        job = await pipeline.wait_end(response.job.id)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        log = await process.stderr.read()
        await process.wait()
    assert job.state == job_pb2.JOB_STATE_SUCCEEDED and job.trace_id == TRACE_ID
    lines = [json.loads(line) for line in log.decode().splitlines()]
    about = [line for line in lines if line.get("job_id") == job.id]
    # The back-off (0.05 s) is jittered, so its printed value varies.
    retrying = re.compile(rf"job {job.id} attempt 1 failed \(RetryableError\); retrying in \d+\.\ds")
    assert [(line["level"], line["message"]) for line in about] == [
        ("info", f"job {job.id} attempt 1 started"),
        ("info", about[1]["message"]),
        ("info", f"job {job.id} attempt 2 started"),
        ("info", f"job {job.id} succeeded"),
    ]
    assert retrying.fullmatch(about[1]["message"]), about[1]["message"]
    worker = job.attempts[-1].worker_id
    assert worker and job.attempts[0].worker_id == worker
    for line, attempt in zip(about, (1, 1, 2, 2), strict=True):
        fields = {key: line[key] for key in ("kind", "attempt", "tenant", "worker", "trace_id")}
        assert fields == {
            "kind": "summarize_text",
            "attempt": attempt,
            "tenant": job.tenant,
            "worker": worker,
            "trace_id": TRACE_ID,
        }
    # No other line names the job without its fields.
    assert not [line for line in lines if job.id in line["message"] and line.get("job_id") != job.id]
