"""How a handler's exception becomes the JobError that is stored, streamed and dead-lettered."""

from __future__ import annotations

import pytest

from syllabus.config import RetryPolicy
from syllabus.worker import Defer, PermanentError, RetryableError, classify

POLICY = RetryPolicy()


def test_a_timeout_says_the_attempt_ran_past_its_time_limit() -> None:
    error = classify(TimeoutError(), POLICY, attempt=3)
    assert (error.type, error.message, error.attempt, error.permanent) == (
        "Timeout",
        "the attempt ran past its time limit",
        3,
        False,
    )
    assert error.time.ToNanoseconds() > 0


def test_a_long_message_is_kept_to_its_first_2000_characters() -> None:
    text = "".join(chr(ord("a") + i % 26) for i in range(5000))
    assert classify(RetryableError(text), POLICY, attempt=1).message == text[:2000]
    assert classify(RetryableError(text[:2000]), POLICY, attempt=1).message == text[:2000]


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (RetryableError("flaky", error_type="Flaky"), ("Flaky", "flaky", False)),
        (PermanentError("never", error_type="BadInput"), ("BadInput", "never", True)),
        # Named permanent by the policy, whatever raised it.
        (RetryableError("gone", error_type="NotFound"), ("NotFound", "gone", True)),
        (KeyError(), ("KeyError", "KeyError", False)),
        (ValueError("bad value"), ("ValueError", "bad value", False)),
    ],
)
def test_an_exception_gives_its_type_message_and_whether_it_is_permanent(
    exc: BaseException, expected: tuple[str, str, bool]
) -> None:
    error = classify(exc, POLICY, attempt=1)
    assert (error.type, error.message, error.permanent) == expected


def test_a_deferral_reads_as_its_reason() -> None:
    deferral = Defer(2.5, "the provider's circuit is open")
    assert (str(deferral), deferral.delay, deferral.reason) == ("the provider's circuit is open", 2.5, deferral.reason)
