"""NATS and Valkey reached as the services reach them (syllabus.jetstream.connect with nats_options,
syllabus.redisclient.redis_client, both from CommonConfig): over TLS, and with passwords, tokens and nkeys."""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import nats
import nats.errors
import nkeys
import pytest
import pytest_asyncio
import redis.exceptions
from nats.aio.client import Client

from onemachine.servers import NatsServer, ValkeyServer
from syllabus.config import CommonConfig
from syllabus.jetstream import connect, nats_client, nats_options
from syllabus.redisclient import redis_client
from syllabus.tls import server_context
from tests.tls.conftest import ConfiguredNats, PasswordValkey, Pki, nats_tls_block, started, tls_terminator

# nats.connect's own options for connections expected to fail: one try, no reconnecting.
ONCE: dict[str, Any] = {"connect_timeout": 5, "allow_reconnect": False, "max_reconnect_attempts": 0}


async def round_trip(nc: Client) -> bytes:
    subscription = await nc.subscribe("tls.echo")
    await nc.publish("tls.echo", b"ping")
    message = await subscription.next_msg(timeout=10)
    await nc.close()
    return message.data


async def service_connection(env: Mapping[str, str]) -> Client:
    """As a service connects: the URL and options its CommonConfig gives."""
    common = CommonConfig.from_env(env)
    return await connect(common.nats_url, "pytest-tls", options=nats_options(common))


async def refused(url: str, **options: object) -> None:
    with pytest.raises((nats.errors.Error, OSError)):
        nc = await nats.connect(url, **ONCE, **options)
        await nc.close()


@pytest_asyncio.fixture(scope="module")
async def tls_nats(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> AsyncIterator[ConfiguredNats]:
    server = ConfiguredNats(tmp_path_factory.mktemp("tls-nats"), nats_tls_block(pki, verify_clients=False))
    async with started(server):
        yield server


async def test_a_service_reaches_nats_over_tls_with_the_ca(tls_nats: ConfiguredNats, pki: Pki) -> None:
    url = f"tls://{tls_nats.address()}"
    nc = await service_connection({"SYLLABUS_NATS_URL": url, "SYLLABUS_NATS_TLS_CA": str(pki.ca)})
    assert nc.client_id is not None and await round_trip(nc) == b"ping"
    # Without the CA, or with another, the server's certificate is not trusted.
    await refused(url)
    common = CommonConfig.from_env({"SYLLABUS_NATS_URL": url, "SYLLABUS_NATS_TLS_CA": str(pki.stranger_ca)})
    await refused(url, **nats_options(common))


async def test_a_tls_url_never_talks_plaintext_to_a_server_without_tls(nats_server: NatsServer) -> None:
    # nats-py alone would: it upgrades only when the server asks for TLS, and would send credentials in clear.
    url = nats_server.url.replace("nats://", "tls://syllabus:a-password@")
    said: list[Exception] = []

    async def heard(exc: Exception) -> None:
        said.append(exc)

    with pytest.raises(nats.errors.Error):
        await nats_client().connect(url, **ONCE, error_cb=heard)
    assert any("does not require TLS, and the URL asks for tls://" in str(exc) for exc in said), said
    # The same server by its nats:// URL is fine.
    plain = nats_client()
    await plain.connect(nats_server.url, **ONCE)
    assert await round_trip(plain) == b"ping"


async def test_nats_verifying_clients_takes_only_a_client_certificate(tmp_path: Path, pki: Pki) -> None:
    server = ConfiguredNats(tmp_path, nats_tls_block(pki, verify_clients=True))
    async with started(server):
        url = f"tls://{server.address()}"
        env = {"SYLLABUS_NATS_URL": url, "SYLLABUS_NATS_TLS_CA": str(pki.ca)}
        await refused(url, **nats_options(CommonConfig.from_env(env)))
        env |= {"SYLLABUS_NATS_TLS_CERT": str(pki.client.cert), "SYLLABUS_NATS_TLS_KEY": str(pki.client.key)}
        assert await round_trip(await service_connection(env)) == b"ping"


async def test_a_user_and_password_or_a_token_in_the_url_are_sent(tmp_path: Path) -> None:
    password = secrets.token_urlsafe(16)
    server = ConfiguredNats(tmp_path / "users", f'authorization {{ user: "syllabus", password: "{password}" }}\n')
    async with started(server):
        address = server.address()
        nc = await service_connection({"SYLLABUS_NATS_URL": f"nats://syllabus:{password}@{address}"})
        assert await round_trip(nc) == b"ping"
        await refused(f"nats://{address}")
        await refused(f"nats://syllabus:wrong-{password}@{address}")
    token = secrets.token_urlsafe(16)
    server = ConfiguredNats(tmp_path / "token", f'authorization {{ token: "{token}" }}\n')
    async with started(server):
        address = server.address()
        assert await round_trip(await service_connection({"SYLLABUS_NATS_URL": f"nats://{token}@{address}"})) == b"ping"
        await refused(f"nats://{address}")


async def test_an_nkey_seed_file_signs_the_servers_challenge(tmp_path: Path) -> None:
    seed = nkeys.encode_seed(secrets.token_bytes(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    seed_file = tmp_path / "user.nk"
    seed_file.write_bytes(seed)
    server = ConfiguredNats(tmp_path / "nats", f'authorization {{ users = [ {{ nkey: "{public}" }} ] }}\n')
    async with started(server):
        url = server.url
        assert (
            await round_trip(await service_connection({"SYLLABUS_NATS_URL": url, "SYLLABUS_NATS_NKEY": str(seed_file)}))
            == b"ping"
        )
        await refused(url)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def new_nkey(prefix: int) -> nkeys.KeyPair:
    return nkeys.from_seed(bytearray(nkeys.encode_seed(secrets.token_bytes(32), prefix)))


def nats_jwt(issuer: nkeys.KeyPair, subject: nkeys.KeyPair, kind: str, **nats: object) -> str:
    """A NATS JWT (v2) as `nsc` writes one: `issuer` signs that `subject` is an operator, account or user."""
    header = {"typ": "JWT", "alg": "ed25519-nkey"}
    claims = {
        "jti": secrets.token_hex(16).upper(),
        "iat": int(time.time()),
        "iss": issuer.public_key.decode(),
        "sub": subject.public_key.decode(),
        "name": kind,
        "nats": {"type": kind, "version": 2, **nats},
    }
    signed = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
    return f"{signed}.{_b64(issuer.sign(signed.encode()))}"


async def test_a_credentials_file_authenticates_to_a_server_in_operator_mode(tmp_path: Path) -> None:
    operator, user = new_nkey(nkeys.PREFIX_BYTE_OPERATOR), new_nkey(nkeys.PREFIX_BYTE_USER)
    # JetStream, on in every server onemachine starts, needs a system account in operator mode.
    account, system = new_nkey(nkeys.PREFIX_BYTE_ACCOUNT), new_nkey(nkeys.PREFIX_BYTE_ACCOUNT)
    unlimited = {"subs": -1, "data": -1, "payload": -1, "imports": -1, "exports": -1, "conn": -1}
    account_jwt = nats_jwt(operator, account, "account", limits=unlimited)
    system_jwt = nats_jwt(operator, system, "account", limits=unlimited)
    user_jwt = nats_jwt(account, user, "user", pub={}, sub={}, subs=-1, data=-1, payload=-1)
    creds = tmp_path / "user.creds"
    creds.write_text(
        f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
        f"-----BEGIN USER NKEY SEED-----\n{user.seed.decode()}\n------END USER NKEY SEED------\n"
    )
    system_key = system.public_key.decode()
    operator_mode = (
        f"operator: {nats_jwt(operator, operator, 'operator', system_account=system_key)}\n"
        f"system_account: {system_key}\n"
        "resolver: MEMORY\n"
        f"resolver_preload: {{ {account.public_key.decode()}: {account_jwt}, {system_key}: {system_jwt} }}\n"
    )
    server = ConfiguredNats(tmp_path / "nats", operator_mode)
    async with started(server):
        env = {"SYLLABUS_NATS_URL": server.url, "SYLLABUS_NATS_CREDS": str(creds)}
        assert await round_trip(await service_connection(env)) == b"ping"
        await refused(server.url)


@pytest_asyncio.fixture(scope="module")
async def password_valkey(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[PasswordValkey]:
    server = PasswordValkey(tmp_path_factory.mktemp("valkey-auth"), secrets.token_urlsafe(16))
    async with started(server):
        yield server


async def pings(env: Mapping[str, str]) -> bool:
    client = redis_client(CommonConfig.from_env(env))
    try:
        return bool(await client.ping())
    finally:
        await client.aclose()


async def test_valkey_with_a_password_from_the_setting_or_the_url(password_valkey: PasswordValkey) -> None:
    url, password = password_valkey.url, password_valkey.password
    assert await pings({"SYLLABUS_REDIS_URL": url, "SYLLABUS_REDIS_PASSWORD": password})
    with_password = url.replace("redis://", f"redis://:{password}@")
    # The URL's password wins over the setting's.
    assert await pings({"SYLLABUS_REDIS_URL": with_password, "SYLLABUS_REDIS_PASSWORD": "not-" + password})
    with pytest.raises(redis.exceptions.AuthenticationError):
        await pings({"SYLLABUS_REDIS_URL": url})
    with pytest.raises(redis.exceptions.AuthenticationError):
        await pings({"SYLLABUS_REDIS_URL": url, "SYLLABUS_REDIS_PASSWORD": "not-" + password})


async def test_rediss_verifies_the_server_and_presents_the_client_certificate(
    redis_server: ValkeyServer, pki: Pki
) -> None:
    assert redis_server.port is not None
    front = server_context(pki.server_files(verify_clients=True))
    async with tls_terminator((redis_server.host, redis_server.port), front) as (host, port):
        url = f"rediss://{host}:{port}"
        client_files = {
            "SYLLABUS_REDIS_TLS_CA": str(pki.ca),
            "SYLLABUS_REDIS_TLS_CERT": str(pki.client.cert),
            "SYLLABUS_REDIS_TLS_KEY": str(pki.client.key),
        }
        assert await pings({"SYLLABUS_REDIS_URL": url, **client_files})
        # Without the CA the server is not trusted; without a certificate the server refuses the client.
        with pytest.raises(redis.exceptions.ConnectionError):
            await pings({"SYLLABUS_REDIS_URL": url})
        with pytest.raises(redis.exceptions.ConnectionError):
            await pings({"SYLLABUS_REDIS_URL": url, "SYLLABUS_REDIS_TLS_CA": str(pki.ca)})
