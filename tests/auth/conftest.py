"""A gateway that requires credentials: the pipeline's services behind a gate (HS256 secret, a JWKS file with an
RSA and an EC key, API keys from the NATS bucket), with the REST shim in front, and helpers minting tokens."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import jwt
import pytest_asyncio
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from gateway.auth.gate import Gate
from gateway.rest.server import RestGateway, services_named
from gateway.services import SERVICE_NAMES
from syllabus.apikeys import ApiKeys, KnownKeys
from syllabus.config import AuthConfig
from syllabus.v1 import (
    admin_service_pb2_grpc,
    course_service_pb2_grpc,
    job_service_pb2_grpc,
    schedule_service_pb2_grpc,
    worker_service_pb2_grpc,
)
from tests.pipeline import conftest as pipeline_fixtures
from tests.pipeline.conftest import Pipeline
from tests.pipeline.served import serve_gateway

pipeline = pipeline_fixtures.pipeline
start_worker = pipeline_fixtures.start_worker

SECRET = "a-shared-secret-of-at-least-32-bytes-for-hs256"
ISSUER = "https://id.example.test/"
AUDIENCE = "syllabus-api"


def jwk(public: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = jwt.algorithms.RSAAlgorithm if alg.startswith("RS") else jwt.algorithms.ECAlgorithm
    found: dict[str, Any] = json.loads(algorithm.to_jwk(public))
    return {**found, "kid": kid, "alg": alg, "use": "sig"}


@dataclasses.dataclass
class Secured:
    pipeline: Pipeline
    target: str
    http: httpx.AsyncClient
    keys: ApiKeys
    jwks_path: Path
    rsa: rsa.RSAPrivateKey
    ec: ec.EllipticCurvePrivateKey

    def token(
        self,
        tenant: str | None = "acme",
        scopes: str = "read write",
        *,
        alg: str = "HS256",
        kid: str | None = None,
        key: Any = None,
        **claims: Any,
    ) -> str:
        body: dict[str, Any] = {"iss": ISSUER, "aud": AUDIENCE, "sub": "someone", "exp": time.time() + 600}
        if tenant is not None:
            body["tenant"] = tenant
        if scopes:
            body["scope"] = scopes
        body.update(claims)
        signing: Any = key if key is not None else {"HS256": SECRET, "RS256": self.rsa, "ES256": self.ec}[alg]
        headers = {"kid": kid} if kid else None
        return jwt.encode(body, signing, algorithm=alg, headers=headers)

    def channel(self, token: str | None = None, tenant: str | None = None) -> grpc.aio.Channel:
        from syllabus import credentials

        return credentials.channel(self.target, token=token, tenant=tenant)

    def stubs(self, token: str | None = None, tenant: str | None = None) -> Stubs:
        return Stubs(self.channel(token, tenant))


class Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.channel = channel
        self.jobs = job_service_pb2_grpc.JobServiceStub(channel)
        self.admin = admin_service_pb2_grpc.AdminServiceStub(channel)
        self.courses = course_service_pb2_grpc.CourseServiceStub(channel)
        self.schedules = schedule_service_pb2_grpc.ScheduleServiceStub(channel)
        self.workers = worker_service_pb2_grpc.WorkerServiceStub(channel)


@pytest_asyncio.fixture
async def secured(pipeline: Pipeline, tmp_path: Path) -> AsyncIterator[Secured]:
    private_rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_ec = ec.generate_private_key(ec.SECP256R1())
    jwks_path = tmp_path / "jwks.json"
    jwks_path.write_text(
        json.dumps(
            {"keys": [jwk(private_rsa.public_key(), "rsa-1", "RS256"), jwk(private_ec.public_key(), "ec-1", "ES256")]}
        )
    )
    config = AuthConfig(jwt_secret=SECRET, jwks=str(jwks_path), issuer=ISSUER, audience=AUDIENCE, jwks_min_reload=0.0)
    known = KnownKeys(pipeline.nc, pipeline.topology)
    await known.start()
    gate = Gate(config, "default", known)
    async with serve_gateway(pipeline, gate=gate) as target:
        rest = RestGateway(services_named(SERVICE_NAMES), target)
        url = "http://" + await rest.start("127.0.0.1:0")
        http = httpx.AsyncClient(base_url=url, timeout=30)
        try:
            yield Secured(
                pipeline, target, http, ApiKeys(pipeline.nc, pipeline.topology), jwks_path, private_rsa, private_ec
            )
        finally:
            await http.aclose()
            await rest.stop()
            await known.stop()
