"""Secrets (tokens, keys, passwords, provider keys) never appear in logs, errors, events, dead letters or answers:
a full stack runs with every secret configured to a unique string, and every file it wrote is searched.

`syllabus up` runs against a NATS that wants a user and password and a Valkey that wants a password, with
authentication on (an HS256 secret), an OpenAI-compatible provider that quotes its key back, and the gateway on
mutual TLS. Jobs go through with an API key made by `syllabus keys create` and with a JWT signed with the
secret: one succeeds, a course fails into the dead-letter queue, bad requests carry the token, forged and unknown
credentials are refused, and a command is given a wrong NATS password. The services log at debug level. Then
every answer, event and dead letter read back, and every file under the run's directory (the logs, the SQLite
store, JetStream's files, Valkey's append-only file), must hold none of them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import time
from pathlib import Path

import httpx
import jwt
import pytest

from syllabus.config import ClientConfig
from syllabus.tls import channel_credentials
from tests.conditions import eventually
from tests.course.fake_http import FakeHTTP
from tests.e2e.conftest import Run, Stack, running_stack
from tests.e2e.test_secrets import echo_openai, leaking_files, leaks
from tests.tls.conftest import ConfiguredNats, PasswordValkey, Pki, pki, started

pytestmark = pytest.mark.e2e
__all__ = ["pki"]


@dataclasses.dataclass(frozen=True)
class Credentials:
    jwt_secret: str
    openai_key: str
    nats_password: str
    valkey_password: str

    def token(self, scopes: str, secret: str | None = None) -> str:
        claims = {"tenant": "acme", "scope": scopes, "sub": "e2e", "exp": time.time() + 900}
        return jwt.encode(claims, secret or self.jwt_secret, algorithm="HS256")


def unique(prefix: str) -> str:
    return prefix + secrets.token_hex(20)


async def as_caller(stack: Stack, token: str | None, *argv: str, **env: str) -> Run:
    """A command line run with this token (SYLLABUS_TOKEN) and any other variables."""
    caller = dataclasses.replace(stack, env=stack.env | env | ({"SYLLABUS_TOKEN": token} if token else {}))
    return await caller.syllabus(*argv)


def key_material(path: Path) -> str:
    """A line from the middle of a PEM private key: the key's own bytes, which no log may quote."""
    lines = path.read_text().splitlines()
    return lines[len(lines) // 2]


async def test_no_secret_is_in_any_answer_or_any_file_of_a_full_stack(tmp_path: Path, pki: Pki) -> None:
    given = Credentials(
        jwt_secret=unique("jwt-secret-"),
        openai_key=unique("sk-test-"),
        nats_password=unique("natspw"),
        valkey_password=unique("valkeypw"),
    )
    openai = await FakeHTTP(echo_openai).start()
    nats = ConfiguredNats(
        tmp_path / "nats", f'authorization {{ user: "syllabus", password: "{given.nats_password}" }}\n'
    )
    valkey = PasswordValkey(tmp_path / "valkey", given.valkey_password)
    client = pki.client_files()
    env = {
        "SYLLABUS_REDIS_PASSWORD": given.valkey_password,
        "SYLLABUS_AUTH_JWT_SECRET": given.jwt_secret,
        "SYLLABUS_LLM_PROVIDER": "offline",
        "SYLLABUS_OPENAI_BASE_URL": openai.url,
        "SYLLABUS_OPENAI_MODEL": "echo-model",
        "SYLLABUS_OPENAI_API_KEY": given.openai_key,
        "SYLLABUS_LOG_LEVEL": "debug",
        "SYLLABUS_TLS_CERT": str(pki.server.cert),
        "SYLLABUS_TLS_KEY": str(pki.server.key),
        "SYLLABUS_TLS_CLIENT_CA": str(pki.client_ca),
        "SYLLABUS_GRPC_TLS_CA": client.ca,
        "SYLLABUS_GRPC_TLS_CERT": client.cert,
        "SYLLABUS_GRPC_TLS_KEY": client.key,
    }
    answers: list[str] = []
    presented: list[str] = []
    try:
        async with started(nats), started(valkey):
            env["SYLLABUS_NATS_URL"] = f"nats://syllabus:{given.nats_password}@{nats.address()}"
            env["SYLLABUS_REDIS_URL"] = valkey.url
            tls = channel_credentials(ClientConfig.from_env(env).tls_files)
            (tmp_path / "run").mkdir()
            async with running_stack(tmp_path / "run", env, tls) as stack:
                presented = await drive(stack, given, pki, answers)
    finally:
        await openai.stop()
    # The provider saw its key and quoted it back: otherwise the test would prove nothing about that key.
    assert any(given.openai_key in request.headers.get("authorization", "") for request in openai.requests)

    searched = (
        given.jwt_secret,
        given.openai_key,
        given.nats_password,
        given.valkey_password,
        *presented,
        key_material(pki.server.key),
        key_material(pki.client.key),
    )
    assert [answer for answer in answers if leaks(answer, searched)] == []
    leaking, scanned = await asyncio.to_thread(leaking_files, tmp_path, searched)
    # The servers' configuration files hold their passwords: the test wrote them, as an operator would.
    written_by_the_test = {str(nats.config_path), str(valkey.config_path)}
    assert scanned > 10, "the run wrote hardly any files?"
    assert [path for path in leaking if path not in written_by_the_test] == []
    aof = list((tmp_path / "valkey").rglob("*.aof"))
    jetstream = list((tmp_path / "nats").rglob("*.blk"))
    assert aof and jetstream and (tmp_path / "run" / "home" / "store.db").is_file(), "a store was not searched"


async def drive(stack: Stack, given: Credentials, pki: Pki, answers: list[str]) -> list[str]:
    """Jobs, failures, refusals and reads through the stack; returns the credentials the clients presented."""
    created = await as_caller(stack, None, "keys", "create", "--tenant", "acme", "--name", "e2e")
    assert created.code == 0, created.err
    # Its output is the key itself, shown once on purpose: only the rest of what it said is an answer here.
    api_key = created.out.strip()
    answers.append(created.err)
    admin = given.token("admin")
    forged = given.token("admin", secret=unique("not-the-secret-"))
    unknown_key = "syl_" + secrets.token_hex(6) + "_" + secrets.token_urlsafe(24)

    async def submitted_with_the_key() -> bool:
        run = await as_caller(stack, api_key, "submit", "summarize", "--text", "kept secret", "--watch")
        answers.extend((run.out, run.err))
        # The gateway learns of a new key from its bucket watch: until then the key is refused.
        return run.code == 0

    await eventually(submitted_with_the_key, timeout=60)
    course = await as_caller(
        stack, admin, "course", "Secrets kept", "--modules", "1", "--provider", "openai", "--out", "/dev/null"
    )
    assert course.code == 1, course.out + course.err
    answers.extend((course.out, course.err))
    job_id = course.err.split("(job ", 1)[1].split(")", 1)[0]

    bad = await as_caller(stack, api_key, "submit", "summarize", "--json", '{"text": ""}')
    assert bad.code == 2 and "INVALID_ARGUMENT" in bad.err, bad.err
    for refused_token in (forged, unknown_key):
        refused = await as_caller(stack, refused_token, "jobs", "--json")
        assert refused.code == 1 and "UNAUTHENTICATED" in refused.err, refused.err
        answers.extend((bad.out, bad.err, refused.out, refused.err))
    wrong = unique("wrong")
    wrong_url = stack.env["SYLLABUS_NATS_URL"].replace(given.nats_password, wrong)
    wrong_password = await as_caller(stack, None, "keys", "list", SYLLABUS_NATS_URL=wrong_url)
    assert wrong_password.code == 1, wrong_password.err
    answers.extend((wrong_password.out, wrong_password.err))

    for argv in (("get", job_id, "--json"), ("watch", job_id), ("deadletters", "show", job_id), ("jobs", "--json")):
        run = await as_caller(stack, admin, *argv)
        assert run.code in (0, 1), run.err
        answers.extend((run.out, run.err))
    listed = await as_caller(stack, admin, "deadletters", "list", "--json")
    assert listed.code == 0, listed.err
    letters = json.loads(listed.out)
    assert [letter["job"]["id"] for letter in letters] == [job_id]
    answers.append(listed.out)
    await read_over_rest(stack, pki, answers, job_id, {"good": admin, "forged": forged, "unknown": unknown_key})
    return [api_key, admin, forged, unknown_key, wrong]


async def read_over_rest(stack: Stack, pki: Pki, answers: list[str], job_id: str, tokens: dict[str, str]) -> None:
    url = f"https://{stack.env['SYLLABUS_HTTP_ADDR']}"
    async with httpx.AsyncClient(base_url=url, verify=pki.client_context(pki.client), timeout=30) as http:
        authorized = {"Authorization": f"Bearer {tokens['good']}"}
        paths = ["/v1/jobs", "/v1/admin/deadletters", "/v1/courses", f"/v1/jobs/{job_id}"]
        paths += [f"/v1/admin/deadletters/{job_id}", f"/v1/jobs/{job_id}:watch"]
        for path in paths:
            answer = await http.get(path, headers=authorized)
            assert answer.status_code == 200, (path, answer.text)
            answers.append(answer.text)
        malformed = await http.post(
            "/v1/jobs", content=b'{"spec": ', headers=authorized | {"Content-Type": "application/json"}
        )
        assert malformed.status_code == 400, malformed.text
        answers.append(malformed.text)
        for name in ("forged", "unknown"):
            refused = await http.get("/v1/jobs", headers={"Authorization": f"Bearer {tokens[name]}"})
            assert refused.status_code == 401, refused.text
            answers.extend((refused.text, json.dumps(dict(refused.headers))))
