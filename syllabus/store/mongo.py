"""The production store: MongoDB through pymongo's async client.

Each record is one document: the serialized protobuf in `data`, beside it the fields that are filtered on or
kept unique, and a `revision` that conditional updates match on (see records.conditional_update).

Labels are stored as an array of "key=value" strings, not as a subdocument: label keys may contain dots,
which MongoDB reads as a path in a query, and "=" cannot occur in a key, so the pair stays unambiguous.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

from pymongo import AsyncMongoClient, IndexModel, ReadPreference, UpdateOne, WriteConcern
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from syllabus.store import records
from syllabus.store.base import (
    Activity,
    ActivityQuery,
    CourseChange,
    CoursePage,
    Inserted,
    JobChange,
    JobCount,
    JobPage,
    JobQuery,
    ScheduleChange,
    Updated,
)
from syllabus.v1 import course_pb2, job_pb2

Document = dict[str, Any]

_DUPLICATE_KEY = 11000

_JOB_INDEXES = [
    IndexModel(
        [("tenant", 1), ("idempotency_key", 1)],
        name="jobs_idempotency",
        unique=True,
        # $ne is not allowed in a partial filter; every non-empty string is greater than "".
        partialFilterExpression={"idempotency_key": {"$gt": ""}},
    ),
    IndexModel([("tenant", 1), ("_id", -1)], name="jobs_tenant_id"),
    IndexModel([("tenant", 1), ("state", 1), ("_id", -1)], name="jobs_tenant_state_id"),
    IndexModel([("tenant", 1), ("kind", 1), ("_id", -1)], name="jobs_tenant_kind_id"),
    IndexModel([("parent_id", 1), ("_id", -1)], name="jobs_parent"),
    IndexModel([("tenant", 1), ("labels", 1), ("_id", -1)], name="jobs_tenant_labels"),
    # end_ns is null until the job ends; null is not greater than 0.
    IndexModel(
        [("tenant", 1), ("end_ns", -1), ("_id", -1)],
        name="jobs_tenant_end",
        partialFilterExpression={"end_ns": {"$gt": 0}},
    ),
    IndexModel([("tenant", 1), ("state", 1), ("create_ns", 1)], name="jobs_tenant_state_create"),
    IndexModel([("tenant", 1), ("create_ns", 1)], name="jobs_tenant_create"),
    # start_ns is null until the job's first attempt starts.
    IndexModel(
        [("tenant", 1), ("start_ns", 1)], name="jobs_tenant_start", partialFilterExpression={"start_ns": {"$gt": 0}}
    ),
    IndexModel(
        [("tenant", 1), ("schedule_id", 1), ("_id", -1)],
        name="jobs_tenant_schedule",
        partialFilterExpression={"schedule_id": {"$gt": ""}},
    ),
]
_NOT_ENDED_STATES = sorted(
    int(state) for state in job_pb2.JobState.values() if state and state not in records.ENDED_STATES
)
_WAITING_STATES = [int(job_pb2.JOB_STATE_QUEUED), int(job_pb2.JOB_STATE_SCHEDULED)]
# Documents written before a field was added get it filled in from their record on open, this many at a time.
_FILL_BATCH = 500


def _label_pairs(labels: dict[str, str]) -> list[str]:
    return [f"{key}={value}" for key, value in sorted(labels.items())]


def _job_fields(row: records.JobColumns) -> Document:
    """Everything but _id and revision, as written on insert and on every update."""
    return {
        "tenant": row.tenant,
        "state": row.state,
        "kind": row.kind,
        "parent_id": row.parent_id,
        "idempotency_key": row.idempotency_key,
        "labels": _label_pairs(row.labels),
        "data": row.data,
        "task": row.task,
        "priority": row.priority,
        "create_ns": row.create_ns,
        "end_ns": row.end_ns,
        "schedule_id": row.schedule_id,
        "start_ns": row.start_ns,
    }


# A write is acknowledged once a majority of the replica set has it in its journal: it survives the primary's
# loss and a power cut of any minority. Options in the URL win over these (`?w=1&journal=false` relaxes them).
DURABLE_WRITES: Document = {"w": "majority", "j": True}


def durable_database(client: AsyncMongoClient[Document], name: str) -> AsyncDatabase[Document]:
    """The store's database: majority, journaled writes unless the URL says otherwise, and reads from the primary
    whatever the URL says, so a record just written is read back as written (a secondary may lag behind)."""
    concern = WriteConcern(**(DURABLE_WRITES | client.write_concern.document))
    return client.get_database(name, write_concern=concern, read_preference=ReadPreference.PRIMARY)


class MongoStore:
    def __init__(self, url: str, database: str) -> None:
        self._url = url
        self._database = database
        self._client: AsyncMongoClient[Document] | None = None
        self._db: AsyncDatabase[Document] | None = None

    # Lifecycle.

    async def open(self) -> None:
        if self._client is not None:
            return
        client: AsyncMongoClient[Document] = AsyncMongoClient(self._url)
        try:
            db = durable_database(client, self._database)
            await _fill_added_fields(db["jobs"])
            await db["jobs"].create_indexes(_JOB_INDEXES)
            await db["courses"].create_indexes([IndexModel([("tenant", 1), ("_id", -1)], name="courses_tenant_id")])
            await db["course_versions"].create_indexes(
                [IndexModel([("course_id", 1), ("version", 1)], name="course_versions_course_version")]
            )
            await db["schedules"].create_indexes([IndexModel([("tenant", 1), ("_id", 1)], name="schedules_tenant_id")])
        except BaseException:
            await client.close()
            raise
        self._client, self._db = client, db

    async def close(self) -> None:
        client, self._client, self._db = self._client, None, None
        if client is not None:
            await client.close()

    def _collection(self, name: str) -> AsyncCollection[Document]:
        if self._db is None:
            raise RuntimeError("the store is not open")
        return self._db[name]

    async def _read(self, collection: str, record_id: str) -> tuple[int, bytes] | None:
        doc = await self._collection(collection).find_one({"_id": record_id}, projection={"revision": 1, "data": 1})
        return None if doc is None else (doc["revision"], doc["data"])

    async def _write(self, collection: str, record_id: str, revision: int, fields: Document) -> bool:
        result = await self._collection(collection).update_one(
            {"_id": record_id, "revision": revision}, {"$set": fields, "$inc": {"revision": 1}}
        )
        return result.matched_count == 1

    async def _find_data(
        self, collection: str, query: Document, sort: list[tuple[str, int]], limit: int
    ) -> list[Document]:
        cursor = self._collection(collection).find(query, projection={"data": 1}, sort=sort, limit=limit)
        return [doc async for doc in cursor]

    # Jobs.

    async def insert_jobs(self, jobs: Sequence[job_pb2.Job]) -> list[Inserted]:
        for job in jobs:
            records.require_id(job.id, "job")
        rows = [records.job_columns(job) for job in jobs]
        # A later job of the batch with the key of an earlier one resolves to that earlier one. The server is
        # not asked to sort it out: unordered inserts may run in any order, and "earlier wins" must hold.
        first_with_key: dict[tuple[str, str], int] = {}
        earlier: list[int | None] = []
        for index, row in enumerate(rows):
            key = (row.tenant, row.idempotency_key)
            earlier.append(first_with_key.get(key) if row.idempotency_key else None)
            first_with_key.setdefault(key, index)
        to_insert = [index for index, previous in enumerate(earlier) if previous is None]
        taken = await self._insert_many([rows[index] for index in to_insert])

        results: list[Inserted] = []
        for index, row in enumerate(rows):
            previous = earlier[index]
            if previous is not None:
                results.append(Inserted(results[previous].job, False))
            elif row.id in taken:
                results.append(await self._holder_of_key(row))
            else:
                results.append(Inserted(records.parse_job(row.data), True))
        return results

    async def _insert_many(self, rows: list[records.JobColumns]) -> set[str]:
        """Inserts what it can; returns the ids of the jobs refused because their idempotency key is taken."""
        if not rows:
            return set()
        try:
            await self._collection("jobs").insert_many(
                [{"_id": row.id, "revision": 1, **_job_fields(row)} for row in rows], ordered=False
            )
        except BulkWriteError as exc:
            if exc.details.get("writeConcernErrors"):
                raise
            taken: set[str] = set()
            for error in exc.details.get("writeErrors", []):
                row = rows[error["index"]]
                if error.get("code") != _DUPLICATE_KEY:
                    raise
                if "_id" in error.get("keyPattern", {}) or not row.idempotency_key:
                    raise records.DuplicateId(f"job {row.id} already exists") from None
                taken.add(row.id)
            return taken
        return set()

    async def _holder_of_key(self, row: records.JobColumns) -> Inserted:
        """The job holding row's idempotency key; or row itself, stored, if the holder has gone meanwhile."""
        jobs = self._collection("jobs")
        while True:
            doc = await jobs.find_one(
                {"tenant": row.tenant, "idempotency_key": row.idempotency_key}, projection={"data": 1}
            )
            if doc is not None:
                return Inserted(records.parse_job(doc["data"]), False)
            # delete_jobs freed the key between our insert and this read: it is ours to take again.
            try:
                await jobs.insert_one({"_id": row.id, "revision": 1, **_job_fields(row)})
            except DuplicateKeyError as exc:
                if "_id" in (exc.details or {}).get("keyPattern", {}):
                    raise records.DuplicateId(f"job {row.id} already exists") from None
                continue
            return Inserted(records.parse_job(row.data), True)

    async def get_job(self, job_id: str) -> job_pb2.Job | None:
        row = await self._read("jobs", job_id)
        return None if row is None else records.parse_job(row[1])

    async def delete_jobs(self, job_ids: Sequence[str]) -> None:
        if job_ids:
            await self._collection("jobs").delete_many({"_id": {"$in": list(job_ids)}})

    async def list_jobs(self, query: JobQuery) -> JobPage:
        limit = records.page_limit(query.page_size)
        ended = query.order == "ended"
        after_end = records.decode_end_token(query.page_token) if ended else None
        after_id = "" if ended else records.decode_page_token(records.JOBS_TOKEN, query.page_token)
        filter_: Document = {"tenant": query.tenant}
        if ended:
            filter_["end_ns"] = {"$gt": 0}
        if query.schedule_id:
            filter_["schedule_id"] = query.schedule_id
        if query.states:
            filter_["state"] = {"$in": sorted(query.states)}
        if query.kind:
            filter_["$and"] = [_kind_filter(query.kind)]
        if query.created_after_ns or query.created_before_ns:
            filter_["create_ns"] = {
                **({"$gte": query.created_after_ns} if query.created_after_ns else {}),
                **({"$lt": query.created_before_ns} if query.created_before_ns else {}),
            }
        if query.parent_id:
            filter_["parent_id"] = query.parent_id
        if query.labels:
            filter_["labels"] = {"$all": _label_pairs(dict(query.labels))}
        total = await self._collection("jobs").count_documents(filter_) if query.with_total else None
        if after_id:
            filter_["_id"] = {"$lt": after_id}
        if after_end is not None:
            end, last_id = after_end
            filter_["$or"] = [{"end_ns": {"$lt": end}}, {"end_ns": end, "_id": {"$lt": last_id}}]
        sort = [("end_ns", -1), ("_id", -1)] if ended else [("_id", -1)]
        cursor = self._collection("jobs").find(filter_, projection={"data": 1, "end_ns": 1}, sort=sort, limit=limit + 1)
        docs = [doc async for doc in cursor]
        token = ""
        if len(docs) > limit:
            last = docs[limit - 1]
            if ended:
                token = records.encode_end_token(int(last["end_ns"]), last["_id"])
            else:
                token = records.encode_page_token(records.JOBS_TOKEN, last["_id"])
        return JobPage([records.parse_job(doc["data"]) for doc in docs[:limit]], token, total)

    async def activity(self, query: ActivityQuery) -> Activity:
        """Each figure one aggregation on its own index: by create, start or end time within the window."""
        scope: Document = {"tenant": query.tenant}
        if query.kind:
            scope["$and"] = [_kind_filter(query.kind)]
        since, until = query.since_ns, query.until_ns

        def bucket_of(field: str) -> Document:
            return {"$toLong": {"$floor": {"$divide": [{"$subtract": [f"${field}", since]}, query.bucket_ns]}}}

        def within(field: str) -> Document:
            return {**scope, field: {"$gte": max(1, since), "$lt": until}}

        def counted(field: str) -> list[Document]:
            return [{"$match": within(field)}, {"$group": {"_id": bucket_of(field), "n": {"$sum": 1}}}]

        never_started = {"$cond": [{"$gt": ["$start_ns", 0]}, 0, 1]}
        ended: list[Document] = [
            {"$match": within("end_ns")},
            {
                "$group": {
                    "_id": {"bucket": bucket_of("end_ns"), "state": "$state"},
                    "n": {"$sum": 1},
                    "never": {"$sum": never_started},
                }
            },
        ]
        # Waiting at `since`: never started nor ended (still waiting now), started since, or ended since unstarted.
        waiting: list[Document] = [
            {
                "$match": {
                    **scope,
                    "create_ns": {"$lt": since},
                    "$or": [
                        {"state": {"$in": _WAITING_STATES}, "start_ns": None},
                        {"start_ns": {"$gte": since}},
                        {"end_ns": {"$gte": since}, "start_ns": None},
                    ],
                }
            },
            {"$count": "n"},
        ]
        branches = [{"case": {"$lte": ["$run", bound]}, "then": i} for i, bound in enumerate(query.duration_bounds_ns)]
        durations: list[Document] = [
            {"$match": {**within("end_ns"), "start_ns": {"$gt": 0}}},
            {"$project": {"run": {"$subtract": ["$end_ns", "$start_ns"]}}},
            {
                "$group": {
                    "_id": {"$switch": {"branches": branches, "default": len(branches)}} if branches else 0,
                    "n": {"$sum": 1},
                }
            },
        ]
        pipelines: list[list[Document]] = [counted("create_ns"), counted("start_ns"), ended, waiting, durations]
        created_docs, started_docs, ended_docs, waiting_docs, duration_docs = await asyncio.gather(
            *(self._aggregate(pipeline) for pipeline in pipelines)
        )
        unstarted: dict[int, int] = {}
        for doc in ended_docs:
            bucket = int(doc["_id"]["bucket"])
            unstarted[bucket] = unstarted.get(bucket, 0) + int(doc["never"])
        return Activity(
            created={int(doc["_id"]): int(doc["n"]) for doc in created_docs},
            started={int(doc["_id"]): int(doc["n"]) for doc in started_docs},
            ended={(int(doc["_id"]["bucket"]), int(doc["_id"]["state"])): int(doc["n"]) for doc in ended_docs},
            ended_unstarted={bucket: never for bucket, never in unstarted.items() if never},
            waiting_at_start=int(waiting_docs[0]["n"]) if waiting_docs else 0,
            durations={int(doc["_id"]): int(doc["n"]) for doc in duration_docs},
        )

    async def _aggregate(self, pipeline: list[Document]) -> list[Document]:
        cursor = await self._collection("jobs").aggregate(pipeline)
        return [doc async for doc in cursor]

    async def ended_jobs(self, tenant: str, ended_before_ns: int, limit: int) -> list[job_pb2.Job]:
        filter_: Document = {
            "tenant": tenant,
            "end_ns": {"$gt": 0, "$lt": ended_before_ns},
            "state": {"$in": sorted(records.ENDED_STATES)},
        }
        docs = await self._find_data("jobs", filter_, [("end_ns", 1), ("_id", 1)], limit)
        return [records.parse_job(doc["data"]) for doc in docs]

    async def delete_ended_jobs(self, job_ids: Sequence[str], ended_before_ns: int) -> list[str]:
        if not job_ids:
            return []
        jobs = self._collection("jobs")
        filter_: Document = {
            "_id": {"$in": list(job_ids)},
            "end_ns": {"$gt": 0, "$lt": ended_before_ns},
            "state": {"$in": sorted(records.ENDED_STATES)},
        }
        # Each document is deleted only at the revision read: one retried in between stays.
        found = [(doc["_id"], doc["revision"]) async for doc in jobs.find(filter_, projection={"revision": 1})]
        results = await asyncio.gather(
            *(jobs.delete_one({"_id": job_id, "revision": revision}) for job_id, revision in found)
        )
        return [job_id for (job_id, _), result in zip(found, results, strict=True) if result.deleted_count == 1]

    async def waiting_jobs(
        self, tenant: str, created_after_ns: int, created_before_ns: int, limit: int
    ) -> list[job_pb2.Job]:
        filter_: Document = {
            "tenant": tenant,
            "state": {"$in": [int(job_pb2.JOB_STATE_QUEUED), int(job_pb2.JOB_STATE_SCHEDULED)]},
            "create_ns": {"$gt": created_after_ns, "$lte": created_before_ns},
        }
        docs = await self._find_data("jobs", filter_, [("create_ns", 1), ("_id", 1)], limit)
        return [records.parse_job(doc["data"]) for doc in docs]

    async def count_jobs(self, tenant: str, ended_since_ns: int) -> list[JobCount]:
        pipeline: list[Document] = [
            {
                "$match": {
                    "tenant": tenant,
                    "$or": [{"state": {"$in": _NOT_ENDED_STATES}}, {"end_ns": {"$gte": max(1, ended_since_ns)}}],
                }
            },
            {
                "$group": {
                    "_id": {"kind": "$kind", "task": "$task", "priority": "$priority", "state": "$state"},
                    "count": {"$sum": 1},
                    "oldest": {"$min": "$create_ns"},
                }
            },
        ]
        cursor = await self._collection("jobs").aggregate(pipeline)
        return [
            JobCount(
                kind=doc["_id"]["kind"],
                task=doc["_id"].get("task") or "",
                priority=int(doc["_id"].get("priority") or 0),
                state=int(doc["_id"]["state"]),
                jobs=int(doc["count"]),
                oldest_create_ns=int(doc.get("oldest") or 0),
            )
            async for doc in cursor
        ]

    async def update_job(self, job_id: str, change: JobChange) -> Updated:
        async def read() -> tuple[int, bytes] | None:
            return await self._read("jobs", job_id)

        async def write(_: job_pb2.Job, after: job_pb2.Job, revision: int) -> bool:
            return await self._write("jobs", job_id, revision, _job_fields(records.job_columns(after)))

        job, applied = await records.conditional_update(
            read, records.parse_job, change, records.check_job_identity, write
        )
        return Updated(job, applied)

    async def update_jobs(self, changes: Sequence[tuple[str, JobChange]]) -> list[Updated]:
        """One read of every job, then the conditional writes all at once (each must match the revision read,
        and says whether it did: a bulk write would only count the matches). A write that lost its race, and a
        second change of a job already in the call, go on as update_job does, in order."""
        results: list[Updated | None] = [None] * len(changes)
        first: dict[str, int] = {}
        for index, (job_id, _) in enumerate(changes):
            first.setdefault(job_id, index)
        cursor = self._collection("jobs").find({"_id": {"$in": list(first)}}, projection={"revision": 1, "data": 1})
        rows = {doc["_id"]: (doc["revision"], doc["data"]) async for doc in cursor}
        writes: list[tuple[int, job_pb2.Job, int]] = []
        for job_id, index in first.items():
            row = rows.get(job_id)
            if row is None:
                results[index] = Updated(None, False)
                continue
            before = records.parse_job(row[1])
            after = changes[index][1](records.parse_job(row[1]))
            if after is None or after == before:
                results[index] = Updated(before, after is not None)
                continue
            records.check_job_identity(before, after)
            writes.append((index, after, row[0]))
        landed = await asyncio.gather(
            *(
                self._write("jobs", after.id, revision, _job_fields(records.job_columns(after)))
                for _, after, revision in writes
            )
        )
        for (index, after, _), won in zip(writes, landed, strict=True):
            if won:
                results[index] = Updated(after, True)
        done: list[Updated] = []
        for (job_id, change), result in zip(changes, results, strict=True):
            done.append(result if result is not None else await self.update_job(job_id, change))
        return done

    # Courses.

    async def insert_course(self, course: course_pb2.Course) -> None:
        records.require_id(course.id, "course")
        await self._insert_record("courses", course.id, course.tenant, records.serialize(course))

    async def get_course(self, course_id: str) -> course_pb2.Course | None:
        row = await self._read("courses", course_id)
        return None if row is None else records.parse_course(row[1])

    async def list_courses(self, tenant: str, page_size: int, page_token: str) -> CoursePage:
        limit = records.page_limit(page_size)
        after_id = records.decode_page_token(records.COURSES_TOKEN, page_token)
        filter_: Document = {"tenant": tenant}
        if after_id:
            filter_["_id"] = {"$lt": after_id}
        docs = await self._find_data("courses", filter_, [("_id", -1)], limit + 1)
        return CoursePage(
            [records.parse_course(doc["data"]) for doc in docs[:limit]], _next_token(records.COURSES_TOKEN, docs, limit)
        )

    async def update_course(self, course_id: str, change: CourseChange) -> course_pb2.Course | None:
        async def read() -> tuple[int, bytes] | None:
            return await self._read("courses", course_id)

        async def write(before: course_pb2.Course, after: course_pb2.Course, revision: int) -> bool:
            if after.version > before.version:
                await self._keep_course_version(before, revision)
            return await self._write("courses", course_id, revision, {"data": records.serialize(after)})

        course, _ = await records.conditional_update(
            read, records.parse_course, change, records.check_course_identity, write
        )
        return course

    async def _keep_course_version(self, course: course_pb2.Course, revision: int) -> None:
        """Keeps `course` (read at `revision`) as its version, before the write that replaces it.

        Without a transaction the two writes are apart: one that then loses its race has kept the version as it
        read it. The copy from the latest revision wins, and the write that replaces a version is always from
        its latest revision, so the copy left is the record that write replaced."""
        key = f"{course.id}:{course.version}"
        fields = {"course_id": course.id, "version": course.version, "revision": revision}
        # A copy from a later revision is kept already when the upsert finds its key taken.
        with contextlib.suppress(DuplicateKeyError):
            await self._collection("course_versions").update_one(
                {"_id": key, "revision": {"$lte": revision}},
                {"$set": {**fields, "data": records.serialize(course)}},
                upsert=True,
            )

    async def get_course_version(self, course_id: str, version: int) -> course_pb2.Course | None:
        doc = await self._collection("course_versions").find_one(
            {"_id": f"{course_id}:{version}"}, projection={"data": 1}
        )
        return None if doc is None else records.parse_course(doc["data"])

    async def list_course_versions(self, course_id: str) -> list[course_pb2.Course]:
        docs = await self._find_data("course_versions", {"course_id": course_id}, [("version", 1)], 0)
        return [records.parse_course(doc["data"]) for doc in docs]

    # Schedules.

    async def insert_schedule(self, schedule: job_pb2.Schedule) -> None:
        records.require_id(schedule.id, "schedule")
        await self._insert_record("schedules", schedule.id, schedule.tenant, records.serialize(schedule))

    async def get_schedule(self, schedule_id: str) -> job_pb2.Schedule | None:
        row = await self._read("schedules", schedule_id)
        return None if row is None else records.parse_schedule(row[1])

    async def list_schedules(self, tenant: str) -> list[job_pb2.Schedule]:
        # No limit: the scheduler loads every schedule of a tenant, and there are few.
        cursor = self._collection("schedules").find({"tenant": tenant}, projection={"data": 1}, sort=[("_id", 1)])
        return [records.parse_schedule(doc["data"]) async for doc in cursor]

    async def tenants(self) -> list[str]:
        found = set(await self._collection("jobs").distinct("tenant"))
        found.update(await self._collection("schedules").distinct("tenant"))
        return sorted(found)

    async def update_schedule(self, schedule_id: str, change: ScheduleChange) -> job_pb2.Schedule | None:
        async def read() -> tuple[int, bytes] | None:
            return await self._read("schedules", schedule_id)

        async def write(_: job_pb2.Schedule, after: job_pb2.Schedule, revision: int) -> bool:
            return await self._write("schedules", schedule_id, revision, {"data": records.serialize(after)})

        schedule, _ = await records.conditional_update(
            read, records.parse_schedule, change, records.check_schedule_identity, write
        )
        return schedule

    async def delete_schedule(self, schedule_id: str) -> bool:
        result = await self._collection("schedules").delete_one({"_id": schedule_id})
        return result.deleted_count == 1

    async def _insert_record(self, collection: str, record_id: str, tenant: str, data: bytes) -> None:
        try:
            await self._collection(collection).insert_one(
                {"_id": record_id, "tenant": tenant, "revision": 1, "data": data}
            )
        except DuplicateKeyError:
            raise records.DuplicateId(f"{collection} record {record_id} already exists") from None


async def _fill_added_fields(jobs: AsyncCollection[Document]) -> None:
    """Documents stored before the count, order and activity fields existed get them, from their records."""
    while True:
        cursor = jobs.find({"start_ns": {"$exists": False}}, projection={"data": 1}, limit=_FILL_BATCH)
        updates = []
        async for doc in cursor:
            row = records.job_columns(records.parse_job(doc["data"]))
            fields = {
                name: _job_fields(row)[name]
                for name in ("task", "priority", "create_ns", "end_ns", "schedule_id", "start_ns")
            }
            updates.append(UpdateOne({"_id": doc["_id"]}, {"$set": fields}))
        if not updates:
            return
        await jobs.bulk_write(updates, ordered=False)


def _kind_filter(kind: str) -> Document:
    # A kind, or a task name: task jobs are all of kind "task", told apart by their task's name.
    return {"$or": [{"kind": kind}, {"kind": "task", "task": kind}]}


def _next_token(kind: str, docs: list[Document], limit: int) -> str:
    # One document more than the page was read: it exists only if there is a next page.
    return records.encode_page_token(kind, docs[limit - 1]["_id"]) if len(docs) > limit else ""
