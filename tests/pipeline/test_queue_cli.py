"""`syllabus stats|workers|queues`, and `syllabus jobs` by end time and by creation time, against the in-process
pipeline."""

from __future__ import annotations

import json
import os
from datetime import UTC, timedelta

from syllabus.v1 import job_pb2
from tests.conditions import eventually
from tests.pipeline.conftest import Pipeline, StartWorker
from tests.pipeline.test_cli import Syllabus, addr, job_requests, syllabus
from tests.pipeline.test_queues import no_pull_request_waits, workers

E = job_pb2
# The fixtures of test_cli, used here by name.
__all__ = ["addr", "job_requests", "syllabus"]


async def test_pause_shows_in_stats_and_resume_lets_the_jobs_run(
    pipeline: Pipeline, start_worker: StartWorker, syllabus: Syllabus
) -> None:
    paused = await syllabus("queues", "pause", "generator")
    assert paused.code == 0 and paused.out.startswith("paused generator:"), paused
    await start_worker()
    await eventually(lambda: _listed(pipeline))
    job = await pipeline.submit("ok")
    assert await no_pull_request_waits(pipeline)

    shown = await syllabus("stats", "--queue", "generator")
    assert shown.code == 0, shown
    [heading, row, _, counts_heading, counts] = shown.out.strip().splitlines()
    assert heading.split()[:4] == ["QUEUE", "STATE", "WORKERS", "WAITING"]
    assert row.split()[:4] == ["generator", "paused", "1", "1"]
    assert counts_heading.split()[:4] == ["QUEUE", "KIND", "PRIORITY", "SCHEDULED"]
    assert counts.split()[:5] == ["generator", "summarize_text", "interactive", "0", "1"]

    as_json = await syllabus("stats", "--json")
    paused_by_queue = {queue["queue"]: queue.get("paused", False) for queue in json.loads(as_json.out)}
    assert (paused_by_queue["generator"], paused_by_queue["renderer"]) == (True, False)

    resumed = await syllabus("queues", "resume", "generator")
    assert resumed.code == 0 and resumed.out.startswith("resumed generator: 1 waiting"), resumed
    assert (await pipeline.wait_end(job.id)).state == E.JOB_STATE_SUCCEEDED


async def _listed(pipeline: Pipeline) -> bool:
    return len(await workers(pipeline)) == 1


async def test_workers_lists_each_process_and_an_unknown_queue_is_refused(
    pipeline: Pipeline, start_worker: StartWorker, syllabus: Syllabus
) -> None:
    assert (await syllabus("workers")).out.strip() == "no workers"
    await start_worker()
    await eventually(lambda: _listed(pipeline))
    listed = await syllabus("workers", "--queue", "generator")
    [heading, row] = listed.out.strip().splitlines()
    assert heading.split() == ["WORKER", "QUEUE", "PROCESS", "KINDS", "BUSY", "JOBS", "VERSION", "UP"]
    assert row.split()[1:5] == ["generator", f"{os.uname().nodename}:{os.getpid()}", "summarize_text", "0/4"]

    refused = await syllabus("queues", "pause", "nope")
    assert refused.code == 2 and refused.out == ""
    assert refused.err.splitlines()[0].startswith("syllabus: INVALID_ARGUMENT: ")
    assert "there is no queue 'nope'; the queues are generator, renderer" in refused.err
    assert refused.err.splitlines()[1].startswith("  queue: ")
    assert (await syllabus("stats", "--window", "soon")).code == 2


async def test_jobs_ordered_by_end_show_the_total(
    pipeline: Pipeline, start_worker: StartWorker, syllabus: Syllabus
) -> None:
    await start_worker()
    ended = []
    for text in ("ok:a", "ok:b", "ok:c"):
        ended.append((await pipeline.wait_end((await pipeline.submit(text)).id)).id)
    listed = await syllabus("jobs", "--order", "ended", "--limit", "2")
    assert listed.code == 0, listed
    lines = listed.out.strip().splitlines()
    assert [line.split()[0] for line in lines[1:]] == ended[::-1][:2]
    assert listed.err == "2 of 3 job(s)\n"


async def test_jobs_since_and_until_keep_the_jobs_created_in_between(pipeline: Pipeline, syllabus: Syllabus) -> None:
    job = await pipeline.submit("ok")
    created = job.create_time.ToDatetime(tzinfo=UTC)
    since, until = (created + timedelta(seconds=offset) for offset in (-1, 1))
    listed = await syllabus("jobs", "--since", since.isoformat(), "--until", until.isoformat(), "--json")
    assert listed.code == 0 and [j["id"] for j in json.loads(listed.out)] == [job.id], listed
    later = await syllabus("jobs", "--since", until.isoformat())
    assert later.code == 0 and later.out.strip() == "no jobs", later
    assert (await syllabus("jobs", "--task", "math.add")).out.strip() == "no jobs"
    both = await syllabus("jobs", "--kind", "summarize", "--task", "math.add")
    assert both.code != 0 and "give --kind or --task, not both" in both.err, both
    bad = await syllabus("jobs", "--since", "yesterday")
    assert bad.code != 0 and "--since 'yesterday' is not an ISO 8601 time" in bad.err, bad
