"""No secret leaves the process: providers that quote the API key back in their errors, against `syllabus up`.

The fake model servers echo the key each request carried, as some real ones do ("Incorrect API key provided:
sk-..."). The key must then be nowhere: not in what the command line, gRPC or REST answer, not in the log,
and not in any file the run wrote (JetStream's store, the job store, Valkey's data, the server logs).
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from syllabus.redaction import PLACEHOLDER
from tests.course.fake_http import FakeHTTP, Reply, Request
from tests.e2e.conftest import Stack, running_stack

pytestmark = pytest.mark.e2e


def echo_openai(request: Request) -> Reply:
    key = request.headers.get("authorization", "").removeprefix("Bearer ")
    message = f"Incorrect API key provided: {key}. You can find your API key at https://example.invalid/keys."
    return Reply(status=401, body={"error": {"message": message, "type": "invalid_request_error"}})


def echo_gemini(request: Request) -> Reply:
    key = request.headers.get("x-goog-api-key", "")
    message = f"API key not valid: {key}. Please pass a valid API key."
    return Reply(status=400, body={"error": {"code": 400, "message": message, "status": "INVALID_ARGUMENT"}})


@dataclass
class Secrets:
    stack: Stack
    openai: FakeHTTP
    gemini: FakeHTTP
    openai_key: str
    gemini_key: str

    @property
    def keys(self) -> tuple[str, str]:
        return self.openai_key, self.gemini_key


@pytest_asyncio.fixture(scope="module")
async def leaky(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Secrets]:
    openai = await FakeHTTP(echo_openai).start()
    gemini = await FakeHTTP(echo_gemini).start()
    openai_key = "sk-test-" + secrets.token_hex(16)
    gemini_key = "AIzaTest" + secrets.token_hex(16)
    env = {
        "SYLLABUS_LLM_PROVIDER": "offline",
        "SYLLABUS_OPENAI_BASE_URL": openai.url,
        "SYLLABUS_OPENAI_MODEL": "echo-model",
        "SYLLABUS_OPENAI_API_KEY": openai_key,
        "GEMINI_API_KEY": gemini_key,
        "SYLLABUS_GEMINI_BASE_URL": gemini.url,
    }
    try:
        async with running_stack(tmp_path_factory.mktemp("secrets"), env) as stack:
            yield Secrets(stack, openai, gemini, openai_key, gemini_key)
    finally:
        await openai.stop()
        await gemini.stop()


def leaks(text: str | bytes, keys: tuple[str, ...]) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [key for key in keys if key.encode() in data]


async def test_a_key_the_provider_quotes_back_is_redacted_everywhere(leaky: Secrets, tmp_path: Path) -> None:
    stack = leaky.stack
    answers: list[str] = []
    job_ids: list[str] = []
    for provider in ("openai", "gemini"):
        run = await stack.syllabus(
            "course", f"Secrets kept by {provider}", "--modules", "1", "--provider", provider, "--out", str(tmp_path)
        )
        assert run.code == 1, run.out + run.err
        answers += [run.out, run.err]
        # Its progress goes to stderr: "course ID (job JOB_ID): PROMPT", the steps, then why it failed.
        job_ids.append(run.err.split("(job ", 1)[1].split(")", 1)[0])
    # The providers did see the keys, and did quote them back: otherwise this test would prove nothing.
    assert any(leaky.openai_key in r.headers.get("authorization", "") for r in leaky.openai.requests)
    assert any(leaky.gemini_key == r.headers.get("x-goog-api-key") for r in leaky.gemini.requests)

    for job_id in job_ids:
        for argv in (("get", job_id, "--json"), ("deadletters", "show", job_id), ("watch", job_id)):
            run = await stack.syllabus(*argv)
            answers += [run.out, run.err]
    listed = await stack.syllabus("deadletters", "list", "--json")
    assert listed.code == 0, listed.err
    answers.append(listed.out)
    messages = [letter["job"]["errors"][-1]["message"] for letter in json.loads(listed.out)]
    assert len(messages) == 2 and all(PLACEHOLDER in message for message in messages), messages

    async with httpx.AsyncClient(base_url=f"http://{stack.env['SYLLABUS_HTTP_ADDR']}", timeout=30) as http:
        for path in ("/v1/jobs", "/v1/admin/deadletters", "/v1/courses"):
            answers.append((await http.get(path)).text)
        for job_id in job_ids:
            for path in (f"/v1/jobs/{job_id}", f"/v1/admin/deadletters/{job_id}", f"/v1/jobs/{job_id}:watch"):
                answers.append((await http.get(path)).text)

    assert [answer for answer in answers if leaks(answer, leaky.keys)] == []
    assert leaks(stack.log.read_bytes(), leaky.keys) == []
    leaking, scanned = await asyncio.to_thread(leaking_files, Path(stack.env["SYLLABUS_HOME"]), leaky.keys)
    assert scanned > 0, "the run wrote no files?"
    assert leaking == []


def leaking_files(home: Path, keys: tuple[str, ...]) -> tuple[list[str], int]:
    """The files under `home` holding a key, and how many files there were."""
    files = [path for path in home.rglob("*") if path.is_file()]
    return [str(path) for path in files if leaks(path.read_bytes(), keys)], len(files)
