"""What a caller is told when the broker does not take a job: each failure of a publish, translated."""

from __future__ import annotations

import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeout
from nats.js.errors import APIError, NoStreamResponseError

from syllabus.errors import BrokerUnavailable, QueueFull
from syllabus.publisher import NoStreamError
from syllabus.submit import _translate

NO_ACK = "the message broker did not acknowledge the job in time"


@pytest.mark.parametrize("code", [10077, 10047, 10027, 10028])
def test_a_stream_at_its_limits_is_a_full_queue(code: int) -> None:
    translated = _translate(APIError(code=503, err_code=code, description="maximum messages exceeded"))
    assert isinstance(translated, QueueFull) and str(translated) == "the job queue is full; retry in 5s"


@pytest.mark.parametrize(
    "failure", [TimeoutError(), NatsTimeout(), NoRespondersError(), NoStreamResponseError(), NoStreamError()]
)
def test_no_acknowledgement_is_the_broker_unavailable(failure: BaseException) -> None:
    translated = _translate(failure)
    assert type(translated) is BrokerUnavailable and str(translated) == NO_ACK


def test_another_refusal_names_the_brokers_reason() -> None:
    translated = _translate(APIError(code=400, err_code=10003, description="bad headers"))
    assert type(translated) is BrokerUnavailable
    assert str(translated) == "the message broker refused the job: bad headers"


def test_anything_else_is_left_as_it_is() -> None:
    failure = RuntimeError("a bug")
    assert _translate(failure) is failure
