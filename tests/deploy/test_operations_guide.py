"""docs/operations.md names only what exists: every SYLLABUS_* variable is one the code reads; every `syllabus ...`
command line (in a code block, or inline) is one the CLI's own parser takes, its options included; every metric is
one the code exports; every alert is a rule of deploy/prometheus/alerts.yml and every rule is in the guide; every
stream, bucket and consumer it names is one syllabus/topology.py makes, and it names all of them (its backup table);
its NATS configuration passes `nats-server -t`; its .env examples configure every component without error."""

from __future__ import annotations

import argparse
import re
import shlex
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from cli.main import build_parser
from onemachine.servers import nats_server_binary
from syllabus.topology import PRIORITIES, WORKER_SERVICES, Topology
from tests.deploy.dockerfile import ROOT, assert_syllabus_command, image_env
from tests.deploy.test_compose import COMPOSE, ENV_EXAMPLE, loaders, variables_the_code_reads
from tests.metrics.test_deploy_files import ALERTS, exported_names

GUIDE = ROOT / "docs" / "operations.md"
FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```$", re.MULTILINE | re.DOTALL)
# Outside code blocks backticks pair up; an inline span may wrap onto the next line.
SPAN = re.compile(r"`([^`]+)`")
# SYLLABUS_<SERVICE>_X stands for the variable of each worker service and of the task pools.
VARIABLE = re.compile(r"\bSYLLABUS_(?:<SERVICE>_)?[A-Z0-9_]*[A-Z0-9]")
METRIC = re.compile(r"\b(?:syllabus|process)_[a-z0-9_]+\b")
ALERT = re.compile(r"\bSyllabus[A-Z][A-Za-z]+\b")
STORED = re.compile(r"\b(?:KV|OBJ)_[A-Za-z0-9_]+\b")
CONSUMER = re.compile(r"\b(?:" + "|".join(WORKER_SERVICES) + r")-[a-z]+\b")
NATS_STREAM_COMMAND = re.compile(r"\bnats stream (?:info|backup|edit|cluster step-down) ([A-Za-z0-9_]+)")
# Where a shell line starts another command.
SEPARATOR = re.compile(r"&&|\|\||[;|&]|\$\(")
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
SERVICE_PREFIXES = ("GENERATOR", "RENDERER", "WORKER")
# The word syllabus as a program (`syllabus`, `.venv/bin/syllabus`), not in a path or a name.
PROGRAM = re.compile(r"(?:^|[\s/])syllabus(?=\s|$)")


@dataclass(frozen=True)
class Command:
    where: str
    argv: list[str]
    # A code block's line is run as written; an inline mention may leave out what the command requires.
    complete: bool


@cache
def guide() -> str:
    return GUIDE.read_text()


def blocks() -> list[tuple[str, str]]:
    """The fenced code blocks: (info string, body)."""
    return [(match["info"].strip(), match["body"]) for match in FENCE.finditer(guide())]


def prose() -> str:
    return FENCE.sub("", guide())


def block_lines() -> Iterator[str]:
    for _, body in blocks():
        yield from body.replace("\\\n", " ").splitlines()


def syllabus_argv(words: list[str]) -> list[str] | None:
    """The arguments of the `syllabus` command these words run, or None when they run another."""
    words = words[1:] if words[:1] == ["$"] else words
    while words and ASSIGNMENT.match(words[0]):
        words = words[1:]
    if words and (words[0] == "syllabus" or words[0].endswith("/syllabus")):
        return words[1:]
    if "--" in words and words[words.index("--") + 1 : words.index("--") + 2] == ["syllabus"]:
        return words[words.index("--") + 2 :]
    if words[:3] == ["docker", "compose", "exec"] and words[4:5] == ["syllabus"]:
        return words[5:]
    return None


def commands() -> list[Command]:
    found = []
    spans = [span.replace("\n", " ") for span in SPAN.findall(prose())]
    for complete, lines in ((True, list(block_lines())), (False, spans)):
        for line in lines:
            for piece in SEPARATOR.split(line):
                if not PROGRAM.search(piece):
                    continue
                try:
                    words = shlex.split(piece, comments=True)
                except ValueError as exc:
                    raise AssertionError(f"cannot read {line!r} as a shell command: {exc}") from None
                argv = syllabus_argv(words)
                if argv:
                    found.append(Command(line.strip(), argv, complete))
    return found


def subparsers_of(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            choices: dict[str, argparse.ArgumentParser] = action.choices
            return choices
    return {}


def assert_command_and_options(argv: list[str], where: str) -> None:
    """The words name a command (and sub-command) the CLI has, and each --option is one that command takes."""
    parser = build_parser()
    rest = list(argv)
    while (choices := subparsers_of(parser)) and rest and not rest[0].startswith("-"):
        assert rest[0] in choices, f"{where}: `{rest[0]}` is not a command here; there are {sorted(choices)}"
        parser = choices[rest.pop(0)]
    known = {option for action in parser._actions for option in action.option_strings}
    for word in rest:
        if word.startswith("--"):
            assert word.split("=", 1)[0] in known, f"{where}: {parser.prog} takes no {word}"


def test_every_variable_named_is_one_the_code_reads() -> None:
    known = variables_the_code_reads()
    named = set(VARIABLE.findall(guide()))
    assert "SYLLABUS_STREAM_REPLICAS" in named and "SYLLABUS_<SERVICE>_DRAIN_GRACE" in named
    expanded = set()
    for name in named:
        if "<SERVICE>" in name:
            expanded |= {name.replace("<SERVICE>", prefix) for prefix in SERVICE_PREFIXES}
        else:
            expanded.add(name)
    assert not expanded - known, f"the guide names variables no code reads: {sorted(expanded - known)}"


def test_every_command_line_is_one_the_cli_takes() -> None:
    found = commands()
    assert len([c for c in found if c.complete]) >= 10 and len([c for c in found if not c.complete]) >= 20
    for command in found:
        assert_command_and_options(command.argv, command.where)
        if command.complete:
            assert_syllabus_command(command.argv, command.where)


def test_the_command_reader_catches_what_the_cli_would_refuse() -> None:
    with_typo = syllabus_argv(shlex.split("SYLLABUS_NATS_URL=nats://a:4222 syllabus queue pause generator"))
    assert with_typo == ["queue", "pause", "generator"]
    for argv in (with_typo, ["stats", "--queues", "generator"], ["keys", "rotate"]):
        try:
            assert_command_and_options(argv, "example")
        except AssertionError:
            continue
        raise AssertionError(f"syllabus {' '.join(argv)} was taken")
    assert syllabus_argv(shlex.split("kubectl -n syllabus exec deploy/x -- syllabus probe")) == ["probe"]
    assert syllabus_argv(shlex.split("kubectl -n syllabus get scaledobject")) is None


async def test_every_metric_named_is_exported() -> None:
    named = set(METRIC.findall(guide()))
    assert {"syllabus_queue_oldest_waiting_seconds", "syllabus_breaker_state"} <= named
    exported = await exported_names()
    # A histogram is exported as its _bucket, _sum and _count series.
    named = {name for name in named if name + "_bucket" not in exported}
    assert not named - exported, f"the guide names metrics the code does not export: {sorted(named - exported)}"


def test_alerts_are_the_rules_and_every_rule_is_in_the_guide() -> None:
    rules: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    defined = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    named = set(ALERT.findall(guide()))
    assert named - defined == set(), f"the guide names alerts that are not rules: {sorted(named - defined)}"
    assert defined - named == set(), f"rules the guide does not say what to do about: {sorted(defined - named)}"


def test_streams_buckets_and_consumers_are_the_topologys_and_all_are_in_the_backup_table() -> None:
    topology = Topology()
    streams = {
        topology.jobs_stream,
        topology.events_stream,
        topology.scheduled_stream,
        topology.dlq_stream,
        topology.advisories_stream,
    }
    buckets = {
        f"KV_{name}"
        for name in (topology.tasks_bucket, topology.workers_bucket, topology.paused_bucket, topology.keys_bucket)
    }
    stored = streams | buckets | {f"OBJ_{topology.artifacts_bucket}"}
    backup_table = guide().split("### What holds what", 1)[1].split("###", 1)[0]
    for name in stored:
        assert f"`{name}`" in backup_table, f"{name} is missing from the guide's backup table"
    named = set(STORED.findall(guide())) | set(NATS_STREAM_COMMAND.findall(guide()))
    assert not named - stored, f"the guide names streams or buckets that do not exist: {sorted(named - stored)}"
    consumers = {topology.consumer(service, priority) for service in WORKER_SERVICES for priority in PRIORITIES}
    named_consumers = set(CONSUMER.findall(guide()))
    assert named_consumers and not named_consumers - consumers, sorted(named_consumers - consumers)


def test_nats_configuration_passes_nats_server_and_makes_the_replicas(tmp_path: Path) -> None:
    (conf,) = [body for _, body in blocks() if body.startswith("server_name:")]
    path = tmp_path / "nats-server.conf"
    path.write_text(conf)
    tested = subprocess.run(
        [nats_server_binary(), "-t", "-c", path], capture_output=True, text=True, timeout=60, check=False
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert re.search(r"jetstream\s*\{[^}]*\bsync_interval:\s*always\b", conf)
    routes = re.findall(r"nats-route://([\d.]+):6222", conf)
    for env in env_blocks():
        if "10.0.0.7" in env["SYLLABUS_NATS_URL"]:
            hosts = [url.split("//")[1].split(":")[0] for url in env["SYLLABUS_NATS_URL"].split(",")]
            assert hosts == routes and int(env["SYLLABUS_STREAM_REPLICAS"]) == len(routes) == 3


def env_blocks() -> list[dict[str, str]]:
    """The guide's .env examples: code blocks whose every line is NAME=value (a comment allowed after it)."""
    found = []
    for _, body in blocks():
        lines = [line.split("#", 1)[0].strip() for line in body.splitlines() if line.strip()]
        if lines and all(ASSIGNMENT.match(line) for line in lines):
            found.append(dict(line.split("=", 1) for line in lines))
    return found


def test_env_examples_configure_every_component_and_name_only_compose_settings() -> None:
    examples = env_blocks()
    assert len(examples) >= 2
    compose_settings = COMPOSE.read_text() + ENV_EXAMPLE.read_text()
    for example in examples:
        assert {"SYLLABUS_NATS_URL", "SYLLABUS_MONGO_URL", "SYLLABUS_STREAM_REPLICAS"} <= set(example)
        assert "replicaSet=rs0" in example["SYLLABUS_MONGO_URL"]
        for name in example:
            assert name.startswith("SYLLABUS_") or f"{name}=" in compose_settings, f"{name} is not a Compose setting"
        env = {**image_env(), **example}
        for _, load in loaders():
            load(env)
