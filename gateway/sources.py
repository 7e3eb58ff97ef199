"""Course sources in the gateway: UploadSource, GetSource, ListSources and DeleteSource, and the sources a
CreateCourse names.

An upload is checked (type, size), its text extracted (syllabus.extraction, in a child process with limits:
gateway.extraction_process) and stored with it (syllabus.sources) before the answer, so a course can name it at
once. A file of another type, too large, without text, or breaking the extraction's limits is INVALID_ARGUMENT
naming the field; another tenant's source is NOT_FOUND, like an unknown one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import PurePosixPath
from typing import NoReturn

from gateway.artifacts import not_found
from gateway.auth import caller
from gateway.extraction_process import Extractor
from gateway.status import Context, abort, bad_request
from syllabus import lifecycle
from syllabus.extraction import CONTENT_TYPES, ExtractionError, content_type_of
from syllabus.ids import new_id
from syllabus.sources import SourceShelf
from syllabus.v1 import course_pb2, course_service_pb2

SOURCE_RESOURCE = "syllabus.v1.Source"
# What GetSource shows of a source's text.
SHOWN_PASSAGES = 20


class Sources:
    def __init__(self, shelf: SourceShelf, max_bytes: int, extractor: Extractor) -> None:
        self._shelf = shelf
        self._max_bytes = max_bytes
        self._extractor = extractor

    async def upload(
        self, request: course_service_pb2.UploadSourceRequest, context: Context
    ) -> course_service_pb2.UploadSourceResponse:
        # A browser or a CLI may send a path; only its last part names the file.
        name = PurePosixPath(request.filename.replace("\\", "/")).name
        if not name:
            await abort(context, bad_request([("filename", "must name a file, not a directory")]))
        content_type = content_type_of(name, request.content_type)
        if content_type is None:
            wanted = ", ".join(CONTENT_TYPES)
            await abort(
                context,
                bad_request(
                    [
                        (
                            "content_type",
                            f"must be one of {wanted}, or empty for a file name ending in .md, .txt, .pdf or .html "
                            f"(got {request.content_type!r} for {name!r})",
                        )
                    ]
                ),
            )
        size = len(request.data)
        if size > self._max_bytes:
            await abort(
                context,
                bad_request([("data", f"the file has {size} bytes; a source may have at most {self._max_bytes}")]),
            )
        source_id = new_id()
        try:
            pages, passages = await self._extractor.extract(request.data, content_type, source_id)
        except ExtractionError as exc:
            await abort(context, bad_request([("data", str(exc))]))
        source = course_pb2.Source(
            id=source_id,
            name=name,
            content_type=content_type,
            size_bytes=size,
            sha256=hashlib.sha256(request.data).hexdigest(),
            pages=pages,
            passages=len(passages),
            tenant=caller.tenant(),
        )
        source.create_time.CopyFrom(lifecycle.now())
        await self._shelf.put(request.data, course_pb2.SourceText(source=source, passages=passages))
        return course_service_pb2.UploadSourceResponse(source=source)

    async def get(
        self, request: course_service_pb2.GetSourceRequest, context: Context
    ) -> course_service_pb2.GetSourceResponse:
        tenant = caller.tenant()
        # The record too: a source whose deletion was cut short has its text and no record, and is gone.
        text = await self._shelf.text(tenant, request.source_id)
        if text is None or await self._shelf.source(tenant, request.source_id) is None:
            await _unknown(context, request.source_id)
        return course_service_pb2.GetSourceResponse(source=text.source, passages=text.passages[:SHOWN_PASSAGES])

    async def delete(
        self, request: course_service_pb2.DeleteSourceRequest, context: Context
    ) -> course_service_pb2.DeleteSourceResponse:
        if not await self._shelf.delete(caller.tenant(), request.source_id):
            await _unknown(context, request.source_id)
        return course_service_pb2.DeleteSourceResponse()

    async def listed(self) -> course_service_pb2.ListSourcesResponse:
        return course_service_pb2.ListSourcesResponse(sources=await self._shelf.listed(caller.tenant()))

    async def named(self, source_ids: Sequence[str], context: Context) -> list[course_pb2.Source]:
        """The caller's sources with these ids, in their order; NOT_FOUND names the first that is not one."""
        found = []
        for source_id in source_ids:
            source = await self._shelf.source(caller.tenant(), source_id)
            if source is None:
                await _unknown(context, source_id)
            found.append(source)
        return found


async def _unknown(context: Context, source_id: str) -> NoReturn:
    await not_found(context, SOURCE_RESOURCE, f"sources/{source_id}", f"source {source_id!r} not found")
