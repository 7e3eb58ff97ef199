"""The gateway over TLS and mutual TLS, as a real process: gRPC and HTTPS, the REST shim's loopback channel to its
own gRPC server, and the clients (Python, the command line, Node.js) with their TLS settings. The mutual-TLS
gateway also reaches its NATS over TLS with a client certificate."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio

from cli.main import main as cli_main
from onemachine.health import wait_healthy
from onemachine.servers import die_with_parent
from syllabus.client import GatewayUnreachable, SyllabusClient
from syllabus.config import TlsFiles
from syllabus.tls import channel_credentials
from syllabus.v1 import job_pb2
from tests.e2e.conftest import ROOT, STEP_DEADLINE, stack_env
from tests.rest.conftest import node_client, run_node
from tests.tls.conftest import ConfiguredNats, Pki, nats_tls_block, started

pytestmark = pytest.mark.e2e
__all__ = ["node_client"]

JSON = {"Content-Type": "application/json"}
SUBMIT = {"spec": {"summarizeText": {"text": "over TLS"}}}


@dataclass
class Gateway:
    env: dict[str, str]
    log: Path

    @property
    def grpc_addr(self) -> str:
        return self.env["SYLLABUS_GRPC_ADDR"]

    @property
    def https(self) -> str:
        return "https://" + self.env["SYLLABUS_HTTP_ADDR"]


@contextlib.asynccontextmanager
async def gateway_process(base: Path, env: Mapping[str, str], pki: Pki, client_cert: bool) -> AsyncIterator[Gateway]:
    """`python -m syllabus gateway` with `env`, once it answers its health check over TLS; SIGTERMed afterwards."""
    full = stack_env(base / "home") | dict(env)
    log = base / "gateway.log"
    with log.open("wb") as sink:
        process = await asyncio.create_subprocess_exec(
            *die_with_parent([sys.executable, "-m", "syllabus", "gateway"]),
            env=full,
            cwd=ROOT,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=sink,
            stderr=asyncio.subprocess.STDOUT,
        )
    try:
        credentials = channel_credentials(pki.client_files(with_cert=client_cert))
        try:
            await wait_healthy(full["SYLLABUS_GRPC_ADDR"], STEP_DEADLINE, tls=(credentials, ()))
        except TimeoutError:
            pytest.fail("the gateway did not answer over TLS:\n" + log.read_text(errors="replace"))
        yield Gateway(full, log)
    finally:
        if process.returncode is None:
            process.terminate()
        await asyncio.wait_for(process.wait(), STEP_DEADLINE)


def tls_env(files: TlsFiles) -> dict[str, str]:
    env = {"SYLLABUS_TLS_CERT": files.cert, "SYLLABUS_TLS_KEY": files.key}
    if files.ca:
        env["SYLLABUS_TLS_CLIENT_CA"] = files.ca
    return env


@pytest_asyncio.fixture(scope="module")
async def tls_gateway(tmp_path_factory: pytest.TempPathFactory, pki: Pki, nats_url: str) -> AsyncIterator[Gateway]:
    base = tmp_path_factory.mktemp("tls-gateway")
    env = {"SYLLABUS_NATS_URL": nats_url, "SYLLABUS_NAMESPACE": "tls" + uuid.uuid4().hex[:8]}
    async with gateway_process(base, env | tls_env(pki.server_files()), pki, client_cert=False) as gateway:
        yield gateway


@pytest_asyncio.fixture(scope="module")
async def mtls_gateway(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> AsyncIterator[Gateway]:
    """Client certificates required; NATS reached over TLS with the client certificate, NATS verifying it."""
    base = tmp_path_factory.mktemp("mtls-gateway")
    nats = ConfiguredNats(base / "nats", nats_tls_block(pki, verify_clients=True))
    async with started(nats):
        client = pki.client_files()
        env = {
            "SYLLABUS_NATS_URL": f"tls://{nats.address()}",
            "SYLLABUS_NATS_TLS_CA": client.ca,
            "SYLLABUS_NATS_TLS_CERT": client.cert,
            "SYLLABUS_NATS_TLS_KEY": client.key,
            "SYLLABUS_NAMESPACE": "mtls" + uuid.uuid4().hex[:8],
        }
        async with gateway_process(base, env | tls_env(pki.server_files(True)), pki, client_cert=True) as gateway:
            yield gateway


async def submitted(client: SyllabusClient) -> job_pb2.Job:
    job, created = await client.submit(job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text="over TLS")))
    assert created
    return job


async def refused(client: SyllabusClient) -> str:
    with pytest.raises(GatewayUnreachable) as caught:
        await client.submit(job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text="refused")))
    await client.close()
    return caught.value.message


async def test_grpc_over_tls_takes_a_client_trusting_its_ca_and_no_other(tls_gateway: Gateway, pki: Pki) -> None:
    addr = tls_gateway.grpc_addr
    async with SyllabusClient.connect(addr, tls_ca=str(pki.ca), timeout=10) as client:
        job = await submitted(client)
        assert (await client.get(job.id)).id == job.id
    # Plaintext to a TLS port, and TLS trusting another CA, never get an answer.
    await refused(SyllabusClient.connect(addr, timeout=5))
    await refused(SyllabusClient.connect(addr, tls_ca=str(pki.stranger_ca), timeout=5))


async def test_mutual_tls_takes_only_clients_with_a_certificate_of_the_client_ca(
    mtls_gateway: Gateway, pki: Pki
) -> None:
    addr, client = mtls_gateway.grpc_addr, pki.client
    async with SyllabusClient.connect(
        addr, tls_ca=str(pki.ca), tls_cert=str(client.cert), tls_key=str(client.key), timeout=10
    ) as with_cert:
        await submitted(with_cert)
    await refused(SyllabusClient.connect(addr, tls_ca=str(pki.ca), timeout=5))
    # Signed by the CA of the gateway's own certificate, which the gateway trusts its own leaf of, not the CA.
    other = pki.server_signed_client
    await refused(
        SyllabusClient.connect(addr, tls_ca=str(pki.ca), tls_cert=str(other.cert), tls_key=str(other.key), timeout=5)
    )


async def test_https_reaches_the_grpc_server_over_its_tls_loopback(tls_gateway: Gateway, pki: Pki) -> None:
    async with httpx.AsyncClient(base_url=tls_gateway.https, verify=pki.client_context(), timeout=30) as http:
        answer = await http.post("/v1/jobs", json=SUBMIT, headers=JSON)
        assert answer.status_code == 200, answer.text
        job_id = answer.json()["job"]["id"]
        assert (await http.get(f"/v1/jobs/{job_id}")).json()["job"]["id"] == job_id
    plain = "http://" + tls_gateway.env["SYLLABUS_HTTP_ADDR"]
    async with httpx.AsyncClient(base_url=plain, timeout=10) as http:
        with pytest.raises(httpx.TransportError):
            await http.get("/v1/jobs")


async def test_https_with_mutual_tls_still_reaches_the_grpc_server(mtls_gateway: Gateway, pki: Pki) -> None:
    context = pki.client_context(pki.client)
    async with httpx.AsyncClient(base_url=mtls_gateway.https, verify=context, timeout=30) as http:
        answer = await http.post("/v1/jobs", json=SUBMIT, headers=JSON)
        assert answer.status_code == 200, answer.text
        job_id = answer.json()["job"]["id"]
        assert (await http.get(f"/v1/jobs/{job_id}")).json()["job"]["id"] == job_id
    async with httpx.AsyncClient(base_url=mtls_gateway.https, verify=pki.client_context(), timeout=10) as http:
        with pytest.raises(httpx.TransportError):
            await http.get("/v1/jobs")


async def test_the_command_line_reads_its_tls_settings(
    mtls_gateway: Gateway, pki: Pki, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["submit", "summarize", "--text", "from the command line", "--addr", mtls_gateway.grpc_addr]
    monkeypatch.setenv("SYLLABUS_GRPC_TLS_CA", str(pki.ca))
    code = await asyncio.to_thread(cli_main, argv)
    assert code == 1 and "cannot reach the gateway" in capsys.readouterr().err
    monkeypatch.setenv("SYLLABUS_GRPC_TLS_CERT", str(pki.client.cert))
    monkeypatch.setenv("SYLLABUS_GRPC_TLS_KEY", str(pki.client.key))
    code = await asyncio.to_thread(cli_main, argv)
    captured = capsys.readouterr()
    assert code == 0, captured.err
    monkeypatch.delenv("SYLLABUS_GRPC_TLS_KEY")
    code = await asyncio.to_thread(cli_main, argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "SYLLABUS_GRPC_TLS_KEY is not" in err, err


async def test_the_node_client_connects_with_tls_credentials(
    mtls_gateway: Gateway, pki: Pki, node_client: Path
) -> None:
    script = """
const { SyllabusClient, tlsCredentials } = require('./client');
(async () => {
  const [address, ca, cert, key] = process.argv.slice(1);
  const client = new SyllabusClient(address, { credentials: tlsCredentials({ ca, cert, key }) });
  const { job } = await client.submitJob({ spec: { summarizeText: { text: 'node over TLS' } } });
  console.log(job.id ? 'submitted' : 'no job');
})().catch((error) => { console.error(String(error)); process.exit(1); });
"""
    client = pki.client
    argv = (mtls_gateway.grpc_addr, str(pki.ca), str(client.cert), str(client.key))
    code, out, err = await run_node(node_client, "-e", script, *argv)
    assert code == 0 and out.strip() == "submitted", err
