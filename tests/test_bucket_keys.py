"""The keys a bucket holds, read from its stream on a real NATS: what is there, and never what was deleted or
purged, with a prefix of whole tokens; a bucket with keys is never read as empty, however often it is asked."""

from __future__ import annotations

import asyncio
import uuid

from nats.aio.client import Client
from nats.js.api import KeyValueConfig

from syllabus.bucketkeys import bucket_keys


async def test_the_keys_present_not_the_deleted_or_purged(nc: Client) -> None:
    js = nc.jetstream()
    bucket = f"keys-{uuid.uuid4().hex[:8]}"
    kv = await js.create_key_value(KeyValueConfig(bucket=bucket, history=3))
    try:
        assert await bucket_keys(js, bucket) == []
        for key in ("generator.a", "generator.b", "renderer.a", "pool-acme.x"):
            await kv.put(key, b"1")
        await kv.put("generator.a", b"2")
        await kv.delete("generator.b")
        await kv.purge("pool-acme.x")
        assert await bucket_keys(js, bucket) == ["generator.a", "renderer.a"]
        assert await bucket_keys(js, bucket, "generator.") == ["generator.a"]
        assert await bucket_keys(js, bucket, "mailer.") == []
        # Written again after its delete, a key is there again.
        await kv.put("generator.b", b"3")
        assert await bucket_keys(js, bucket, "generator.") == ["generator.a", "generator.b"]
    finally:
        await js.delete_key_value(bucket)


async def test_a_bucket_with_a_key_is_never_read_as_empty(nc: Client) -> None:
    # kv.keys() answered "no keys" now and then for such a bucket (nats-io/nats.py#842).
    js = nc.jetstream()
    bucket = f"keys-{uuid.uuid4().hex[:8]}"
    kv = await js.create_key_value(KeyValueConfig(bucket=bucket))
    try:
        await kv.put("generator", b"paused")
        answers = await asyncio.gather(*(bucket_keys(js, bucket) for _ in range(200)))
        assert {tuple(answer) for answer in answers} == {("generator",)}
    finally:
        await js.delete_key_value(bucket)
