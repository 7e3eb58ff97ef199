"""Tasks of the user's own: the example package examples/acme, copied out of the repository, run by `syllabus
worker acme.tasks:app` as a real process beside the pipeline's gateway services."""

from __future__ import annotations

import asyncio
import importlib
import os
import shutil
import sys
from collections.abc import AsyncIterator, Iterator
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
import pytest_asyncio
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from grpc_tools import protoc

from syllabus.taskregistry import TaskDeclaration, TaskRegistry, TaskTaken
from syllabus.v1 import admin_service_pb2, job_pb2, job_service_pb2
from tests.pipeline.conftest import Pipeline
from tests.pipeline.test_jobs import field_violations, first_event, types, watch

E = job_pb2
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def acme_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """examples/acme outside the repository, with its proto compiled as its README says; importable here too."""
    home = tmp_path_factory.mktemp("user") / "acme-project"
    shutil.copytree(ROOT / "examples" / "acme", home, ignore=shutil.ignore_patterns("*_pb2.py", "__pycache__"))
    include = str(resources.files("grpc_tools") / "_proto")
    args = [
        "protoc",
        f"-I{home / 'proto'}",
        f"-I{ROOT / 'third_party' / 'proto'}",
        f"-I{include}",
        f"--python_out={home}",
        "acme/v1/stats.proto",
    ]
    assert protoc.main(args) == 0
    sys.path.insert(0, str(home))
    yield home
    sys.path.remove(str(home))


@pytest.fixture(scope="session")
def stats_pb2(acme_dir: Path) -> ModuleType:
    return importlib.import_module("acme.v1.stats_pb2")


def worker_env(pipeline: Pipeline, nats_url: str) -> dict[str, str]:
    return os.environ | {
        "SYLLABUS_NATS_URL": nats_url,
        "SYLLABUS_NAMESPACE": pipeline.topology.namespace,
        "SYLLABUS_HOME": str(pipeline.home),
        "SYLLABUS_BACKOFF": "0.05",
        "SYLLABUS_WORKER_DRAIN_GRACE": "0.2",
    }


async def start_pool(pipeline: Pipeline, nats_url: str, cwd: Path, app: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "syllabus",
        "worker",
        app,
        cwd=cwd,
        env=worker_env(pipeline, nats_url),
        stderr=asyncio.subprocess.PIPE,
    )


async def declared(pipeline: Pipeline, name: str) -> TaskDeclaration:
    """Once the pool's process has declared `name`: a watch of the bucket, no polling."""
    kv = await pipeline.nc.jetstream().key_value(pipeline.topology.tasks_bucket)
    watcher = await kv.watch(name)
    try:
        async with asyncio.timeout(20):
            async for entry in watcher:
                if entry is not None and entry.value:
                    return TaskDeclaration.decode(entry.value)
    finally:
        await watcher.stop()  # type: ignore[no-untyped-call]  # nats-py leaves it unannotated
    raise AssertionError(f"{name} was never declared")


@pytest_asyncio.fixture
async def acme(pipeline: Pipeline, nats_url: str, acme_dir: Path) -> AsyncIterator[asyncio.subprocess.Process]:
    process = await start_pool(pipeline, nats_url, acme_dir, "acme.tasks:app")
    # The pool declares its names one at a time: a test may submit any of them.
    for task in importlib.import_module("acme.tasks").app.declarations:
        await declared(pipeline, task.name)
    yield process
    if process.returncode is None:
        process.terminate()
    await process.wait()


def task_request(name: str, data: dict[str, Any] | None = None, **options: Any) -> job_service_pb2.SubmitJobRequest:
    spec = job_pb2.JobSpec(task=job_pb2.Task(name=name))
    if data is not None:
        json_format.ParseDict(data, spec.task.json)
    return job_service_pb2.SubmitJobRequest(spec=spec, options=job_pb2.JobOptions(**options))


async def submit(pipeline: Pipeline, request: job_service_pb2.SubmitJobRequest) -> job_pb2.Job:
    response: job_service_pb2.SubmitJobResponse = await pipeline.jobs.SubmitJob(request, timeout=10)
    return response.job


async def test_a_typed_task_runs_in_a_pool_process_with_its_declared_attempts(
    pipeline: Pipeline, acme: asyncio.subprocess.Process, stats_pb2: ModuleType
) -> None:
    request = task_request("math.stats")
    request.spec.task.message.Pack(stats_pb2.StatsRequest(numbers=[2, 4, 9]))
    job = await submit(pipeline, request)
    assert (job.kind, job.max_attempts) == ("task", 3)
    events = await pipeline.events(job.id)
    assert types(events) == ["QUEUED", "STARTED", "PROGRESS", "SUCCEEDED"]
    assert events[2].progress.message == "3 numbers read"
    result = stats_pb2.StatsResult()
    assert events[-1].result.message.Unpack(result)
    assert (result.count, result.mean, result.minimum, result.maximum) == (3, 5.0, 2.0, 9.0)
    stored = await pipeline.store.get_job(job.id)
    assert stored is not None and stored.result == events[-1].result


async def test_a_typed_input_of_another_type_an_unknown_type_or_breaking_its_rules_is_refused(
    pipeline: Pipeline, acme: asyncio.subprocess.Process, stats_pb2: ModuleType
) -> None:
    cases: list[tuple[job_service_pb2.SubmitJobRequest, list[str], str]] = []
    other = task_request("math.stats")
    other.spec.task.message.Pack(Duration(seconds=1))
    cases.append(
        (other, ["spec.task.message"], "task 'math.stats' takes acme.v1.StatsRequest, not google.protobuf.Duration")
    )
    unknown = task_request("text.reverse")
    unknown.spec.task.message.type_url = "type.googleapis.com/acme.v1.Nothing"
    cases.append((unknown, ["spec.task.message"], "acme.v1.Nothing is not a type the gateway knows"))
    empty = task_request("math.stats")
    empty.spec.task.message.Pack(stats_pb2.StatsRequest())
    cases.append((empty, ["spec.task.message.numbers"], "must contain at least 1 item(s)"))
    as_json = task_request("math.stats", {"numbers": []})
    cases.append((as_json, ["spec.task.json.numbers"], "must contain at least 1 item(s)"))
    not_fitting = task_request("math.stats", {"numbers": "many"})
    cases.append((not_fitting, ["spec.task.json"], "does not fit acme.v1.StatsRequest"))
    for request, fields, message in cases:
        with pytest.raises(grpc.aio.AioRpcError) as err:
            await submit(pipeline, request)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert field_violations(err.value) == fields
        assert message in (err.value.details() or ""), err.value.details()


async def test_a_typed_task_takes_its_input_as_json_too(
    pipeline: Pipeline, acme: asyncio.subprocess.Process, stats_pb2: ModuleType
) -> None:
    job = await submit(pipeline, task_request("math.stats", {"numbers": [1, 2]}))
    end = await pipeline.wait_end(job.id)
    result = stats_pb2.StatsResult()
    assert end.result.message.Unpack(result) and result.mean == 1.5


async def test_a_json_task_is_retried_with_backoff_then_succeeds(
    pipeline: Pipeline, acme: asyncio.subprocess.Process
) -> None:
    job = await submit(pipeline, task_request("text.reverse", {"text": "stressed", "flaky": True}))
    assert job.max_attempts == 2
    events = await pipeline.events(job.id)
    assert types(events) == ["QUEUED", "STARTED", "RETRYING", "STARTED", "SUCCEEDED"]
    assert events[2].error.message == "a flaky first attempt"
    assert json_format.MessageToDict(events[-1].result.json) == {"reversed": "desserts", "attempt": 2.0}


async def test_a_failed_task_is_dead_lettered_and_retried_with_an_edited_input(
    pipeline: Pipeline, acme: asyncio.subprocess.Process
) -> None:
    job = await submit(pipeline, task_request("text.reverse", {"words": "no text"}))
    failed = await pipeline.wait_end(job.id)
    assert failed.state == E.JOB_STATE_FAILED
    assert [(e.type, e.permanent) for e in failed.errors] == [("NoText", True)]
    letter = await pipeline.admin.GetDeadLetter(admin_service_pb2.GetDeadLetterRequest(job_id=job.id), timeout=10)
    assert letter.dead_letter.job.spec.task.name == "text.reverse"

    renamed = task_request("clock.wait", {"text": "abc"}).spec
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=job.id, spec=renamed))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["spec.task.name"]

    edited = task_request("text.reverse", {"text": "abc"}).spec
    await pipeline.admin.RetryDeadLetter(admin_service_pb2.RetryDeadLetterRequest(job_id=job.id, spec=edited))
    done = await pipeline.wait_end(job.id)
    assert (done.state, done.spec) == (E.JOB_STATE_SUCCEEDED, edited)
    assert json_format.MessageToDict(done.result.json) == {"reversed": "cba", "attempt": 1.0}


async def test_a_task_without_a_time_limit_of_its_own_job_gets_the_tasks(
    pipeline: Pipeline, acme: asyncio.subprocess.Process
) -> None:
    job = await submit(pipeline, task_request("clock.wait"))
    end = await pipeline.wait_end(job.id)
    assert end.state == E.JOB_STATE_FAILED
    assert [(e.type, e.attempt) for e in end.errors] == [("Timeout", 1)]


async def test_a_running_task_is_canceled(pipeline: Pipeline, acme: asyncio.subprocess.Process) -> None:
    request = task_request("clock.wait")
    request.options.timeout.FromSeconds(60)
    job = await submit(pipeline, request)
    stream = watch(pipeline, job.id)
    await first_event(stream, E.JOB_EVENT_TYPE_PROGRESS)
    await pipeline.jobs.CancelJob(job_service_pb2.CancelJobRequest(job_id=job.id), timeout=10)
    assert (await first_event(stream, E.JOB_EVENT_TYPE_CANCELED)).state == E.JOB_STATE_CANCELED


async def test_a_task_no_pool_declared_is_refused_naming_the_field(pipeline: Pipeline) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await submit(pipeline, task_request("math.nope", {}))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["spec.task.name"]
    assert "no worker pool serves task 'math.nope'" in (err.value.details() or "")
    batch = job_service_pb2.SubmitJobsRequest(
        requests=[
            task_request("math.nope"),
            job_service_pb2.SubmitJobRequest(spec=job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text="x"))),
        ]
    )
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await pipeline.jobs.SubmitJobs(batch, timeout=10)
    assert field_violations(err.value) == ["requests[0].spec.task.name"]


@pytest.mark.parametrize("name", ["Math.stats", "math..stats", ".stats", "math.", "ma th", "x" * 129])
async def test_a_malformed_task_name_is_refused_by_the_proto_rules(pipeline: Pipeline, name: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await submit(pipeline, task_request(name))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(err.value) == ["spec.task.name"]


async def test_a_second_pool_claiming_a_served_name_stops_at_start_saying_whose_it_is(
    pipeline: Pipeline, nats_url: str, acme: asyncio.subprocess.Process, tmp_path: Path
) -> None:
    (tmp_path / "rival.py").write_text(
        "from syllabus.tasks import TaskApp\n"
        "app = TaskApp('rival')\n"
        "@app.task('text.reverse')\n"
        "async def reverse(ctx, data):\n"
        "    return data\n"
    )
    rival = await start_pool(pipeline, nats_url, tmp_path, "rival:app")
    _, stderr = await asyncio.wait_for(rival.communicate(), 30)
    assert rival.returncode == 2
    assert stderr.decode().splitlines()[-1] == (
        "syllabus worker: task 'text.reverse' is already served by worker pool 'acme': a task name belongs to one "
        "pool (stop declaring it in pool 'acme' first, or rename it in pool 'rival')"
    )
    # The acme pool still serves it.
    job = await submit(pipeline, task_request("text.reverse", {"text": "ab"}))
    assert (await pipeline.wait_end(job.id)).state == E.JOB_STATE_SUCCEEDED


async def test_a_task_module_that_fails_to_import_is_one_line(
    pipeline: Pipeline, nats_url: str, tmp_path: Path
) -> None:
    (tmp_path / "broken.py").write_text(
        "from syllabus.tasks import TaskApp\n"
        "app = TaskApp('broken')\n"
        "@app.task('Bad Name')\n"
        "async def f(ctx, data): ...\n"
    )
    process = await start_pool(pipeline, nats_url, tmp_path, "broken:app")
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert stderr.decode().strip() == (
        "syllabus worker: importing broken failed: ValueError: task name 'Bad Name' must be dot-separated lowercase "
        "words, e.g. 'math.stats' (python -c 'import broken' shows where)"
    )


@pytest.mark.parametrize(
    ("app", "message"),
    [
        ("acme", "syllabus worker: 'acme' is not MODULE:ATTRIBUTE, e.g. acme.tasks:app"),
        ("nowhere.tasks:app", "syllabus worker: cannot import 'nowhere.tasks': No module named 'nowhere'"),
        ("acme.tasks:nothing", "syllabus worker: acme.tasks has no 'nothing'"),
        ("acme.tasks:stats", "syllabus worker: acme.tasks:stats is a function, not a TaskApp"),
    ],
)
async def test_a_worker_given_no_task_app_says_so_in_one_line(
    pipeline: Pipeline, nats_url: str, acme_dir: Path, app: str, message: str
) -> None:
    process = await start_pool(pipeline, nats_url, acme_dir, app)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert stderr.decode().strip() == message


async def test_a_pool_restarted_without_a_task_gives_its_name_up(pipeline: Pipeline) -> None:
    registry = TaskRegistry(pipeline.nc, pipeline.topology)
    a = TaskDeclaration(name="jobs.a", pool="one", max_attempts=2, timeout=5.0)
    b = TaskDeclaration(name="jobs.b", pool="one", max_attempts=2, timeout=5.0)
    await registry.declare("one", [a, b])
    with pytest.raises(TaskTaken):
        await registry.declare("two", [TaskDeclaration(name="jobs.b", pool="two", max_attempts=1, timeout=1.0)])
    await registry.declare("one", [a])
    assert await registry.lookup("jobs.b") is None
    moved = TaskDeclaration(name="jobs.b", pool="two", max_attempts=1, timeout=1.0)
    await registry.declare("two", [moved])
    assert await registry.lookup("jobs.b") == moved
    assert await registry.lookup("jobs.a") == a


async def test_a_redeclared_task_takes_its_new_defaults(pipeline: Pipeline) -> None:
    registry = TaskRegistry(pipeline.nc, pipeline.topology)
    await registry.declare("one", [TaskDeclaration(name="jobs.c", pool="one", max_attempts=2, timeout=5.0)])
    newer = TaskDeclaration(name="jobs.c", pool="one", max_attempts=7, timeout=9.0)
    await registry.declare("one", [newer])
    assert await TaskRegistry(pipeline.nc, pipeline.topology).lookup("jobs.c") == newer


async def test_a_task_apps_hooks_run_in_its_pool_process(pipeline: Pipeline, nats_url: str, tmp_path: Path) -> None:
    # A before_attempt hook's refusal is the attempt's outcome, so what it did shows in the job, with no race.
    (tmp_path / "hooked.py").write_text(
        "from syllabus.tasks import PermanentError, TaskApp, WorkerHook\n"
        "class Gate(WorkerHook):\n"
        "    async def before_attempt(self, ctx):\n"
        "        if ctx.job.spec.task.json['who'] == 'stranger':\n"
        "            raise PermanentError('the gate hook refuses ' + ctx.job.spec.task.name)\n"
        "app = TaskApp('hooked', hooks=[Gate()])\n"
        "@app.task('gate.pass')\n"
        "async def passes(ctx, data):\n"
        "    return {'passed': data['who']}\n"
    )
    process = await start_pool(pipeline, nats_url, tmp_path, "hooked:app")
    try:
        await declared(pipeline, "gate.pass")
        refused = await pipeline.wait_end((await submit(pipeline, task_request("gate.pass", {"who": "stranger"}))).id)
        passed = await pipeline.wait_end((await submit(pipeline, task_request("gate.pass", {"who": "friend"}))).id)
    finally:
        process.terminate()
        await process.wait()
    assert (refused.state, [e.message for e in refused.errors]) == (
        E.JOB_STATE_FAILED,
        ["the gate hook refuses gate.pass"],
    )
    assert (passed.state, json_format.MessageToDict(passed.result.json)) == (
        E.JOB_STATE_SUCCEEDED,
        {"passed": "friend"},
    )
