"""The keys a JetStream key-value bucket holds now, read so that a bucket with keys never looks empty.

nats-py's `KeyValue.keys()` can answer "no keys" for a bucket that has some: its watcher may announce the end of
the initial values before the values already on their way were counted (nats-io/nats.py#842), so a paused queue
read as not paused, or a declared task as unknown, now and then. Here the bucket's stream says which keys it
holds (its subjects) and the last message of each says whether it was deleted or purged since.
"""

from __future__ import annotations

import asyncio

from nats.js.api import RawStreamMsg
from nats.js.client import JetStreamContext
from nats.js.errors import NotFoundError

_REMOVED = {"DEL", "PURGE"}


async def bucket_keys(js: JetStreamContext, bucket: str, prefix: str = "") -> list[str]:
    """The keys of `bucket` (those starting with `prefix`, whole tokens: "generator.") not deleted or purged, sorted."""
    stream, root = f"KV_{bucket}", f"$KV.{bucket}."
    info = await js.stream_info(stream, subjects_filter=f"{root}{prefix}>" if prefix else f"{root}>")
    subjects = sorted((info.state.subjects or {}).keys())
    lasts = await asyncio.gather(*(_last(js, stream, subject) for subject in subjects))
    return [subject.removeprefix(root) for subject, last in zip(subjects, lasts, strict=True) if _present(last)]


async def _last(js: JetStreamContext, stream: str, subject: str) -> RawStreamMsg | None:
    try:
        return await js.get_last_msg(stream, subject)
    except NotFoundError:
        return None  # dropped by the bucket's max age since the stream listed it


def _present(message: RawStreamMsg | None) -> bool:
    if message is None:
        return False
    headers = message.headers or {}
    return headers.get("KV-Operation", "") not in _REMOVED
