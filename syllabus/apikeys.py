"""API keys for machines: created, listed and revoked by an operator (`syllabus keys`), checked by the gateway.

A key reads `syl_<id>_<secret>`: the id finds its entry, the secret is 32 random bytes. Only the secret's SHA-256
is stored (a key has the entropy of a random 256-bit value, so a slow password hash would add nothing but CPU on
every call). The entries live in a JetStream key-value bucket, so every gateway follows them with a watch: a
revoked key stops working on every gateway at once, and checking a key costs a dictionary lookup and one hash.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass, field

from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NotFoundError
from nats.js.kv import KeyValue

from syllabus.bucketkeys import bucket_keys
from syllabus.bucketwatch import BucketWatch
from syllabus.topology import Topology

PREFIX = "syl_"
SCOPES = ("read", "write", "admin", "work")
DEFAULT_SCOPES = ("read", "write")


class UnknownKey(LookupError):
    """No key has the id."""


@dataclass(frozen=True)
class ApiKey:
    id: str
    tenant: str
    scopes: tuple[str, ...]
    name: str
    # Unix seconds.
    created_at: float
    # The secret's SHA-256, hex; never the secret.
    digest: str = field(repr=False)

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode()

    @classmethod
    def decode(cls, data: bytes) -> ApiKey:
        raw = json.loads(data)
        return cls(**{**raw, "scopes": tuple(raw["scopes"])})


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(presented: str) -> tuple[str, str] | None:
    """(id, secret) of something shaped like a key, else None."""
    if not presented.startswith(PREFIX):
        return None
    key_id, sep, secret = presented[len(PREFIX) :].partition("_")
    if not sep or not key_id or not secret:
        return None
    return key_id, secret


def matches(key: ApiKey, secret: str) -> bool:
    return hmac.compare_digest(key.digest, _digest(secret))


def keys_bucket_config(topology: Topology) -> KeyValueConfig:
    return KeyValueConfig(bucket=topology.keys_bucket, storage=StorageType.FILE, replicas=topology.replicas)


async def keys_bucket(nc: Client, topology: Topology) -> KeyValue:
    js = nc.jetstream()
    try:
        return await js.key_value(topology.keys_bucket)
    except NotFoundError:
        return await js.create_key_value(keys_bucket_config(topology))


class ApiKeys:
    """The keys as an operator changes them."""

    def __init__(self, nc: Client, topology: Topology) -> None:
        self._nc = nc
        self._topology = topology

    async def create(self, tenant: str, scopes: tuple[str, ...], name: str) -> tuple[ApiKey, str]:
        """A new key, and the key itself as its user must present it: shown once, stored nowhere."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(key_id, tenant, scopes, name, time.time(), _digest(secret))
        await (await keys_bucket(self._nc, self._topology)).create(key_id, key.encode())
        return key, f"{PREFIX}{key_id}_{secret}"

    async def list(self) -> list[ApiKey]:
        kv = await keys_bucket(self._nc, self._topology)
        ids = await bucket_keys(self._nc.jetstream(), self._topology.keys_bucket)
        found = []
        for key_id in ids:
            try:
                entry = await kv.get(key_id)
            except (KeyNotFoundError, KeyDeletedError):
                continue
            if entry.value:
                found.append(ApiKey.decode(entry.value))
        return sorted(found, key=lambda key: key.created_at)

    async def revoke(self, key_id: str) -> None:
        kv = await keys_bucket(self._nc, self._topology)
        try:
            await kv.get(key_id)
        except (KeyNotFoundError, KeyDeletedError):
            raise UnknownKey(key_id) from None
        # Purged rather than deleted: nothing of a revoked key stays in the bucket's history.
        await kv.purge(key_id)


class KnownKeys:
    """Every key, followed into memory by a gateway."""

    def __init__(self, nc: Client, topology: Topology) -> None:
        self._nc = nc
        self._topology = topology
        self._keys: dict[str, ApiKey] = {}
        self._watch = BucketWatch(self._put, lambda key_id: self._keys.pop(key_id, None))

    def _put(self, key_id: str, value: bytes) -> None:
        self._keys[key_id] = ApiKey.decode(value)

    async def start(self) -> None:
        await self._watch.start(await keys_bucket(self._nc, self._topology))

    async def stop(self) -> None:
        await self._watch.stop()

    def check(self, presented: str) -> ApiKey | None:
        """The key `presented` is, if it is a live one."""
        parsed = parse(presented)
        if parsed is None:
            return None
        key = self._keys.get(parsed[0])
        if key is None or not matches(key, parsed[1]):
            return None
        return key
