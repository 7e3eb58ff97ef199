"""Job, course and schedule ids: time-ordered, so sorting by id is sorting by creation."""

from __future__ import annotations

import base64
import os
import time

# RFC 4648 base32 turned into Crockford's alphabet, lower case: base64's C encoder does the digit work.
_CROCKFORD = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", b"0123456789abcdefghjkmnpqrstvwxyz")


def new_id() -> str:
    """A 26-character ULID: 48 bits of milliseconds, then 80 random bits."""
    millis = time.time_ns() // 1_000_000
    value = (millis << 80) | int.from_bytes(os.urandom(10), "big")
    # 160 bits make 32 base32 digits; the 130 an id needs are the last 26 (the first 6 only hold the padding).
    return base64.b32encode(value.to_bytes(20, "big"))[6:].translate(_CROCKFORD).decode()
