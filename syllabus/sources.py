"""Where uploaded sources live: the artifacts object store, under `sources/<tenant>/<source id>/`.

Each source is three objects: the file as uploaded (`file`), its record (`source.pb`, a Source) and its extracted
text (`text.pb`, a SourceText with the passages). The gateway writes them at upload and removes them when the
source is deleted; the generator reads the text of a course's sources to ground its lessons and quizzes. The
tenant is part of every name, so a source is only ever found under its owner's name.
"""

from __future__ import annotations

import base64

from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError, ObjectNotFoundError

from syllabus.v1 import course_pb2

_FILE, _RECORD, _TEXT = "file", "source.pb", "text.pb"


def _prefix(tenant: str) -> str:
    return f"sources/{tenant}/"


def _name(tenant: str, source_id: str, part: str) -> str:
    return f"{_prefix(tenant)}{source_id}/{part}"


class SourceShelf:
    """The sources in one artifacts bucket."""

    def __init__(self, js: JetStreamContext, bucket: str) -> None:
        self._js = js
        self._bucket = bucket

    async def put(self, data: bytes, text: course_pb2.SourceText) -> None:
        source = text.source
        bucket = await self._js.object_store(self._bucket)
        await bucket.put(_name(source.tenant, source.id, _FILE), data)
        await bucket.put(_name(source.tenant, source.id, _TEXT), text.SerializeToString())
        # Written last: a source is listed only once its text is stored.
        await bucket.put(_name(source.tenant, source.id, _RECORD), source.SerializeToString())

    async def source(self, tenant: str, source_id: str) -> course_pb2.Source | None:
        data = await self._read(_name(tenant, source_id, _RECORD))
        return None if data is None else course_pb2.Source.FromString(data)

    async def text(self, tenant: str, source_id: str) -> course_pb2.SourceText | None:
        data = await self._read(_name(tenant, source_id, _TEXT))
        return None if data is None else course_pb2.SourceText.FromString(data)

    async def listed(self, tenant: str) -> list[course_pb2.Source]:
        """The tenant's sources, oldest first.

        Names are read from the bucket's stream (its subjects, one per object), not with the object store's
        watcher, which can end its listing before every object was announced (as key-value watchers do)."""
        root = f"$O.{self._bucket}.M."
        info = await self._js.stream_info(f"OBJ_{self._bucket}", subjects_filter=f"{root}>")
        names = [_decoded(subject.removeprefix(root)) for subject in (info.state.subjects or {})]
        prefix = _prefix(tenant)
        ids = sorted(
            name.removeprefix(prefix).split("/", 1)[0]
            for name in names
            if name.startswith(prefix) and name.endswith(f"/{_RECORD}")
        )
        sources = [await self.source(tenant, source_id) for source_id in ids]
        return [source for source in sources if source is not None]

    async def delete(self, tenant: str, source_id: str) -> bool:
        """Remove the source's record, text and file; False when none of them was there.

        The record goes first, so a source half deleted (its gateway stopped meanwhile) is neither listed nor
        usable, and deleting it again finishes the work."""
        bucket = await self._js.object_store(self._bucket)
        found = False
        for part in (_RECORD, _TEXT, _FILE):
            name = _name(tenant, source_id, part)
            try:
                await bucket.delete(name)
                found = True
            except (ObjectNotFoundError, NotFoundError):
                pass
            # The object store keeps a deletion marker under the object's name: purged too (also when an earlier
            # deletion, cut short, left one), so nothing of the source remains.
            await self._js.purge_stream(f"OBJ_{self._bucket}", subject=f"$O.{self._bucket}.M.{_encoded(name)}")
        return found

    async def _read(self, name: str) -> bytes | None:
        bucket = await self._js.object_store(self._bucket)
        try:
            result = await bucket.get(name)
        except (ObjectNotFoundError, NotFoundError):
            return None
        return result.data or b""


def _encoded(name: str) -> str:
    # As nats-py names an object's subject.
    return base64.urlsafe_b64encode(name.encode()).decode()


def _decoded(token: str) -> str:
    # Object names travel base64url-encoded in subjects, with or without padding.
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode("utf-8", "replace")
