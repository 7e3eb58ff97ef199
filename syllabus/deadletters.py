"""The DLQ stream: one dead letter per failed job (subject deadletters.<job_id>), readable, retryable, purgeable."""

from __future__ import annotations

import base64

from nats.aio.client import Client
from nats.js.api import RawStreamMsg
from nats.js.errors import NotFoundError

from syllabus import lifecycle
from syllabus.store.base import InvalidPageToken
from syllabus.store.records import page_limit
from syllabus.topology import Topology
from syllabus.v1 import admin_service_pb2, job_pb2

_TOKEN_TAG = b"dlq:"


def _encode_token(seq: int) -> str:
    return base64.urlsafe_b64encode(_TOKEN_TAG + str(seq).encode()).decode()


def _decode_token(token: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(token.encode())
        if raw.startswith(_TOKEN_TAG):
            return int(raw[len(_TOKEN_TAG) :])
    except ValueError:
        pass
    raise InvalidPageToken(token)


def _decode(raw: RawStreamMsg) -> admin_service_pb2.DeadLetter:
    dead = admin_service_pb2.DeadLetter()
    dead.ParseFromString(raw.data or b"")
    dead.sequence = raw.seq or 0
    return dead


class DeadLetters:
    def __init__(self, nc: Client, topology: Topology, timeout: float = 5.0) -> None:
        self._js = nc.jetstream(timeout=timeout)
        self._topology = topology

    async def put(self, job: job_pb2.Job, subject: str, reason: str) -> None:
        """Store the job (spec, options, attempts, every error) before its message is terminated."""
        dead = admin_service_pb2.DeadLetter(job_id=job.id, job=job, subject=subject, reason=reason)
        dead.dead_letter_time.CopyFrom(lifecycle.now())
        await self._js.publish(
            self._topology.dead_letter_subject(job.id),
            dead.SerializeToString(),
            headers={"Nats-Msg-Id": f"dlq:{job.id}:{job.attempt}:{len(job.errors)}"},
        )

    async def get(self, job_id: str) -> admin_service_pb2.DeadLetter | None:
        try:
            raw = await self._js.get_last_msg(self._topology.dlq_stream, self._topology.dead_letter_subject(job_id))
        except NotFoundError:
            return None
        return _decode(raw)

    async def list(self, kind: str, page_size: int, page_token: str) -> tuple[list[admin_service_pb2.DeadLetter], str]:
        """Oldest first, `page_size` as the store takes it (0: the default); each page resumes after the stream
        sequence of the previous page's last letter."""
        limit = page_limit(page_size)
        seq = _decode_token(page_token) + 1 if page_token else 1
        found: list[admin_service_pb2.DeadLetter] = []
        while len(found) < limit:
            dead = await self._next(seq)
            if dead is None:
                return found, ""
            seq = dead.sequence + 1
            if not kind or dead.job.kind == kind:
                found.append(dead)
        more = await self._next(seq) is not None
        return found, _encode_token(found[-1].sequence) if more else ""

    async def _next(self, seq: int) -> admin_service_pb2.DeadLetter | None:
        try:
            raw = await self._js.get_msg(
                self._topology.dlq_stream, seq=seq, subject=self._topology.dead_letter_subjects, next=True
            )
        except NotFoundError:
            return None
        return _decode(raw)

    async def remove(self, job_id: str) -> None:
        await self._js.purge_stream(self._topology.dlq_stream, subject=self._topology.dead_letter_subject(job_id))

    async def remove_older(self, tenant: str, before_ns: int, limit: int) -> int:
        """Remove up to `limit` of the tenant's letters dead-lettered before `before_ns`; returns how many. Letters
        are stored in the order they were made, so the first one too young ends the look."""
        removed = 0
        seq = 1
        while removed < limit and (dead := await self._next(seq)) is not None:
            seq = dead.sequence + 1
            if dead.dead_letter_time.ToNanoseconds() >= before_ns:
                break
            if dead.job.tenant == tenant:
                await self._js.delete_msg(self._topology.dlq_stream, dead.sequence)
                removed += 1
        return removed

    async def purge(self, tenant: str, kind: str) -> int:
        """Remove the tenant's letters (of one kind, if given); other tenants' stay."""
        purged = 0
        seq = 1
        while (dead := await self._next(seq)) is not None:
            seq = dead.sequence + 1
            if dead.job.tenant == tenant and (not kind or dead.job.kind == kind):
                await self._js.delete_msg(self._topology.dlq_stream, dead.sequence)
                purged += 1
        return purged
