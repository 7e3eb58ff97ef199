"""SyllabusClient against the in-process pipeline on real NATS: every call, its errors, and watch resuming."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest
import pytest_asyncio

from syllabus.client import GatewayUnreachable, SyllabusClient, SyllabusError
from syllabus.errors import QueueFull
from syllabus.jetstream import StreamLimits, ensure_topology
from syllabus.v1 import job_pb2, job_service_pb2
from tests.pipeline import handlers
from tests.pipeline.conftest import Pipeline, StartWorker
from tests.pipeline.served import Requests, serve
from tests.ports import held_port
from tests.silent_gateway import silent_gateway

E = job_pb2
# Bounds for awaiting something that happens soon; generous so a slow machine never fails a test.
DEADLINE = 30.0


def spec(text: str) -> job_pb2.JobSpec:
    return E.JobSpec(summarize_text=E.SummarizeText(text=text))


def types(events: list[job_pb2.JobEvent]) -> list[str]:
    return [E.JobEventType.Name(e.type).removeprefix("JOB_EVENT_TYPE_") for e in events]


async def collect(events: AsyncIterator[job_pb2.JobEvent]) -> list[job_pb2.JobEvent]:
    return [event async for event in events]


@pytest_asyncio.fixture
async def client(pipeline: Pipeline) -> AsyncIterator[SyllabusClient]:
    async with serve(pipeline) as (_, addr), SyllabusClient.connect(addr, timeout=DEADLINE) as client:
        yield client


async def test_submit_get_and_idempotency(client: SyllabusClient, start_worker: StartWorker) -> None:
    options = E.JobOptions(idempotency_key="order-7", labels={"team": "docs"})
    job, created = await client.submit(spec("ok"), options)
    again, created_again = await client.submit(spec("ok"), options)
    assert created and not created_again
    assert again.id == job.id and job.state == E.JOB_STATE_QUEUED and job.kind == "summarize_text"
    await start_worker()
    events = await collect(client.watch(job.id))
    assert types(events) == ["QUEUED", "STARTED", "SUCCEEDED"]
    done = await client.get(job.id)
    assert done.state == E.JOB_STATE_SUCCEEDED and done.result.text == "done by attempt 1: ok"
    assert done.options.labels["team"] == "docs"


async def test_submit_many_is_all_or_nothing(client: SyllabusClient) -> None:
    results = await client.submit_many([(spec("a"), None), (spec("b"), E.JobOptions(priority=E.PRIORITY_BATCH))])
    assert [created for _, created in results] == [True, True]
    assert results[1][0].options.priority == E.PRIORITY_BATCH
    with pytest.raises(SyllabusError) as err:
        await client.submit_many([(spec("c"), None), (spec(""), None)])
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in err.value.field_violations] == ["requests[1].spec.summarize_text.text"]
    listed = await client.list()
    assert sorted(job.id for job in listed.items) == sorted(job.id for job, _ in results)


async def test_list_filters_and_iterates_every_page(client: SyllabusClient, start_worker: StartWorker) -> None:
    ids = [(await client.submit(spec("ok"), E.JobOptions(labels={"n": str(i % 2)})))[0].id for i in range(5)]
    first = await client.list(page_size=2)
    assert [job.id for job in first.items] == ids[::-1][:2] and first.next_page_token
    assert [job.id async for job in client.iter_jobs(page_size=2)] == ids[::-1]
    odd = await client.list(labels={"n": "1"})
    assert [job.id for job in odd.items] == [ids[3], ids[1]] and not odd.next_page_token
    assert not (await client.list(states=[E.JOB_STATE_SUCCEEDED])).items
    assert not (await client.list(kind="render_document")).items
    await start_worker()
    await collect(client.watch(ids[0]))
    succeeded = await client.list(states=[E.JOB_STATE_SUCCEEDED], kind="summarize_text")
    assert ids[0] in [job.id for job in succeeded.items]


async def test_cancel_queued_and_finished_jobs(client: SyllabusClient, start_worker: StartWorker) -> None:
    queued, _ = await client.submit(spec("ok"))
    canceled = await client.cancel(queued.id, reason="changed my mind")
    assert canceled.state == E.JOB_STATE_CANCELED
    assert types(await collect(client.watch(queued.id))) == ["QUEUED", "CANCELED"]
    await start_worker()
    finished, _ = await client.submit(spec("ok"))
    await collect(client.watch(finished.id))
    assert (await client.cancel(finished.id)).state == E.JOB_STATE_SUCCEEDED


async def test_watch_from_a_sequence(client: SyllabusClient, start_worker: StartWorker) -> None:
    # Queued before a worker runs, so QUEUED surely comes before STARTED.
    job, _ = await client.submit(spec("progress"))
    await start_worker()
    events = await collect(client.watch(job.id))
    assert types(events) == ["QUEUED", "STARTED", "PROGRESS", "SUCCEEDED"]
    assert events[2].progress.percent == 50 and events[2].progress.message == "half way"
    assert await collect(client.watch(job.id, after_sequence=events[1].sequence)) == events[2:]


async def test_watch_resumes_after_the_stream_drops(pipeline: Pipeline, start_worker: StartWorker) -> None:
    """The gateway goes away mid-watch; events published meanwhile still arrive, once each, in order."""
    # Held for the whole test, so the gateway comes back on the port it left and nothing else takes it meanwhile.
    with held_port(shared=True) as port:
        await watch_across_a_gateway_restart(pipeline, start_worker, port)


async def watch_across_a_gateway_restart(pipeline: Pipeline, start_worker: StartWorker, port: int) -> None:
    requests: Requests = []
    received: asyncio.Queue[job_pb2.JobEvent] = asyncio.Queue()

    async def follow(client: SyllabusClient, job_id: str) -> list[job_pb2.JobEvent]:
        seen = []
        async for event in client.watch(job_id):
            seen.append(event)
            received.put_nowait(event)
        return seen

    async with serve(pipeline, port, requests) as (_, addr):
        client = SyllabusClient.connect(addr, timeout=DEADLINE, reconnect_timeout=DEADLINE)
        job, _ = await client.submit(spec("block"))
        await start_worker()
        watching = asyncio.create_task(follow(client, job.id))
        while (event := await asyncio.wait_for(received.get(), DEADLINE)).type != E.JOB_EVENT_TYPE_STARTED:
            pass
        started = event
    # Leaving the block stopped that gateway: the watch has dropped.
    try:
        # The job finishes while no gateway serves the watch: its end is only in the EVENTS stream.
        handlers.release.set()
        history = await pipeline.events(job.id)
        assert types(history) == ["QUEUED", "STARTED", "SUCCEEDED"]
        async with serve(pipeline, port, requests):
            seen = await asyncio.wait_for(watching, DEADLINE)
    finally:
        watching.cancel()
        await client.close()
    assert seen == history
    watches = [r for r in requests if isinstance(r, job_service_pb2.WatchJobRequest)]
    assert [(r.job_id, r.after_sequence) for r in watches] == [(job.id, 0), (job.id, started.sequence)]


async def test_run_submits_and_waits_for_the_end(client: SyllabusClient, start_worker: StartWorker) -> None:
    await start_worker()
    heard: list[job_pb2.JobEvent] = []
    ran = await client.run(spec("progress"), E.JobOptions(idempotency_key="run-1"), heard.append)
    assert ran.created and ran.job.state == E.JOB_STATE_QUEUED
    assert types(heard) == ["QUEUED", "STARTED", "PROGRESS", "SUCCEEDED"]
    assert ran.end == heard[-1] and ran.end.result.text == "done by attempt 1: progress"
    # Every event as it is stored: the run listened before publishing, so nothing was missed or made up.
    assert heard == await collect(client.watch(ran.job.id))
    # The same key again: the earlier job, its events read back from the history.
    again: list[job_pb2.JobEvent] = []
    repeated = await client.run(spec("progress"), E.JobOptions(idempotency_key="run-1"), again.append)
    assert not repeated.created and repeated.job.id == ran.job.id and again == heard


async def test_run_ends_with_a_failure_and_refuses_bad_input(client: SyllabusClient, start_worker: StartWorker) -> None:
    await start_worker()
    ran = await client.run(spec("fail-permanent"))
    assert ran.end.state == E.JOB_STATE_FAILED and ran.end.terminal and ran.end.error.permanent
    assert (await client.get(ran.job.id)).state == E.JOB_STATE_FAILED
    with pytest.raises(SyllabusError) as err:
        await client.run(spec(""))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in err.value.field_violations] == ["spec.summarize_text.text"]


async def test_run_follows_on_after_the_gateway_restarts(pipeline: Pipeline, start_worker: StartWorker) -> None:
    """The run's stream drops while the job runs; the client follows the job with WatchJob from its last event."""
    with held_port(shared=True) as port:
        requests: Requests = []
        heard: asyncio.Queue[job_pb2.JobEvent] = asyncio.Queue()
        async with serve(pipeline, port, requests) as (_, addr):
            client = SyllabusClient.connect(addr, timeout=DEADLINE, reconnect_timeout=DEADLINE)
            await start_worker()
            running = asyncio.create_task(client.run(spec("block"), on_event=heard.put_nowait))
            while (event := await asyncio.wait_for(heard.get(), DEADLINE)).type != E.JOB_EVENT_TYPE_STARTED:
                pass
            started = event
        try:
            handlers.release.set()
            history = await pipeline.events(started.job_id)
            assert types(history) == ["QUEUED", "STARTED", "SUCCEEDED"]
            async with serve(pipeline, port, requests):
                ran = await asyncio.wait_for(running, DEADLINE)
        finally:
            running.cancel()
            await client.close()
    assert ran.end == history[-1] and ran.job.id == started.job_id
    run, resumed = requests
    assert isinstance(run, job_service_pb2.RunJobRequest) and isinstance(resumed, job_service_pb2.WatchJobRequest)
    assert (resumed.job_id, resumed.after_sequence) == (started.job_id, started.sequence)


async def test_watch_all_follows_live_events_of_a_kind(client: SyllabusClient, start_worker: StartWorker) -> None:
    await start_worker()
    subscribed = asyncio.Event()
    stream = client.watch_all("summarize_text", subscribed=subscribed)

    async def next_event() -> job_pb2.JobEvent:
        return await anext(stream)

    first_event = asyncio.create_task(next_event())
    await asyncio.wait_for(subscribed.wait(), DEADLINE)
    jobs = {(await client.submit(spec("ok")))[0].id for _ in range(2)}
    finished: set[str] = set()
    event = await asyncio.wait_for(first_event, DEADLINE)
    while True:
        if event.type == E.JOB_EVENT_TYPE_SUCCEEDED:
            finished.add(event.job_id)
        if finished == jobs:
            break
        event = await asyncio.wait_for(next_event(), DEADLINE)
    await stream.aclose()
    assert finished == jobs


async def test_dead_letters_list_show_retry_and_purge(client: SyllabusClient, start_worker: StartWorker) -> None:
    await start_worker()
    dead_ids = []
    for _ in range(3):
        job, _ = await client.submit(spec("fail-permanent"))
        assert types(await collect(client.watch(job.id)))[-1] == "FAILED"
        dead_ids.append(job.id)
    page = await client.dead_letters("summarize_text", page_size=2)
    assert len(page.items) == 2 and page.next_page_token
    # Oldest first: each job was dead-lettered before the next was submitted.
    assert [dead.job_id async for dead in client.iter_dead_letters(page_size=1)] == dead_ids
    assert not (await client.dead_letters("render_document")).items
    dead = await client.dead_letter(dead_ids[0])
    assert dead.reason == "permanent error" and dead.job.spec == spec("fail-permanent")
    assert [(e.attempt, e.type) for e in dead.job.errors] == [(1, "BadInput")]

    with pytest.raises(SyllabusError) as err:
        await client.retry_dead_letter(dead_ids[0], E.JobSpec(render_document=E.RenderDocument(course_id="c")))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [v.field for v in err.value.field_violations] == ["spec"]

    retried = await client.retry_dead_letter(dead_ids[0], spec("ok:edited"), E.JobOptions(max_attempts=2))
    assert retried.state == E.JOB_STATE_QUEUED and retried.max_attempts == 2
    events = await collect(client.watch(dead_ids[0]))
    assert types(events)[-1] == "SUCCEEDED" and events[-1].result.text == "done by attempt 1: edited"
    with pytest.raises(SyllabusError) as err:
        await client.dead_letter(dead_ids[0])
    assert err.value.code == grpc.StatusCode.NOT_FOUND

    assert await client.purge_dead_letters("render_document") == 0
    assert await client.purge_dead_letters() == 2
    assert not (await client.dead_letters()).items


async def test_errors_carry_code_message_and_details(client: SyllabusClient, pipeline: Pipeline) -> None:
    with pytest.raises(SyllabusError) as err:
        await client.get("nope")
    assert err.value.code == grpc.StatusCode.NOT_FOUND and err.value.message == "job 'nope' not found"
    with pytest.raises(SyllabusError) as err:
        await collect(client.watch("nope"))
    assert err.value.code == grpc.StatusCode.NOT_FOUND
    with pytest.raises(SyllabusError) as err:
        await client.submit(spec(""), E.JobOptions(labels={"Bad Key": "x"}))
    assert err.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert sorted(v.field for v in err.value.field_violations) == [
        'options.labels["Bad Key"]',
        "spec.summarize_text.text",
    ]
    await ensure_topology(pipeline.nc, pipeline.topology, StreamLimits(max_jobs=1))
    await client.submit(spec("ok"))
    with pytest.raises(SyllabusError) as err:
        await client.submit(spec("ok"))
    assert err.value.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert err.value.retry_delay == QueueFull().retry_after


async def test_an_unreachable_gateway_fails_at_once_and_says_where(closed_addr: str) -> None:
    addr = closed_addr
    async with SyllabusClient.connect(addr, timeout=DEADLINE) as client:
        with pytest.raises(GatewayUnreachable) as err:
            await client.get("any")
        assert err.value.addr == addr and err.value.code == grpc.StatusCode.UNAVAILABLE
        # A watch that never got going is not resumed: there is nothing to wait for.
        with pytest.raises(GatewayUnreachable):
            await collect(client.watch("any"))


async def test_run_fails_when_the_gateway_never_answers() -> None:
    """A server that takes the call and says nothing: the run ends at the client's timeout, as a submit would,
    rather than wait for ever for an answer."""
    async with silent_gateway() as (addr, taken), SyllabusClient.connect(addr, timeout=0.5) as client:
        with pytest.raises(SyllabusError) as err:
            await client.run(spec("ok"))
        assert taken.is_set()
    assert err.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert err.value.message == f"the gateway at {addr} did not answer within 0.5s"
