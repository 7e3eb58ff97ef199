"""The clients with credentials: the command line (SYLLABUS_TOKEN, SYLLABUS_ACT_AS, `syllabus keys`), the
Python client and the Node.js client, against a gateway that requires them."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cli.main import main
from syllabus.client import SyllabusClient, SyllabusError
from syllabus.v1 import job_pb2
from tests.auth.conftest import Secured
from tests.conditions import eventually
from tests.pipeline.conftest import StartWorker
from tests.rest.conftest import node_client, run_node

__all__ = ["node_client"]


async def cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, env: dict[str, str], *argv: str
) -> tuple[int, str, str]:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    code = await asyncio.to_thread(main, list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


async def test_the_command_line_sends_its_token_and_the_tenant_an_admin_acts_for(
    secured: Secured, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    addr = ["--addr", secured.target]
    code, _, err = await cli(capsys, monkeypatch, {}, "submit", "summarize", "--text", "hello", *addr)
    assert code != 0 and err.count("\n") == 1 and "UNAUTHENTICATED" in err, err
    token = secured.token("acme")
    code, out, err = await cli(
        capsys, monkeypatch, {"SYLLABUS_TOKEN": token}, "submit", "summarize", "--text", "hello", *addr
    )
    assert code == 0, err
    assert token not in out + err
    listed = await cli(capsys, monkeypatch, {"SYLLABUS_TOKEN": token}, "jobs", "--json", *addr)
    assert listed[0] == 0 and '"acme"' in listed[1]
    admin = {"SYLLABUS_TOKEN": secured.token("ops", "admin"), "SYLLABUS_ACT_AS": "acme"}
    as_acme = await cli(capsys, monkeypatch, admin, "jobs", "--json", *addr)
    assert as_acme[0] == 0 and '"acme"' in as_acme[1]


async def test_syllabus_keys_creates_lists_and_revokes_a_key(
    secured: Secured, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, nats_url: str
) -> None:
    env = {"SYLLABUS_NATS_URL": nats_url, "SYLLABUS_NAMESPACE": secured.pipeline.topology.namespace}
    code, out, err = await cli(capsys, monkeypatch, env, "keys", "create", "--tenant", "acme", "--name", "ci")
    assert code == 0, err
    presented = out.strip()
    assert presented.startswith("syl_") and "tenant acme, scopes read,write" in err
    code, out, _ = await cli(capsys, monkeypatch, env, "keys", "list", "--json")
    [listed] = [json.loads(line) for line in out.splitlines()]
    assert (
        listed["tenant"] == "acme"
        and listed["name"] == "ci"
        and presented.removeprefix("syl_").partition("_")[2] not in out
    )
    submitted: list[job_pb2.Job] = []

    async def submits(client: SyllabusClient) -> bool:
        try:
            job, _ = await client.submit(job_pb2.JobSpec(summarize_text=job_pb2.SummarizeText(text="hi")))
        except SyllabusError:
            return False  # the gateway's watch has not brought the key yet
        submitted.append(job)
        return True

    async with SyllabusClient.connect(secured.target, token=presented) as client:
        await eventually(lambda: submits(client))
    assert submitted[0].tenant == "acme"
    assert (await cli(capsys, monkeypatch, env, "keys", "revoke", listed["id"]))[0] == 0
    code, _, err = await cli(capsys, monkeypatch, env, "keys", "revoke", listed["id"])
    assert code == 1 and err == f"syllabus: no key has the id {listed['id']}\n"
    for bad in (["--tenant", "a.b"], ["--tenant", "acme", "--scopes", "read,root"]):
        code, _, err = await cli(capsys, monkeypatch, env, "keys", "create", *bad)
        assert code == 2 and err.count("\n") == 1, err


async def test_the_node_client_and_worker_send_their_token(
    secured: Secured, start_worker: StartWorker, node_client: Path
) -> None:
    await start_worker()
    script = """
const { SyllabusClient } = require('./client');
(async () => {
  const client = new SyllabusClient(process.argv[1], { token: process.argv[2] });
  const { job } = await client.submitJob({ spec: { summarizeText: { text: 'ok' } } });
  const events = await client.watchJob(job.id);
  console.log(JSON.stringify({ tenant: job.tenant, last: events[events.length - 1].type }));
  const refused = new SyllabusClient(process.argv[1]);
  try { await refused.getJob(job.id); } catch (error) { console.log(error.code); }
})().catch((error) => { console.error(String(error)); process.exit(1); });
"""
    code, out, err = await run_node(node_client, "-e", script, secured.target, secured.token("node-tenant"))
    assert code == 0, err
    first, second = out.splitlines()
    assert json.loads(first) == {"tenant": "node-tenant", "last": "JOB_EVENT_TYPE_SUCCEEDED"}
    assert second == "16"  # UNAUTHENTICATED
