"""Job, course and schedule ids: time-ordered, so sorting by id is sorting by creation."""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _encode(value: int, length: int) -> str:
    chars = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        chars.append(_ALPHABET[rem])
    return "".join(reversed(chars))


def new_id() -> str:
    """A 26-character ULID: 48 bits of milliseconds, then 80 random bits."""
    millis = time.time_ns() // 1_000_000
    return _encode(millis, 10) + _encode(int.from_bytes(os.urandom(10), "big"), 16)
