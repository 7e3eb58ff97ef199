"""Who may call: bearer JWTs (HS256, RS256 and ES256 from a JWKS file), API keys with scopes, on gRPC and REST."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import grpc
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status

from gateway.auth.listening import refuse_open_listening
from syllabus.config import AuthConfig, ConfigError
from syllabus.store.base import JobQuery
from syllabus.v1 import job_pb2, job_service_pb2, worker_service_pb2
from tests.auth.conftest import Secured, jwk
from tests.conditions import eventually

SUBMIT = job_service_pb2.SubmitJobRequest(spec=job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text="hello")))
JSON = {"Content-Type": "application/json"}
BODY = json.dumps({"spec": {"summarize_text": {"text": "hello"}}})


async def submit(secured: Secured, token: str | None, tenant: str | None = None) -> job_pb2.Job:
    stubs = secured.stubs(token, tenant)
    try:
        response = await stubs.jobs.SubmitJob(SUBMIT, timeout=10)
        job: job_pb2.Job = response.job
        return job
    finally:
        await stubs.channel.close()


async def refused(secured: Secured, token: str | None, tenant: str | None = None) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await submit(secured, token, tenant)
    return caught.value


def reason(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


async def test_a_call_without_credentials_is_unauthenticated_on_grpc_and_401_with_a_challenge_on_rest(
    secured: Secured,
) -> None:
    error = await refused(secured, None)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert reason(error) == "CREDENTIALS_MISSING"
    answer = await secured.http.post("/v1/jobs", content=BODY, headers=JSON)
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="syllabus"'
    assert answer.json()["code"] == 16
    assert await secured.pipeline.store.tenants() == []


@pytest.mark.parametrize(
    "authorization",
    ["Bearer garbage", "Bearer  x", "Basic dXNlcjpwYXNz", "Bearer syl_abc_def", "Bearer a.b.c", "token"],
)
async def test_garbage_credentials_are_refused_with_an_invalid_token_challenge(
    secured: Secured, authorization: str
) -> None:
    answer = await secured.http.post("/v1/jobs", content=BODY, headers={**JSON, "Authorization": authorization})
    assert answer.status_code == 401, answer.text
    assert answer.headers["WWW-Authenticate"].startswith('Bearer realm="syllabus", error="invalid_')
    assert "garbage" not in answer.text and "dXNlcjpwYXNz" not in answer.text
    assert await secured.pipeline.store.tenants() == []


async def test_hs256_rs256_and_es256_tokens_are_accepted_for_their_tenant(secured: Secured) -> None:
    for alg, kid in (("HS256", None), ("RS256", "rsa-1"), ("ES256", "ec-1")):
        job = await submit(secured, secured.token(f"t-{alg.lower()}", alg=alg, kid=kid))
        assert job.tenant == f"t-{alg.lower()}"
    answer = await secured.http.post(
        "/v1/jobs", content=BODY, headers={**JSON, "Authorization": f"Bearer {secured.token('rest-tenant')}"}
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["job"]["tenant"] == "rest-tenant"


@pytest.mark.parametrize(
    ("claims", "why"),
    [
        ({"exp": time.time() - 120}, "expired"),
        ({"iss": "https://someone-else.test/"}, "issuer"),
        ({"aud": "another-api"}, "audience"),
        ({"nbf": time.time() + 600}, "not yet valid"),
    ],
)
async def test_expiry_issuer_audience_and_not_before_are_checked(
    secured: Secured, claims: dict[str, Any], why: str
) -> None:
    error = await refused(secured, secured.token("acme", "read write", **claims))
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED, why
    assert reason(error) == "INVALID_TOKEN"


async def test_a_token_expired_within_the_clock_skew_is_accepted(secured: Secured) -> None:
    job = await submit(secured, secured.token(exp=time.time() - 5))
    assert job.tenant == "acme"


async def test_a_token_without_expiry_or_tenant_or_with_a_tenant_that_could_cross_subjects_is_refused(
    secured: Secured,
) -> None:
    no_exp = jwt.encode({"iss": "https://id.example.test/", "aud": "syllabus-api", "tenant": "acme"}, "x" * 46)
    assert (await refused(secured, no_exp)).code() == grpc.StatusCode.UNAUTHENTICATED
    assert (await refused(secured, secured.token(tenant=None))).code() == grpc.StatusCode.UNAUTHENTICATED
    for tenant in ("*", "a.b", ">", "a b", "", "x" * 65):
        error = await refused(secured, secured.token(tenant=tenant))
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, tenant
    assert await secured.pipeline.store.tenants() == []


async def test_forged_signatures_and_algorithm_confusion_are_refused(secured: Secured) -> None:
    wrong_secret = secured.token(key="another-secret-that-is-32-bytes-long!!")
    unsigned = jwt.encode({"tenant": "acme", "exp": time.time() + 60}, None, algorithm="none")  # type: ignore[arg-type]
    # The RSA public key used as an HMAC secret: the classic confusion attack.
    public_pem = secured.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    confused = hmac_signed({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, secured.token(), public_pem)
    from cryptography.hazmat.primitives.asymmetric import rsa

    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    unknown_signer = secured.token(alg="RS256", kid="rsa-1", key=stranger)
    for token in (wrong_secret, unsigned, confused, unknown_signer):
        error = await refused(secured, token)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    assert await secured.pipeline.store.tenants() == []


def hmac_signed(header: dict[str, str], token: str, secret: bytes) -> str:
    """The claims of `token` under `header`, signed with HMAC-SHA256 by hand (PyJWT refuses to do it with a
    public key as the secret, which is the point of the attack)."""

    def encoded(data: bytes) -> bytes:
        return base64.urlsafe_b64encode(data).rstrip(b"=")

    claims = token.split(".")[1].encode()
    signing_input = encoded(json.dumps(header).encode()) + b"." + claims
    signature = encoded(hmac.new(secret, signing_input, hashlib.sha256).digest())
    return (signing_input + b"." + signature).decode()


async def test_a_rotated_signing_key_is_used_without_a_restart(secured: Secured) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa

    assert (await submit(secured, secured.token(alg="RS256", kid="rsa-1"))).tenant == "acme"
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    secured.jwks_path.write_text(json.dumps({"keys": [jwk(rotated.public_key(), "rsa-2", "RS256")]}))
    token = secured.token("rotated", alg="RS256", kid="rsa-2", key=rotated)
    assert (await submit(secured, token)).tenant == "rotated"


async def test_scopes_decide_what_a_token_may_call(secured: Secured) -> None:
    reader = secured.token(scopes="read")
    error = await refused(secured, reader)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert reason(error) == "SCOPE_MISSING"
    stubs = secured.stubs(reader)
    listed = await stubs.jobs.ListJobs(job_service_pb2.ListJobsRequest(), timeout=10)
    assert list(listed.jobs) == []
    from syllabus.v1 import admin_service_pb2

    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.admin.ListDeadLetters(admin_service_pb2.ListDeadLettersRequest(), timeout=10)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    call = stubs.workers.Work()
    await call.write(worker_service_pb2.WorkRequest(hello=worker_service_pb2.WorkerHello(pool="p")))
    with pytest.raises(grpc.aio.AioRpcError) as work:
        await call.read()
    assert work.value.code() == grpc.StatusCode.PERMISSION_DENIED
    await stubs.channel.close()
    answer = await secured.http.get("/v1/admin/deadletters", headers={"Authorization": f"Bearer {reader}"})
    assert answer.status_code == 403


async def answer_code(secured: Secured, token: str) -> grpc.StatusCode:
    try:
        await submit(secured, token)
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_api_keys_work_with_their_scopes_until_revoked(secured: Secured) -> None:
    key, presented = await secured.keys.create("machines", ("read", "write"), "ci")
    # The gateway follows the bucket: a new key works, and a revoked one stops, once the watch brings the change.
    await eventually(lambda: is_code(secured, presented, grpc.StatusCode.OK))
    listed = await secured.pipeline.store.list_jobs(JobQuery(tenant="machines"))
    assert [job.tenant for job in listed.jobs] == ["machines"]
    stored = [found for found in await secured.keys.list() if found.id == key.id]
    assert stored and presented.removeprefix("syl_").partition("_")[2] not in repr(stored[0].encode())
    answer = await secured.http.get(f"/v1/jobs/{listed.jobs[0].id}", headers={"Authorization": f"Bearer {presented}"})
    assert answer.status_code == 200
    reader_key, reader = await secured.keys.create("machines", ("read",), "dashboards")
    await eventually(lambda: is_code(secured, reader, grpc.StatusCode.PERMISSION_DENIED))
    await secured.keys.revoke(key.id)
    await eventually(lambda: is_code(secured, presented, grpc.StatusCode.UNAUTHENTICATED))
    # The right id with a wrong secret is no key.
    forged = f"syl_{reader_key.id}_{'A' * 43}"
    assert (await refused(secured, forged)).code() == grpc.StatusCode.UNAUTHENTICATED


async def is_code(secured: Secured, token: str, code: grpc.StatusCode) -> bool:
    answered: grpc.StatusCode = await answer_code(secured, token)
    return bool(answered == code)


async def test_health_stays_open(secured: Secured) -> None:
    channel = secured.channel()
    try:
        answer = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
    finally:
        await channel.close()


async def test_only_an_admin_may_act_for_another_tenant(secured: Secured) -> None:
    error = await refused(secured, secured.token("acme"), tenant="globex")
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    admin = secured.token("ops", scopes="admin")
    assert (await submit(secured, admin, tenant="globex")).tenant == "globex"
    assert (await submit(secured, admin)).tenant == "ops"
    assert (await refused(secured, admin, tenant="a.b")).code() == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize("address", ["0.0.0.0:50051", "192.0.2.7:8080", "[::]:8080", "example.com:80"])
def test_an_open_gateway_refuses_to_listen_beyond_loopback(address: str) -> None:
    with pytest.raises(ConfigError, match="not a loopback address and authentication is off"):
        refuse_open_listening(AuthConfig(), (("SYLLABUS_GRPC_ADDR", address),))
    refuse_open_listening(AuthConfig(allow_open=True), (("SYLLABUS_GRPC_ADDR", address),))
    refuse_open_listening(AuthConfig(mode="on"), (("SYLLABUS_GRPC_ADDR", address),))


@pytest.mark.parametrize("address", ["127.0.0.1:50051", "localhost:8080", "[::1]:8080", "127.9.9.9:1"])
def test_an_open_gateway_may_listen_on_loopback(address: str) -> None:
    refuse_open_listening(AuthConfig(), (("SYLLABUS_HTTP_ADDR", address),))


def test_auth_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="SYLLABUS_AUTH_JWT_SECRET"):
        AuthConfig.from_env({"SYLLABUS_AUTH_JWT_SECRET": "short"})
    with pytest.raises(ConfigError, match="SYLLABUS_AUTH_JWKS"):
        AuthConfig.from_env({"SYLLABUS_AUTH_JWKS": "/no/such/file.json"})
    with pytest.raises(ConfigError, match="SYLLABUS_AUTH="):
        AuthConfig.from_env({"SYLLABUS_AUTH": "maybe"})
    assert AuthConfig.from_env({"SYLLABUS_AUTH_JWT_SECRET": "s" * 32}).required
    assert not AuthConfig.from_env({}).required
    assert AuthConfig.from_env({"SYLLABUS_AUTH": "on"}).required
    assert not AuthConfig.from_env({"SYLLABUS_AUTH": "off", "SYLLABUS_AUTH_JWT_SECRET": "s" * 32}).required
    assert "s" * 32 not in repr(AuthConfig.from_env({"SYLLABUS_AUTH_JWT_SECRET": "s" * 32}))


class Metadata:
    """What the gate reads of a call: its metadata."""

    def __init__(self, token: str) -> None:
        self._pairs = (("authorization", f"Bearer {token}"),)

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._pairs


async def test_keys_from_a_jwks_url_are_fetched_again_for_a_new_key_id_but_not_for_every_bad_token(
    secured: Secured,
) -> None:
    from aiohttp import web
    from cryptography.hazmat.primitives.asymmetric import rsa

    from gateway.auth.gate import Gate, Refused

    published = {"keys": [jwk(secured.rsa.public_key(), "rsa-1", "RS256")]}
    fetches: list[str] = []

    async def jwks(request: web.Request) -> web.Response:
        fetches.append(request.path)
        return web.json_response(published)

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", jwks)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
        config = AuthConfig(jwks=url, jwks_min_reload=3600)
        gate = Gate(config, "default")
        caller = await gate.admit(Metadata(secured.token("acme", alg="RS256", kid="rsa-1")), "write")
        assert caller.tenant == "acme" and len(fetches) == 1
        for n in range(5):
            with pytest.raises(Refused):
                await gate.admit(Metadata(secured.token(alg="RS256", kid=f"made-up-{n}")), "write")
        # Unknown key ids read the keys again at most once per jwks_min_reload: they were read just now.
        assert len(fetches) == 1
        rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        published["keys"] = [jwk(rotated.public_key(), "rsa-2", "RS256")]
        fresh = Gate(AuthConfig(jwks=url, jwks_min_reload=0), "default")
        token = secured.token("rotated", alg="RS256", kid="rsa-2", key=rotated)
        assert (await fresh.admit(Metadata(token), "write")).tenant == "rotated"
        with pytest.raises(Refused):
            await fresh.admit(Metadata(secured.token(alg="RS256", kid="rsa-1")), "write")
    finally:
        await runner.cleanup()


async def test_a_gateway_on_api_keys_alone_refuses_any_jwt(secured: Secured) -> None:
    from gateway.auth.gate import Gate, Refused

    gate = Gate(AuthConfig(mode="on"), "default")
    with pytest.raises(Refused) as refused:
        await gate.admit(Metadata(secured.token()), "read")
    assert "takes API keys only" in refused.value.status.message
