"""Which values are secrets, and that they are replaced in every form text can carry them (unit tests)."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from urllib.parse import quote

import pytest
from google.rpc import code_pb2

from gateway.status import build_status
from syllabus import redaction
from syllabus.config import CommonConfig, secret_values
from syllabus.logs import CHATTY_LIBRARIES, setup_logging
from syllabus.redaction import PLACEHOLDER, Redactor

KEY = "sk-test-Zq8/+x=y&z 42"


def test_a_secret_is_replaced_as_written_url_encoded_and_json_escaped() -> None:
    redact = Redactor([KEY, 'pa"ss\\word'])
    for text in (KEY, quote(KEY, safe=""), quote(KEY), json.dumps(KEY)[1:-1], json.dumps('pa"ss\\word')[1:-1]):
        assert redact(f"before {text} after") == f"before {PLACEHOLDER} after"


def test_a_secret_inside_another_is_replaced_whole() -> None:
    assert Redactor(["abcdef", "abcdef-longer"])("x abcdef-longer y abcdef") == f"x {PLACEHOLDER} y {PLACEHOLDER}"


def test_short_values_are_not_treated_as_secrets() -> None:
    assert Redactor(["admin"])("admin logged in") == "admin logged in"
    assert not Redactor(["", "admin"])


def test_the_configured_secrets() -> None:
    env = {
        "GEMINI_API_KEY": "gemini-key-1",
        "SYLLABUS_OPENAI_API_KEY": "openai-key-2",
        "SYLLABUS_WEBHOOK_TOKEN": "token-3333",
        "SYLLABUS_SOMETHING_PASSWORD": "password-4",
        "SYLLABUS_MONGO_URL": "mongodb://app:mongo-pass-5@db:27017/?replicaSet=rs0",
        "SYLLABUS_REDIS_URL": "redis://:redis-pass-6@cache:6379/0",
        "SYLLABUS_NATS_URL": "nats://nats-token-7@n1:4222,nats://user:nats-pass-8@n2:4222",
        "SYLLABUS_LOG_LEVEL": "info",
        "SYLLABUS_TENANT": "acme",
        "HOME": "/root",
    }
    assert secret_values(env) == (
        "gemini-key-1",
        "mongo-pass-5",
        "nats-pass-8",
        "nats-token-7",
        "openai-key-2",
        "password-4",
        "redis-pass-6",
        "token-3333",
    )
    # A user name in a MongoDB or Redis URL is no secret; settings that merely end in "_URL" neither.
    assert "app" not in secret_values(env)
    assert CommonConfig.from_env(env).secrets == secret_values(env)
    assert "mongo-pass-5" not in repr(CommonConfig.from_env(env))


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """The process's logging as setup_logging leaves it, writing to a buffer."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    stream = io.StringIO()
    try:
        yield stream
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)
        redaction.install(())
        for name in CHATTY_LIBRARIES:
            logging.getLogger(name).setLevel(logging.NOTSET)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_logs_are_redacted_messages_arguments_and_tracebacks(
    logged: io.StringIO, log_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stderr", logged)
    setup_logging(CommonConfig(secrets=(KEY,), log_format=log_format), "test")
    log = logging.getLogger("tests.redaction")
    log.warning("provider said: %s", f"bad key {KEY}")
    try:
        raise RuntimeError(f"connecting with {KEY}")
    except RuntimeError:
        log.exception("failed")
    text = logged.getvalue()
    assert KEY not in text
    assert text.count(PLACEHOLDER) == 2  # the argument, and the exception's message in the traceback


def test_routine_chatter_of_libraries_is_off_at_the_default_level(
    logged: io.StringIO, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stderr", logged)
    setup_logging(CommonConfig(log_level="info"), "test")
    for name in ("fontTools.subset", "httpx", "google_genai.models"):
        logging.getLogger(name).info("routine detail")
        logging.getLogger(name).warning("worth saying")
    assert logged.getvalue().count("routine detail") == 0
    assert logged.getvalue().count("worth saying") == 3
    setup_logging(CommonConfig(log_level="debug"), "test")
    logging.getLogger("fontTools.subset").info("shown when debugging")
    assert "shown when debugging" in logged.getvalue()


def test_an_answer_of_the_gateway_carries_no_secret() -> None:
    redaction.install([KEY])
    try:
        status = build_status(code_pb2.UNAVAILABLE, f"cannot reach mongodb://app:{KEY}@db")
    finally:
        redaction.install(())
    assert status.message == f"cannot reach mongodb://app:{PLACEHOLDER}@db"
