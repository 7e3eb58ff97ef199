"""The Store contract: every test taking `store` runs against each implementation (see conftest.py)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import sqlite3
import sys
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

import pytest

from syllabus.ids import new_id
from syllabus.store.base import InvalidPageToken, JobQuery, Store
from syllabus.store.embedded import SCHEMA_VERSION, EmbeddedStore
from syllabus.store.records import DuplicateId
from syllabus.v1 import course_pb2, job_pb2

QUEUED = job_pb2.JOB_STATE_QUEUED
RUNNING = job_pb2.JOB_STATE_RUNNING
SUCCEEDED = job_pb2.JOB_STATE_SUCCEEDED
FAILED = job_pb2.JOB_STATE_FAILED

REPO_ROOT = Path(__file__).resolve().parents[2]


def make_job(
    tenant: str = "acme",
    *,
    key: str = "",
    labels: Mapping[str, str] | None = None,
    kind: str = "summarize_text",
    state: job_pb2.JobState = QUEUED,
    parent_id: str = "",
) -> job_pb2.Job:
    job = job_pb2.Job(id=new_id(), tenant=tenant, kind=kind, state=state, parent_id=parent_id)
    job.spec.summarize_text.text = f"text of {job.id}"
    job.options.idempotency_key = key
    job.options.labels.update(labels or {})
    return job


def full_job() -> job_pb2.Job:
    """A job with every field set, so a round trip that drops or mangles any of them shows."""
    job = job_pb2.Job(
        id=new_id(),
        tenant="acme",
        kind="generate_course",
        state=job_pb2.JOB_STATE_RETRYING,
        attempt=2,
        lease=9,
        max_attempts=7,
        parent_id=new_id(),
        cancel_requested=True,
        status_message="waiting for a worker: no process of the generator service is running",
        schedule_id=new_id(),
        stall_count=1,
        trace_id="0af7651916cd43dd8448eb211c80319c",
        trace_parent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    for number, outcome in ((1, job_pb2.JOB_STATE_QUEUED), (2, job_pb2.JOB_STATE_RETRYING)):
        ran = job.attempts.add(attempt=number, worker_id=new_id(), host="worker-7", outcome=outcome)
        ran.start_time.FromSeconds(1_800_000_000 + number)
        ran.end_time.FromSeconds(1_800_000_010 + number)
    course = job.spec.generate_course
    course.prompt = "Rust for Python developers"
    course.modules = 4
    course.audience = "Python developers"
    course.level = course_pb2.COURSE_LEVEL_ADVANCED
    course.language = "de-CH"
    course.model.provider = "gemini"
    course.model.model = "gemini-2.5-flash"
    course.course_id = new_id()
    job.options.priority = job_pb2.PRIORITY_BATCH
    job.options.run_at.FromSeconds(1_900_000_000)
    job.options.idempotency_key = "order-42/attempt=1"
    job.options.max_attempts = 7
    job.options.timeout.FromSeconds(90)
    job.options.labels.update({"team": "red", "team.name": "x.y", "empty": ""})
    job.create_time.FromNanoseconds(1_700_000_000_123_456_789)
    job.start_time.FromSeconds(1_700_000_001)
    job.end_time.FromSeconds(1_700_000_002)
    job.update_time.FromSeconds(1_700_000_003)
    job.progress.percent = 42.5
    job.progress.message = "lesson 3 of 6 written"
    job.result.reference = "course/abc"
    job.result.text = "ünïcödé ✓"
    job.result.usage.input_tokens = 2**40
    job.result.usage.output_tokens = 17
    job.result.usage.estimated_cost_usd = 0.0125
    job.parent_result.reference = "courses/parent"
    job.parent_result.usage.output_tokens = 3
    for attempt in (1, 2):
        error = job.errors.add(attempt=attempt, type="ProviderUnavailable", message=f"503 on {attempt}")
        error.time.FromSeconds(1_700_000_000 + attempt)
    job.errors[1].permanent = True
    return job


def ids(records: Sequence[job_pb2.Job | job_pb2.Schedule]) -> list[str]:
    return [record.id for record in records]


def newest_first(jobs: list[job_pb2.Job]) -> list[str]:
    return sorted(ids(jobs), reverse=True)


async def insert(store: Store, *jobs: job_pb2.Job) -> None:
    results = await store.insert_jobs(jobs)
    assert all(result.created for result in results)


async def list_ids(
    store: Store,
    tenant: str = "acme",
    *,
    states: frozenset[int] = frozenset(),
    kind: str = "",
    labels: Mapping[str, str] | None = None,
    parent_id: str = "",
) -> list[str]:
    query = JobQuery(tenant, states, kind, labels or {}, parent_id, page_size=1000)
    page = await store.list_jobs(query)
    assert page.next_page_token == ""
    return ids(page.jobs)


def appending_error(attempt: int) -> Callable[[job_pb2.Job], job_pb2.Job]:
    def change(job: job_pb2.Job) -> job_pb2.Job:
        job.errors.add(attempt=attempt, type="Boom", message=f"attempt {attempt}")
        return job

    return change


def bump_attempt(job: job_pb2.Job) -> job_pb2.Job:
    job.attempt += 1
    return job


# Insert and get.


async def test_insert_get_round_trip_preserves_every_field(store: Store) -> None:
    job = full_job()
    assert {field.name for field in job.DESCRIPTOR.fields} == {field.name for field, _ in job.ListFields()}, (
        "full_job() must set every Job field"
    )

    [result] = await store.insert_jobs([job])

    assert result.created
    assert result.job == job
    assert await store.get_job(job.id) == job


async def test_get_missing_job_is_none(store: Store) -> None:
    assert await store.get_job(new_id()) is None


async def test_returned_jobs_are_copies(store: Store) -> None:
    job = make_job()
    [result] = await store.insert_jobs([job])
    result.job.attempt = 99
    job.attempt = 98
    fetched = await store.get_job(job.id)
    assert fetched is not None
    fetched.attempt = 97

    stored = await store.get_job(job.id)
    assert stored is not None
    assert stored.attempt == 0


@pytest.mark.parametrize("record", ["job", "course", "schedule"])
async def test_insert_refuses_a_record_without_id_and_names_it(store: Store, record: str) -> None:
    inserts: dict[str, Callable[[], Awaitable[object]]] = {
        "job": lambda: store.insert_jobs([job_pb2.Job(tenant="acme")]),
        "course": lambda: store.insert_course(course_pb2.Course(tenant="acme")),
        "schedule": lambda: store.insert_schedule(job_pb2.Schedule(tenant="acme")),
    }
    with pytest.raises(ValueError, match=f"^{record} has no id$"):
        await inserts[record]()


async def test_an_update_that_moves_a_job_to_another_kind_and_parent_is_listed_there(store: Store) -> None:
    job = make_job(parent_id="p1")
    await insert(store, job)

    def move(current: job_pb2.Job) -> job_pb2.Job:
        current.kind = "render_document"
        current.parent_id = "p2"
        current.spec.render_document.course_id = "c1"
        return current

    updated = await store.update_job(job.id, move)
    assert updated.applied and updated.job is not None and updated.job.kind == "render_document"
    assert await list_ids(store, kind="render_document") == [job.id]
    assert await list_ids(store, parent_id="p2") == [job.id]
    assert await list_ids(store, kind="summarize_text") == []
    assert await list_ids(store, parent_id="p1") == []


async def test_insert_refuses_a_taken_job_id(store: Store) -> None:
    job = make_job()
    await insert(store, job)
    with pytest.raises(DuplicateId, match=f"^job {job.id} already exists$"):
        await store.insert_jobs([job])


async def test_idempotency_key_returns_the_earlier_job_across_calls(store: Store) -> None:
    first = make_job(key="order-1")
    await insert(store, first)
    second = make_job(key="order-1", kind="generate_quiz")

    [result] = await store.insert_jobs([second])

    assert result == (first, False)
    assert await store.get_job(second.id) is None


async def test_idempotency_key_returns_the_earlier_job_within_one_batch(store: Store) -> None:
    first, duplicate, other, again = (
        make_job(key="k"),
        make_job(key="k"),
        make_job(key="other"),
        make_job(key="k"),
    )

    results = await store.insert_jobs([first, duplicate, other, again])

    assert results == [(first, True), (first, False), (other, True), (first, False)]
    assert await store.get_job(duplicate.id) is None
    assert await store.get_job(again.id) is None


async def test_idempotency_key_duplicate_of_a_stored_job_within_a_batch(store: Store) -> None:
    stored = make_job(key="k")
    await insert(store, stored)
    fresh, duplicate, duplicate_again = make_job(), make_job(key="k"), make_job(key="k")

    results = await store.insert_jobs([fresh, duplicate, duplicate_again])

    assert results == [(fresh, True), (stored, False), (stored, False)]


async def test_idempotency_keys_of_different_tenants_do_not_collide(store: Store) -> None:
    acme, other = make_job("acme", key="k"), make_job("other", key="k")

    assert await store.insert_jobs([acme, other]) == [(acme, True), (other, True)]
    assert await store.insert_jobs([make_job("other", key="k")]) == [(other, False)]


async def test_empty_idempotency_keys_never_collide(store: Store) -> None:
    first, second, third = make_job(), make_job(), make_job()
    await insert(store, first)

    assert await store.insert_jobs([second, third]) == [(second, True), (third, True)]
    assert await store.get_job(second.id) == second
    assert sorted(await list_ids(store)) == sorted(ids([first, second, third]))


async def test_bulk_insert_of_a_thousand_jobs_with_in_batch_duplicates(store: Store) -> None:
    jobs = [make_job(key=f"k{i % 900}") for i in range(1000)]

    results = await store.insert_jobs(jobs)

    assert [result.created for result in results] == [True] * 900 + [False] * 100
    assert all(results[i].job == jobs[i - 900] for i in range(900, 1000))
    assert sorted(await list_ids(store)) == sorted(ids(jobs[:900]))


async def test_delete_jobs_removes_them_and_frees_their_keys(store: Store) -> None:
    kept = make_job(key="kept", labels={"team": "red"})
    gone = [make_job(key="retry-me", labels={"team": "red"}), make_job(labels={"team": "red"})]
    await insert(store, kept, *gone)

    await store.delete_jobs([*ids(gone), new_id()])
    await store.delete_jobs([])

    for job in gone:
        assert await store.get_job(job.id) is None
    assert await store.get_job(kept.id) == kept
    assert await list_ids(store, labels={"team": "red"}) == [kept.id]
    again = make_job(key="retry-me")
    assert await store.insert_jobs([again]) == [(again, True)]
    assert await store.update_job(gone[0].id, bump_attempt) == (None, False)


# Listing.


async def test_list_jobs_newest_first_and_by_tenant(store: Store) -> None:
    acme = [make_job("acme") for _ in range(5)]
    other = make_job("other")
    await insert(store, *acme, other)

    assert await list_ids(store, "acme") == newest_first(acme)
    assert await list_ids(store, "other") == [other.id]
    assert await list_ids(store, "nobody") == []


async def test_list_jobs_filters(store: Store) -> None:
    parent = new_id()
    a1 = make_job(labels={"team": "red", "env": "prod"})
    a2 = make_job(kind="generate_lesson", state=RUNNING, labels={"team": "red"}, parent_id=parent)
    a3 = make_job(kind="generate_quiz", state=SUCCEEDED, labels={"team": "blue", "env": "prod"}, parent_id=parent)
    a4 = make_job(state=FAILED, labels={"team.name": "x.y"})
    o1 = make_job("other", labels={"team": "red"}, parent_id=parent)
    await insert(store, a1, a2, a3, a4, o1)

    assert await list_ids(store, states=frozenset({QUEUED, RUNNING})) == newest_first([a1, a2])
    assert await list_ids(store, states=frozenset({FAILED})) == [a4.id]
    assert await list_ids(store, kind="summarize_text") == newest_first([a1, a4])
    assert await list_ids(store, parent_id=parent) == newest_first([a2, a3])
    assert await list_ids(store, labels={"team": "red"}) == newest_first([a1, a2])
    assert await list_ids(store, labels={"team": "red", "env": "prod"}) == [a1.id]
    assert await list_ids(store, labels={"team": "red", "env": "dev"}) == []
    assert await list_ids(store, labels={"team": ""}) == []
    assert await list_ids(store, labels={"team.name": "x.y"}) == [a4.id]
    assert await list_ids(store, labels={"team": "x.y"}) == []
    assert await list_ids(
        store, states=frozenset({SUCCEEDED}), kind="generate_quiz", parent_id=parent, labels={"env": "prod"}
    ) == [a3.id]
    assert await list_ids(store, kind="render_document") == []


async def test_list_jobs_paginates_without_duplicates_or_gaps(store: Store) -> None:
    red = [make_job(labels={"team": "red"}) for _ in range(23)]
    await insert(store, *red, *(make_job(labels={"team": "blue"}) for _ in range(10)))

    seen: list[str] = []
    token = ""
    pages = 0
    while True:
        page = await store.list_jobs(JobQuery(tenant="acme", labels={"team": "red"}, page_size=5, page_token=token))
        seen.extend(ids(page.jobs))
        pages += 1
        token = page.next_page_token
        if not token:
            break
        assert len(page.jobs) == 5

    assert pages == 5
    assert seen == newest_first(red)


async def test_a_full_last_page_has_no_next_token(store: Store) -> None:
    jobs = [make_job() for _ in range(4)]
    await insert(store, *jobs)

    first = await store.list_jobs(JobQuery(tenant="acme", page_size=2))
    second = await store.list_jobs(JobQuery(tenant="acme", page_size=2, page_token=first.next_page_token))

    assert ids(first.jobs) + ids(second.jobs) == newest_first(jobs)
    assert second.next_page_token == ""


async def test_page_size_defaults_to_50_and_is_capped_at_1000(store: Store) -> None:
    await insert(store, *(make_job() for _ in range(1001)))

    default = await store.list_jobs(JobQuery(tenant="acme", page_size=0))
    capped = await store.list_jobs(JobQuery(tenant="acme", page_size=5000))
    rest = await store.list_jobs(JobQuery(tenant="acme", page_size=5000, page_token=capped.next_page_token))

    assert len(default.jobs) == 50
    assert default.next_page_token
    assert len(capped.jobs) == 1000
    assert len(rest.jobs) == 1
    assert rest.next_page_token == ""
    with pytest.raises(ValueError, match="page_size"):
        await store.list_jobs(JobQuery(tenant="acme", page_size=-1))


async def test_foreign_page_tokens_are_refused(store: Store) -> None:
    for index in range(2):
        await store.insert_course(course_pb2.Course(id=new_id(), tenant="acme", title=f"course {index}"))
    await insert(store, make_job(), make_job())
    courses_token = (await store.list_courses("acme", 1, "")).next_page_token
    jobs_token = (await store.list_jobs(JobQuery(tenant="acme", page_size=1))).next_page_token
    assert courses_token
    assert jobs_token

    foreign = [
        "not a token!",
        "%%%",
        base64.urlsafe_b64encode(b"hello").decode(),
        base64.urlsafe_b64encode(b"\xff\xfe\xfd").decode(),
        courses_token,
    ]
    for token in foreign:
        with pytest.raises(InvalidPageToken):
            await store.list_jobs(JobQuery(tenant="acme", page_token=token))
    with pytest.raises(InvalidPageToken):
        await store.list_courses("acme", 10, jobs_token)


# Conditional updates of jobs.


async def test_update_job_applied(store: Store) -> None:
    job = make_job(labels={"team": "red"})
    await insert(store, job)

    def start(current: job_pb2.Job) -> job_pb2.Job:
        current.state = RUNNING
        current.attempt = 1
        current.options.labels["stage"] = "outline"
        del current.options.labels["team"]
        return current

    updated = await store.update_job(job.id, start)

    expected = job_pb2.Job()
    expected.CopyFrom(job)
    start(expected)
    assert updated == (expected, True)
    assert await store.get_job(job.id) == expected
    # The filter fields follow the record.
    assert await list_ids(store, states=frozenset({RUNNING})) == [job.id]
    assert await list_ids(store, states=frozenset({QUEUED})) == []
    assert await list_ids(store, labels={"stage": "outline"}) == [job.id]
    assert await list_ids(store, labels={"team": "red"}) == []


async def test_update_job_refused_leaves_the_job_as_it_was(store: Store) -> None:
    job = make_job()
    await insert(store, job)

    def refuse(current: job_pb2.Job) -> None:
        # Scribbling on its argument must not leak into the store: the change gets a copy.
        current.state = FAILED
        current.errors.add(attempt=1)

    assert await store.update_job(job.id, refuse) == (job, False)
    assert await store.get_job(job.id) == job


async def test_update_job_unchanged_counts_as_applied(store: Store) -> None:
    job = make_job()
    await insert(store, job)

    assert await store.update_job(job.id, lambda current: current) == (job, True)


async def test_update_missing_job(store: Store) -> None:
    calls: list[job_pb2.Job] = []

    def change(current: job_pb2.Job) -> job_pb2.Job:
        calls.append(current)
        return current

    assert await store.update_job(new_id(), change) == (None, False)
    assert calls == []


async def test_update_job_may_not_change_identity(store: Store) -> None:
    job = make_job(key="k")
    await insert(store, job)

    def rename(current: job_pb2.Job) -> job_pb2.Job:
        current.id = new_id()
        return current

    def move(current: job_pb2.Job) -> job_pb2.Job:
        current.tenant = "other"
        return current

    def rekey(current: job_pb2.Job) -> job_pb2.Job:
        current.options.idempotency_key = "k2"
        return current

    for change in (rename, move, rekey):
        with pytest.raises(ValueError, match="altered"):
            await store.update_job(job.id, change)
    assert await store.get_job(job.id) == job


async def test_concurrent_updates_of_one_job_all_land(store: Store) -> None:
    job = make_job()
    await insert(store, job)
    count = 40

    results = await asyncio.gather(*(store.update_job(job.id, appending_error(i)) for i in range(count)))

    assert all(applied for _, applied in results)
    stored = await store.get_job(job.id)
    assert stored is not None
    assert sorted(error.attempt for error in stored.errors) == list(range(count))


async def test_a_failing_update_leaves_concurrent_ones_applied(store: Store) -> None:
    jobs = [make_job() for _ in range(6)]
    await store.insert_jobs(jobs)

    def broken(current: job_pb2.Job) -> job_pb2.Job:
        raise RuntimeError("this change is broken")

    def running(current: job_pb2.Job) -> job_pb2.Job:
        current.state = RUNNING
        return current

    # Issued together, so a store that groups writes puts them in one transaction.
    results = await asyncio.gather(
        *(store.update_job(job.id, broken if i == 2 else running) for i, job in enumerate(jobs)),
        return_exceptions=True,
    )

    assert isinstance(results[2], RuntimeError)
    for i, job in enumerate(jobs):
        stored = await store.get_job(job.id)
        assert stored is not None
        assert stored.state == (QUEUED if i == 2 else RUNNING)


async def test_update_jobs_applies_each_change_on_its_own_terms(store: Store) -> None:
    applied, refused, unchanged = make_job(), make_job(), make_job()
    await insert(store, applied, refused, unchanged)
    missing = new_id()

    def running(current: job_pb2.Job) -> job_pb2.Job:
        current.state = RUNNING
        return current

    def refuse(current: job_pb2.Job) -> None:
        current.state = FAILED

    results = await store.update_jobs(
        [(applied.id, running), (refused.id, refuse), (missing, running), (unchanged.id, lambda current: current)]
    )

    expected = job_pb2.Job()
    expected.CopyFrom(applied)
    expected.state = RUNNING
    assert results == [(expected, True), (refused, False), (None, False), (unchanged, True)]
    assert [await store.get_job(job.id) for job in (applied, refused, unchanged)] == [expected, refused, unchanged]
    assert await store.get_job(missing) is None
    assert await list_ids(store, states=frozenset({RUNNING})) == [applied.id]


async def test_update_jobs_of_nothing_is_nothing(store: Store) -> None:
    assert await store.update_jobs([]) == []


async def test_update_jobs_applies_the_changes_of_one_job_in_order(store: Store) -> None:
    job, other = make_job(), make_job()
    await insert(store, job, other)

    results = await store.update_jobs(
        [(job.id, appending_error(0)), (other.id, bump_attempt), (job.id, appending_error(1))]
    )

    assert [[error.attempt for error in updated.job.errors] for updated in results if updated.job is not None] == [
        [0],
        [],
        [0, 1],
    ]
    assert all(updated.applied for updated in results)
    stored = await store.get_job(job.id)
    assert stored is not None
    assert [error.attempt for error in stored.errors] == [0, 1]


async def test_update_jobs_and_concurrent_updates_of_the_same_jobs_all_land(store: Store) -> None:
    jobs = [make_job() for _ in range(5)]
    await store.insert_jobs(jobs)
    rounds = 8

    await asyncio.gather(
        *(store.update_jobs([(job.id, appending_error(i)) for job in jobs]) for i in range(rounds)),
        *(store.update_job(job.id, appending_error(rounds + i)) for i in range(rounds) for job in jobs),
    )

    for job in jobs:
        stored = await store.get_job(job.id)
        assert stored is not None
        assert sorted(error.attempt for error in stored.errors) == list(range(2 * rounds))


async def test_update_jobs_with_a_change_that_raises_raises(store: Store) -> None:
    good, bad = make_job(), make_job()
    await insert(store, good, bad)

    def broken(current: job_pb2.Job) -> job_pb2.Job:
        raise RuntimeError("this change is broken")

    with pytest.raises(RuntimeError, match="broken"):
        await store.update_jobs([(good.id, bump_attempt), (bad.id, broken)])
    assert await store.get_job(bad.id) == bad
    # The store goes on answering.
    assert (await store.update_jobs([(bad.id, bump_attempt)]))[0].applied


async def test_embedded_update_jobs_with_a_change_that_raises_applies_none(db_path: Path) -> None:
    store = EmbeddedStore(db_path)
    await store.open()
    try:
        good, bad = make_job(), make_job()
        await insert(store, good, bad)

        def broken(current: job_pb2.Job) -> job_pb2.Job:
            raise RuntimeError("this change is broken")

        with pytest.raises(RuntimeError):
            await store.update_jobs([(good.id, bump_attempt), (bad.id, broken)])
        assert await store.get_job(good.id) == good
    finally:
        await store.close()


# Courses.


def make_course(tenant: str = "acme", title: str = "Rust") -> course_pb2.Course:
    course = course_pb2.Course(id=new_id(), job_id=new_id(), tenant=tenant, title=title, prompt="teach me")
    module = course.modules.add(index=0, title="Ownership", objectives=["borrow", "move"])
    module.lesson.body_markdown = "# Ownership"
    module.quiz.questions.add(text="What moves?", choices=["a", "b"], answer_index=1)
    course.costs.add(job_id=course.job_id, input_tokens=10, estimated_cost_usd=0.5)
    course.create_time.FromSeconds(1_700_000_000)
    return course


async def test_course_insert_get_list(store: Store) -> None:
    courses = [make_course(title=f"course {i}") for i in range(7)]
    for course in courses:
        await store.insert_course(course)
    await store.insert_course(make_course("other"))

    assert await store.get_course(courses[0].id) == courses[0]
    assert await store.get_course(new_id()) is None
    seen: list[course_pb2.Course] = []
    token = ""
    for expected_size in (3, 3, 1):
        page = await store.list_courses("acme", 3, token)
        assert len(page.courses) == expected_size
        seen.extend(page.courses)
        token = page.next_page_token
    assert token == ""
    assert [course.id for course in seen] == sorted((course.id for course in courses), reverse=True)
    assert seen[0] == max(courses, key=lambda course: course.id)
    assert (await store.list_courses("nobody", 0, "")).courses == []


async def test_course_insert_refuses_a_taken_id(store: Store) -> None:
    course = make_course()
    await store.insert_course(course)
    with pytest.raises(DuplicateId, match=f"^courses record {course.id} already exists$"):
        await store.insert_course(course)


async def test_update_course(store: Store) -> None:
    course = make_course()
    await store.insert_course(course)

    def retitle(current: course_pb2.Course) -> course_pb2.Course:
        current.title = "Rust, revised"
        return current

    updated = await store.update_course(course.id, retitle)

    assert updated is not None
    assert updated.title == "Rust, revised"
    assert await store.get_course(course.id) == updated
    assert await store.update_course(course.id, lambda _: None) == updated
    assert await store.update_course(new_id(), retitle) is None


async def test_concurrent_updates_of_one_course_all_land(store: Store) -> None:
    course = make_course()
    await store.insert_course(course)

    def add_document(index: int) -> Callable[[course_pb2.Course], course_pb2.Course]:
        def change(current: course_pb2.Course) -> course_pb2.Course:
            current.documents.add(object_name=f"doc-{index}", size_bytes=index)
            return current

        return change

    await asyncio.gather(*(store.update_course(course.id, add_document(i)) for i in range(25)))

    stored = await store.get_course(course.id)
    assert stored is not None
    assert sorted(document.size_bytes for document in stored.documents) == list(range(25))


async def test_a_course_keeps_the_version_a_change_replaces(store: Store) -> None:
    course = make_course()
    course.version = 1
    await store.insert_course(course)

    def retitle(current: course_pb2.Course) -> course_pb2.Course:
        current.title = "Rust, revised"
        return current

    def next_version(current: course_pb2.Course) -> course_pb2.Course:
        current.version += 1
        current.modules[0].lesson.body_markdown = f"# Ownership, version {current.version}"
        return current

    await store.update_course(course.id, retitle)  # no new version: nothing is kept
    assert await store.list_course_versions(course.id) == []
    before = await store.get_course(course.id)
    after = await store.update_course(course.id, next_version)

    assert after is not None and after.version == 2
    assert await store.get_course_version(course.id, 1) == before
    assert await store.get_course_version(course.id, 2) is None  # the current version is the course itself
    assert await store.get_course_version(new_id(), 1) is None
    assert await store.list_course_versions(course.id) == [before]
    assert await store.list_course_versions(new_id()) == []


async def test_concurrent_new_versions_of_one_course_are_all_kept(store: Store) -> None:
    course = make_course()
    course.version = 1
    await store.insert_course(course)

    def next_version(current: course_pb2.Course) -> course_pb2.Course:
        current.version += 1
        current.change = f"version {current.version}"
        return current

    await asyncio.gather(*(store.update_course(course.id, next_version) for _ in range(10)))

    stored = await store.get_course(course.id)
    kept = await store.list_course_versions(course.id)
    assert stored is not None and stored.version == 11
    assert [version.version for version in kept] == list(range(1, 11))
    # Each kept version is the record its successor replaced, not a copy read before another change landed.
    assert [version.change for version in kept] == ["", *(f"version {v}" for v in range(2, 11))]


# Schedules.


def make_schedule(tenant: str = "acme") -> job_pb2.Schedule:
    schedule = job_pb2.Schedule(id=new_id(), tenant=tenant, cron="0 9 * * 1", time_zone="Europe/Zurich")
    schedule.spec.summarize_text.text = "the weekly report"
    schedule.options.labels["source"] = "cron"
    schedule.next_run_time.FromSeconds(1_900_000_000)
    return schedule


async def test_schedule_crud(store: Store) -> None:
    schedules = [make_schedule() for _ in range(3)]
    for schedule in schedules:
        await store.insert_schedule(schedule)
    other = make_schedule("other")
    await store.insert_schedule(other)
    with pytest.raises(DuplicateId, match=f"^schedules record {other.id} already exists$"):
        await store.insert_schedule(other)

    assert await store.get_schedule(schedules[1].id) == schedules[1]
    assert await store.get_schedule(new_id()) is None
    listed = await store.list_schedules("acme")
    assert sorted(ids(listed)) == sorted(ids(schedules))
    assert listed == sorted(schedules, key=lambda schedule: schedule.id)
    assert await store.list_schedules("other") == [other]

    def pause(current: job_pb2.Schedule) -> job_pb2.Schedule:
        current.paused = True
        return current

    paused = await store.update_schedule(schedules[0].id, pause)
    assert paused is not None
    assert paused.paused
    assert await store.get_schedule(schedules[0].id) == paused
    assert await store.update_schedule(schedules[0].id, lambda _: None) == paused
    assert await store.update_schedule(new_id(), pause) is None

    assert await store.delete_schedule(schedules[0].id)
    assert not await store.delete_schedule(schedules[0].id)
    assert await store.get_schedule(schedules[0].id) is None
    assert ids(await store.list_schedules("acme")) == sorted(ids(schedules[1:]))


async def test_tenants_are_those_with_jobs_or_schedules(store: Store) -> None:
    assert await store.tenants() == []
    for tenant in ("zeta", "acme", "acme", "b-2"):
        await insert(store, make_job(tenant=tenant))
    await store.insert_schedule(make_schedule("only_schedules"))
    await store.insert_schedule(make_schedule("acme"))
    assert await store.tenants() == ["acme", "b-2", "only_schedules", "zeta"]


# The embedded store only.


async def test_embedded_store_keeps_everything_across_close_and_reopen(db_path: Path) -> None:
    job, course, schedule = full_job(), make_course(), make_schedule()
    first = EmbeddedStore(db_path)
    await first.open()
    await insert(first, job)
    await first.update_job(job.id, bump_attempt)
    await first.insert_course(course)
    await first.insert_schedule(schedule)
    await first.close()

    second = EmbeddedStore(db_path)
    await second.open()
    try:
        stored = await second.get_job(job.id)
        assert stored is not None
        assert stored.attempt == job.attempt + 1
        assert await second.get_course(course.id) == course
        assert await second.get_schedule(schedule.id) == schedule
        assert await second.insert_jobs([make_job(key=job.options.idempotency_key)]) == [(stored, False)]
        # Revisions carried over too: the next conditional update applies.
        assert (await second.update_job(job.id, bump_attempt)).applied
        assert await list_ids(second, labels={"team.name": "x.y"}) == [job.id]
    finally:
        await second.close()


async def test_embedded_batch_is_one_transaction(db_path: Path) -> None:
    # MongoDB's insert_many is not atomic, so this holds for the embedded store only.
    store = EmbeddedStore(db_path)
    await store.open()
    try:
        taken = make_job()
        await insert(store, taken)
        fresh = [make_job() for _ in range(3)]

        with pytest.raises(DuplicateId):
            await store.insert_jobs([*fresh, taken])

        for job in fresh:
            assert await store.get_job(job.id) is None
    finally:
        await store.close()


async def test_embedded_store_refuses_calls_when_not_open(db_path: Path) -> None:
    store = EmbeddedStore(db_path)
    with pytest.raises(RuntimeError, match=r"^the store is not open$"):
        await store.get_job(new_id())
    await store.open()
    await store.open()
    await store.close()
    await store.close()
    with pytest.raises(RuntimeError, match="not open"):
        await store.get_job(new_id())


async def test_embedded_store_creates_the_folders_its_file_needs(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "c" / "store.db"
    store = EmbeddedStore(path)
    await store.open()
    try:
        job = make_job()
        await insert(store, job)
        assert await store.get_job(job.id) == job
    finally:
        await store.close()
    assert path.is_file()


async def test_embedded_store_that_cannot_open_raises_and_stays_closed(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    store = EmbeddedStore(blocker / "store.db")
    for _ in range(2):
        with pytest.raises(OSError):
            await store.open()
        with pytest.raises(RuntimeError, match=r"^the store is not open$"):
            await store.get_job(new_id())


async def test_embedded_store_refuses_a_file_of_a_newer_schema(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(db_path)) as conn:
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    store = EmbeddedStore(db_path)
    with pytest.raises(RuntimeError) as refused:
        await store.open()
    assert (
        str(refused.value)
        == f"{db_path} has schema version {SCHEMA_VERSION + 1}; this build knows up to {SCHEMA_VERSION}"
    )


async def test_a_cancelled_call_does_not_strand_the_calls_batched_with_it(db_path: Path) -> None:
    store = EmbeddedStore(db_path)
    await store.open()
    running, release = threading.Event(), threading.Event()

    def hold(conn: object) -> str:
        running.set()
        release.wait()
        return "held"

    try:
        first = asyncio.create_task(store._read(hold))
        await asyncio.to_thread(running.wait)
        # Each call is stepped by hand up to its await: queued while the store's thread is busy, so the two run
        # as one batch after it, and the future it waits on is handed out.
        cancelled_call = store._read(lambda conn: "cancelled")
        kept_call = store._read(lambda conn: "kept")
        cancelled, kept = cancelled_call.send(None), kept_call.send(None)
        assert store._calls.qsize() == 2
        cancelled.cancel()
        release.set()
        assert await first == "held"
        assert await asyncio.wait_for(kept, 10) == "kept"
        cancelled_call.close()
        kept_call.close()
    finally:
        release.set()
        await store.close()


_UNCLOSED_SCRIPT = """
import asyncio, sys
from pathlib import Path
from syllabus.store.embedded import EmbeddedStore

async def main(path):
    store = EmbeddedStore(Path(path))
    await store.open()
    print(await store.get_job("nothing"))

asyncio.run(main(sys.argv[1]))
"""


async def test_a_process_that_never_closes_its_store_still_exits(db_path: Path) -> None:
    # As a process ends when its main code fails before it could close the store.
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _UNCLOSED_SCRIPT,
        str(db_path),
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), 20)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode == 0, stderr.decode()
    assert stdout.decode().strip() == "None"


async def test_two_embedded_stores_on_one_file_lose_no_update(db_path: Path) -> None:
    first, second = EmbeddedStore(db_path), EmbeddedStore(db_path)
    await first.open()
    await second.open()
    try:
        job = make_job()
        await insert(first, job)
        count = 30

        await asyncio.gather(
            *(store.update_job(job.id, bump_attempt) for store in (first, second) for _ in range(count))
        )

        for store in (first, second):
            stored = await store.get_job(job.id)
            assert stored is not None
            assert stored.attempt == 2 * count
    finally:
        await first.close()
        await second.close()


_INCREMENT_SCRIPT = """
import asyncio, sys
from pathlib import Path
from syllabus.store.embedded import EmbeddedStore

def bump(job):
    job.attempt += 1
    return job

async def main(path, job_id, count):
    store = EmbeddedStore(Path(path))
    await store.open()
    try:
        await asyncio.gather(*(store.update_job(job_id, bump) for _ in range(count)))
    finally:
        await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
"""


async def test_embedded_processes_sharing_one_file_lose_no_update(db_path: Path) -> None:
    store = EmbeddedStore(db_path)
    await store.open()
    try:
        job = make_job()
        await insert(store, job)
        count = 40

        processes = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _INCREMENT_SCRIPT,
                str(db_path),
                job.id,
                str(count),
                cwd=REPO_ROOT,
                stderr=asyncio.subprocess.PIPE,
            )
            for _ in range(2)
        ]
        await asyncio.gather(*(store.update_job(job.id, bump_attempt) for _ in range(count)))
        for process in processes:
            _, stderr = await process.communicate()
            assert process.returncode == 0, stderr.decode()

        stored = await store.get_job(job.id)
        assert stored is not None
        assert stored.attempt == 3 * count
    finally:
        await store.close()
