"""TLS and credential settings: which files go together, which URLs they need, what is a secret and what is a
path, and the gateway's own certificate as its loopback channel uses it."""

from __future__ import annotations

import asyncio
import datetime
import sys
from asyncio.subprocess import PIPE
from pathlib import Path

import grpc
import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from pymongo.uri_parser import parse_uri

from syllabus.config import ClientConfig, CommonConfig, ConfigError, GatewayConfig, TlsFiles, secret_values
from syllabus.tls import GatewayCredentials, client_context
from tests.e2e.conftest import ROOT, STEP_DEADLINE, stack_env
from tests.tls.conftest import Pki


def test_a_certificate_and_key_that_do_not_belong_together_stop_the_gateway_with_one_line(pki: Pki) -> None:
    mismatched = TlsFiles("", str(pki.server.cert), str(pki.client.key))
    with pytest.raises(ConfigError, match=r"SYLLABUS_TLS_CERT=.* and SYLLABUS_TLS_KEY=.*: not a PEM") as caught:
        GatewayCredentials(mismatched)
    assert "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="SYLLABUS_TLS_CLIENT_CA is set but SYLLABUS_TLS_CERT"):
        GatewayConfig.from_env({"SYLLABUS_TLS_CLIENT_CA": str(pki.client_ca)})
    with pytest.raises(ConfigError, match=r"SYLLABUS_TLS_CERT=.*expected a PEM file that exists"):
        GatewayConfig.from_env({"SYLLABUS_TLS_CERT": "/nonexistent.pem", "SYLLABUS_TLS_KEY": str(pki.server.key)})


def test_the_loopback_checks_the_certificate_under_a_name_it_carries(pki: Pki) -> None:
    credentials = GatewayCredentials(pki.server_files())
    assert credentials.name == "gateway.syllabus.test"
    assert isinstance(credentials.loopback()[0], grpc.ChannelCredentials)


def test_tls_files_for_a_plaintext_url_are_refused_not_ignored(pki: Pki) -> None:
    ca = str(pki.ca)
    with pytest.raises(ConfigError, match=r"SYLLABUS_NATS_TLS_\* are set but SYLLABUS_NATS_URL is not a tls://"):
        CommonConfig.from_env({"SYLLABUS_NATS_URL": "nats://127.0.0.1:4222", "SYLLABUS_NATS_TLS_CA": ca})
    with pytest.raises(ConfigError, match=r"SYLLABUS_REDIS_URL is not a rediss://"):
        CommonConfig.from_env({"SYLLABUS_REDIS_URL": "redis://127.0.0.1:6379", "SYLLABUS_REDIS_TLS_CA": ca})
    with pytest.raises(ConfigError, match="SYLLABUS_NATS_TLS_KEY is set but SYLLABUS_NATS_TLS_CERT is not"):
        CommonConfig.from_env({"SYLLABUS_NATS_URL": "tls://127.0.0.1:4222", "SYLLABUS_NATS_TLS_KEY": ca})
    with pytest.raises(ConfigError, match=r"SYLLABUS_NATS_CREDS=./no/such\.creds. is not valid"):
        CommonConfig.from_env({"SYLLABUS_NATS_CREDS": "/no/such.creds"})
    common = CommonConfig.from_env(
        {
            "SYLLABUS_NATS_URL": "tls://a:4222,tls://b:4222",
            "SYLLABUS_NATS_TLS_CA": ca,
            "SYLLABUS_REDIS_URL": "rediss://r:6380",
            "SYLLABUS_REDIS_TLS_CERT": str(pki.client.cert),
            "SYLLABUS_REDIS_TLS_KEY": str(pki.client.key),
        }
    )
    assert common.nats_tls == TlsFiles(ca)
    assert common.redis_tls == TlsFiles("", str(pki.client.cert), str(pki.client.key))


def test_the_command_line_turns_tls_on_with_any_file_or_when_asked(pki: Pki) -> None:
    assert not ClientConfig.from_env({}).tls
    assert ClientConfig.from_env({"SYLLABUS_GRPC_TLS": "1"}).tls
    assert ClientConfig.from_env({"SYLLABUS_GRPC_TLS_CA": str(pki.ca)}).tls
    with pytest.raises(ConfigError, match="SYLLABUS_GRPC_TLS='yes' is not valid"):
        ClientConfig.from_env({"SYLLABUS_GRPC_TLS": "yes"})


def test_tokens_and_passwords_are_secrets_and_tls_key_paths_are_not() -> None:
    env = {
        "SYLLABUS_TOKEN": "client-token-value",
        "SYLLABUS_REDIS_PASSWORD": "valkey-password",
        "SYLLABUS_AUTH_JWT_SECRET": "jwt-secret-of-the-gateway",
        "SYLLABUS_TLS_KEY": "/etc/syllabus/gateway.key",
        "SYLLABUS_GRPC_TLS_KEY": "/home/me/client.key",
        "SYLLABUS_NATS_TLS_KEY": "/etc/syllabus/nats.key",
        "SYLLABUS_NATS_URL": "tls://user:nats-password@nats.example:4222",
        "SYLLABUS_REDIS_URL": "rediss://:url-password@redis.example:6380",
    }
    assert set(secret_values(env)) == {
        "client-token-value",
        "valkey-password",
        "jwt-secret-of-the-gateway",
        "nats-password",
        "url-password",
    }


def test_a_mongodb_url_keeps_its_tls_options(pki: Pki) -> None:
    url = f"mongodb://app:pw@db1:27017,db2:27017/?replicaSet=rs0&tls=true&tlsCAFile={pki.ca}"
    common = CommonConfig.from_env({"SYLLABUS_MONGO_URL": url})
    assert common.mongo_url == url
    options = parse_uri(common.mongo_url)["options"]
    assert options["tls"] is True and options["tlsCAFile"] == str(pki.ca)


async def test_syllabus_up_refuses_an_unusable_certificate_before_starting_anything(tmp_path: Path, pki: Pki) -> None:
    env = stack_env(tmp_path / "home") | {
        "SYLLABUS_TLS_CERT": str(pki.server.cert),
        "SYLLABUS_TLS_KEY": str(pki.client.key),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syllabus", "up", env=env, cwd=ROOT, stdout=PIPE, stderr=PIPE
    )
    out, err = await asyncio.wait_for(process.communicate(), STEP_DEADLINE)
    assert process.returncode == 2, out + err
    assert err.decode().count("\n") == 1 and b"SYLLABUS_TLS_KEY" in err, err
    assert not (tmp_path / "home" / "nats").exists()


def test_files_that_cannot_be_read_or_are_not_certificates_are_one_line_each(pki: Pki, tmp_path: Path) -> None:
    gone = tmp_path / "gone.pem"
    gone.write_text("")
    files = TlsFiles("", str(gone), str(pki.server.key))
    gone.unlink()
    with pytest.raises(ConfigError, match=r"SYLLABUS_TLS_CERT=.*gone\.pem: cannot read it"):
        GatewayCredentials(files)
    with pytest.raises(ConfigError, match=r"SYLLABUS_NATS_TLS_CA=.*: not a PEM file of CA certificates"):
        client_context(TlsFiles(str(pki.server.key)), "SYLLABUS_NATS_TLS")


def self_signed(tmp_path: Path, common_name: str) -> TlsFiles:
    """A certificate with a common name and no alternative names, as old tools make them."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cn.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "cn.key").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return TlsFiles("", str(tmp_path / "cn.pem"), str(tmp_path / "cn.key"))


async def test_the_loopback_reaches_the_gateway_whatever_name_its_certificate_carries(pki: Pki, tmp_path: Path) -> None:
    issuer = trustme.CA()
    cases: dict[str, TlsFiles] = {}
    for label, names in {"an address": ("10.0.0.5",), "a wildcard": ("*.syllabus.test",)}.items():
        leaf = issuer.issue_cert(*names)
        cert, key = tmp_path / f"{len(cases)}.pem", tmp_path / f"{len(cases)}.key"
        cert.write_bytes(leaf.cert_chain_pems[0].bytes())
        key.write_bytes(leaf.private_key_pem.bytes())
        # With a client CA: the loopback then presents the certificate as a client too.
        cases[label] = TlsFiles(str(pki.client_ca), str(cert), str(key))
    cases["a common name only"] = self_signed(tmp_path, "gateway.internal")
    named = {}
    for label, files in cases.items():
        credentials = GatewayCredentials(files)
        named[label] = credentials.name
        server = grpc.aio.server()
        health_pb2_grpc.add_HealthServicer_to_server(health.aio.HealthServicer(), server)
        port = server.add_secure_port("127.0.0.1:0", credentials.server())
        await server.start()
        try:
            channel_credentials, options = credentials.loopback()
            async with grpc.aio.secure_channel(f"127.0.0.1:{port}", channel_credentials, options=options) as channel:
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        finally:
            await server.stop(None)
    assert named == {
        "an address": "10.0.0.5",
        "a wildcard": "loopback.syllabus.test",
        "a common name only": "gateway.internal",
    }
