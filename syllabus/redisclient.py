"""The Redis (or Valkey) client every process makes from SYLLABUS_REDIS_URL: a password and TLS files from the
settings when the URL does not carry them."""

from __future__ import annotations

import ssl
from typing import Any

from redis.asyncio import Redis

from syllabus.config import CommonConfig


def redis_client(common: CommonConfig, **options: Any) -> Redis:
    """A client for `common.redis_url` (which must be set), with `options` for redis-py's connections.

    A password in the URL wins over SYLLABUS_REDIS_PASSWORD. A rediss:// URL is TLS 1.2 or later, the server's
    certificate verified (against SYLLABUS_REDIS_TLS_CA, else the system's CAs) and its name checked."""
    if common.redis_password:
        options.setdefault("password", common.redis_password)
    if common.redis_url.startswith("rediss://"):
        options.setdefault("ssl_min_version", ssl.TLSVersion.TLSv1_2)
        files = common.redis_tls
        if files.ca:
            options.setdefault("ssl_ca_certs", files.ca)
        if files.cert:
            options.setdefault("ssl_certfile", files.cert)
            options.setdefault("ssl_keyfile", files.key)
    return Redis.from_url(common.redis_url, **options)
