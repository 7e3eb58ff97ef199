"""The task SDK on its own: declarations refused at import, inputs decoded by the handler's type, results encoded."""

from __future__ import annotations

import re
from typing import Any, cast

import pytest
from google.protobuf import json_format
from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp

from syllabus.tasks import Defer, PermanentError, TaskApp, TaskContext
from syllabus.v1 import job_pb2
from syllabus.worker import JobContext


async def _no_progress(percent: float, message: str) -> None:
    raise AssertionError("no progress expected")


def context(spec: job_pb2.Task) -> JobContext:
    job = job_pb2.Job(id="j1", kind="task", spec=job_pb2.JobSpec(task=spec), max_attempts=4)
    return JobContext(job=job, attempt=2, _report=_no_progress)


def json_task(name: str, data: dict[str, Any]) -> job_pb2.Task:
    task = job_pb2.Task(name=name)
    json_format.ParseDict(data, task.json)
    return task


@pytest.mark.parametrize(
    ("pool", "name", "options", "message"),
    [
        ("Acme", "a.b", {}, "pool name 'Acme' must be lowercase"),
        ("acme", "A.b", {}, "task name 'A.b' must be dot-separated lowercase words"),
        ("acme", "a..b", {}, "task name 'a..b' must be"),
        ("acme", "a.b", {"max_attempts": 0}, "task 'a.b': max_attempts must be from 1 to 100, not 0"),
        ("acme", "a.b", {"timeout": 0}, "task 'a.b': timeout must be more than 0 and at most 86400 seconds, not 0"),
    ],
)
def test_a_bad_declaration_fails_at_import_saying_what_is_wrong(
    pool: str, name: str, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        app = TaskApp(pool)
        app.task(name, **options)


def test_a_task_declared_twice_or_not_async_or_without_an_input_is_refused() -> None:
    app = TaskApp("acme")

    @app.task("a.b")
    async def first(ctx: TaskContext, data: dict[str, Any]) -> None: ...

    with pytest.raises(ValueError, match=re.escape("task 'a.b' is declared twice in pool 'acme'")):
        app.task("a.b")
    with pytest.raises(TypeError, match="must be an async function"):
        app.task("a.c")(cast(Any, lambda ctx, data: None))  # what the types forbid, checked at run time too

    async def lonely(ctx: TaskContext) -> None: ...

    with pytest.raises(TypeError, match=r"must take \(ctx, input\): it takes 1 parameters"):
        app.task("a.d")(lonely)
    assert [d.name for d in app.declarations] == ["a.b"]


async def test_json_in_and_every_kind_of_result_out() -> None:
    app = TaskApp("acme")
    seen: list[tuple[str, int, int, dict[str, Any]]] = []

    @app.task("echo.dict")
    async def echo(ctx: TaskContext, data: dict[str, Any]) -> dict[str, Any]:
        seen.append((ctx.job_id, ctx.attempt, ctx.max_attempts, data))
        return {"got": data}

    @app.task("echo.text")
    async def text(ctx: TaskContext, data: dict[str, Any]) -> str:
        return str(data["word"])

    @app.task("echo.none")
    async def nothing(ctx: TaskContext, data: dict[str, Any]) -> None:
        return None

    result = await app.handle(context(json_task("echo.dict", {"n": [1, 2]})))
    assert json_format.MessageToDict(result.json) == {"got": {"n": [1.0, 2.0]}}
    assert seen == [("j1", 2, 4, {"n": [1.0, 2.0]})]
    assert (await app.handle(context(json_task("echo.text", {"word": "hi"})))).text == "hi"
    assert await app.handle(context(job_pb2.Task(name="echo.none"))) == job_pb2.JobResult()


async def test_a_typed_input_is_unpacked_or_parsed_and_a_message_result_is_packed() -> None:
    app = TaskApp("acme")

    @app.task("time.later")
    async def later(ctx: TaskContext, delay: Duration) -> Timestamp:
        return Timestamp(seconds=1000 + delay.seconds)

    packed = job_pb2.Task(name="time.later")
    packed.message.Pack(Duration(seconds=5))
    out = Timestamp()
    assert (await app.handle(context(packed))).message.Unpack(out) and out.seconds == 1005
    from_json = job_pb2.Task(name="time.later")
    from_json.json.update({"seconds": 7})
    # Struct numbers are doubles: a Duration's JSON form is a string, so this JSON does not fit it.
    with pytest.raises(PermanentError, match=re.escape("the JSON input does not fit google.protobuf.Duration")):
        await app.handle(context(from_json))
    wrong = job_pb2.Task(name="time.later")
    wrong.message.Pack(Timestamp(seconds=1))
    with pytest.raises(
        PermanentError, match=re.escape("takes google.protobuf.Duration, not google.protobuf.Timestamp")
    ) as err:
        await app.handle(context(wrong))
    assert err.value.error_type == "InvalidInput"
    assert app.declarations[0].input_type == "google.protobuf.Duration"


async def test_a_json_task_given_a_message_an_unknown_name_or_a_bad_result_fails_for_good() -> None:
    app = TaskApp("acme")

    @app.task("bad.result")
    async def bad(ctx: TaskContext, data: dict[str, Any]) -> Any:
        return data.get("value", 42)

    typed = job_pb2.Task(name="bad.result")
    typed.message.Pack(Duration(seconds=1))
    cases = [
        (typed, "InvalidInput", "task 'bad.result' takes JSON, not a google.protobuf.Duration message"),
        (job_pb2.Task(name="bad.result"), "BadResult", "task 'bad.result' returned a int: return a message"),
    ]
    for spec, error_type, message in cases:
        with pytest.raises(PermanentError) as err:
            await app.handle(context(spec))
        assert (err.value.error_type, str(err.value).startswith(message)) == (error_type, True)


async def test_a_task_this_process_does_not_serve_is_handed_back_for_another_process_of_the_pool() -> None:
    app = TaskApp("acme")

    @app.task("old.one")
    async def old(ctx: TaskContext, data: dict[str, Any]) -> None: ...

    with pytest.raises(Defer) as deferred:
        await app.handle(context(job_pb2.Task(name="new.one")))
    assert deferred.value.reason == "this process of pool 'acme' does not serve task 'new.one'"
    assert deferred.value.delay > 0
