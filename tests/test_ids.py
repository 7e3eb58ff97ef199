"""Ids: 26 characters of Crockford's base32, the creation millisecond first, so that they sort by time."""

from __future__ import annotations

from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

from syllabus.ids import new_id

ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"


def decode(text: str) -> int:
    value = 0
    for char in text:
        value = value * 32 + ALPHABET.index(char)
    return value


@given(
    millis=st.integers(min_value=0, max_value=(1 << 48) - 1),
    randomness=st.binary(min_size=10, max_size=10),
)
def test_an_id_holds_its_millisecond_and_its_random_bits(millis: int, randomness: bytes) -> None:
    with (
        mock.patch("time.time_ns", return_value=millis * 1_000_000 + 999_999),
        mock.patch("os.urandom", return_value=randomness),
    ):
        made = new_id()
    assert len(made) == 26 and set(made) <= set(ALPHABET)
    value = decode(made)
    assert (value >> 80, value & ((1 << 80) - 1)) == (millis, int.from_bytes(randomness, "big"))


@given(st.lists(st.integers(min_value=0, max_value=(1 << 48) - 1), min_size=2, max_size=20))
def test_ids_sort_by_their_millisecond(moments: list[int]) -> None:
    made = []
    for millis in moments:
        with mock.patch("time.time_ns", return_value=millis * 1_000_000):
            made.append((millis, new_id()))
    assert [millis for millis, _ in sorted(made, key=lambda pair: pair[1])] == sorted(moments)
