"""docker-compose.yml and .env.example, checked without a Docker engine: the file is valid under the Compose
Specification's schema; every service command is a real `syllabus` command; every SYLLABUS_* variable named is one
the code reads, and each service's environment (the image's, .env.example's, its own) builds every configuration
without a ConfigError; the NATS cluster's configuration parses and syncs always, and its size is the stream
replicas; MongoDB is the replica set rs0; the profiles split the services as the hosts run them."""

from __future__ import annotations

import functools
import inspect
import re
import subprocess
import sysconfig
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import yaml
from dotenv import dotenv_values

from gateway.auth.listening import refuse_open_listening
from onemachine.servers import nats_server_binary
from syllabus import config
from syllabus.config import AuthConfig, GatewayConfig
from syllabus.topology import WORKER_SERVICES
from tests.deploy.dockerfile import ROOT, assert_syllabus_command, image_env

COMPOSE = ROOT / "docker-compose.yml"
ENV_EXAMPLE = ROOT / ".env.example"
SCRIPTS = Path(sysconfig.get_path("scripts"))
VARIABLE = re.compile(r"\bSYLLABUS_[A-Z0-9_]+")
# Compose's interpolation: ${NAME}, ${NAME:-default}, and $$ for a literal $.
INTERPOLATION = re.compile(r"\$\$|\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?\}")
# The deployment's shared names: which profile (so which host) runs each service, and how many of it.
PROFILES = {
    "nats-1": "broker",
    "nats-2": "broker",
    "nats-3": "broker",
    "mongo": "store",
    "redis": "store",
    "gateway": "api",
    "generator": "workers",
    "renderer": "workers",
    "scheduler": "workers",
}
REPLICAS = {"generator": 3, "scheduler": 2}
# The task pools' settings (SYLLABUS_WORKER_*), beside the worker services'.
WORKER_PREFIXES = (*WORKER_SERVICES, "worker")


@functools.cache
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return loaded


def services() -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = compose()["services"]
    return found


def dotenv() -> dict[str, str]:
    """.env.example as Compose reads a .env: the values for interpolation and for every env_file."""
    return {name: value or "" for name, value in dotenv_values(ENV_EXAMPLE).items()}


def interpolated(value: str) -> str:
    def substitute(match: re.Match[str]) -> str:
        if match[0] == "$$":
            return "$"
        return dotenv().get(match["name"]) or match["default"] or ""

    return INTERPOLATION.sub(substitute, value)


def syllabus_services() -> dict[str, dict[str, Any]]:
    """The services that run the Syllabus image (the x-syllabus extension's)."""
    image = compose()["x-syllabus"]["image"]
    return {name: service for name, service in services().items() if service.get("image") == image}


def servers(image: str) -> list[str]:
    return sorted(name for name, service in services().items() if service.get("image", "").startswith(image + ":"))


def service_env(service: dict[str, Any]) -> dict[str, str]:
    """What the container's process sees: the image's ENV, then the env_file, then the service's environment."""
    env = dict(image_env())
    env_files = service.get("env_file", [])
    for env_file in [env_files] if isinstance(env_files, str) else env_files:
        assert env_file == ".env", f"env_file {env_file}: the tests read .env.example as .env"
        env.update(dotenv())
    env.update({name: interpolated(str(value)) for name, value in service.get("environment", {}).items()})
    return env


def loaders() -> Iterator[tuple[str, Callable[[Mapping[str, str]], object]]]:
    """Every configuration syllabus/config.py builds from the environment, a worker's once per service."""
    for name, cls in inspect.getmembers(config, inspect.isclass):
        from_env = getattr(cls, "from_env", None)
        if cls.__module__ != config.__name__ or from_env is None:
            continue
        if "service" in inspect.signature(from_env).parameters:
            for service in WORKER_PREFIXES:
                yield f"{name}({service})", functools.partial(from_env, service)
        else:
            yield name, from_env


class Lookups(Mapping[str, str]):
    """An empty environment that remembers every name looked up in it."""

    def __init__(self) -> None:
        self.names: set[str] = set()

    def __getitem__(self, name: str) -> str:
        self.names.add(name)
        raise KeyError(name)

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0


def variables_the_code_reads() -> set[str]:
    env = Lookups()
    for _, load in loaders():
        load(env)
    return env.names


def test_compose_file_is_valid_under_the_compose_specification() -> None:
    checker = SCRIPTS / "check-jsonschema"
    assert checker.is_file(), f"{checker} is missing: pip install the dev extra (check-jsonschema)"
    checked = subprocess.run(
        [checker, "--builtin-schema", "vendor.compose-spec", COMPOSE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_profiles_split_the_services_as_the_hosts_run_them() -> None:
    assert {name: service.get("profiles") for name, service in services().items()} == {
        name: [profile] for name, profile in PROFILES.items()
    }
    for name, service in services().items():
        assert service.get("deploy", {}).get("replicas", 1) == REPLICAS.get(name, 1), name
        assert service["restart"] == "unless-stopped", name


def test_service_commands_and_health_checks_are_syllabus_commands() -> None:
    image = {interpolated(service["image"]) for service in syllabus_services().values()}
    assert image == {"syllabus:latest"}
    for name, service in syllabus_services().items():
        for argv in (service["command"], service["healthcheck"]["test"][2:]):
            assert_syllabus_command(argv, name)
        assert service["healthcheck"]["test"][:3] == ["CMD", "syllabus", "probe"], name


def test_syllabus_services_wait_for_the_servers_of_other_profiles_only_where_they_run() -> None:
    needed = {*servers("nats"), *servers("mongo"), *servers("valkey/valkey")}
    for name, service in syllabus_services().items():
        depends = service["depends_on"]
        assert set(depends) == needed, name
        for server, how in depends.items():
            assert how["condition"] == "service_healthy", f"{name} -> {server}"
            # Another profile may be on another host: not required, so `--profile api` alone still starts.
            assert how["required"] is (PROFILES[server] == PROFILES[name]), f"{name} -> {server}"


def test_every_syllabus_variable_named_is_one_the_code_reads() -> None:
    known = variables_the_code_reads()
    assert "SYLLABUS_GENERATOR_CONCURRENCY" in known and "SYLLABUS_NATS_URL" in known
    for path in (COMPOSE, ENV_EXAMPLE):
        named = set(VARIABLE.findall(path.read_text()))
        assert not named - known, f"{path.name} names variables no code reads: {sorted(named - known)}"


@pytest.mark.parametrize("name", sorted(syllabus_services()))
def test_each_service_configures_without_error(name: str) -> None:
    env = service_env(services()[name])
    for _, load in loaders():
        load(env)
    if name == "gateway":
        gateway = GatewayConfig.from_env(env)
        addresses = (("SYLLABUS_GRPC_ADDR", gateway.grpc_addr), ("SYLLABUS_HTTP_ADDR", gateway.http_addr))
        refuse_open_listening(AuthConfig.from_env(env), addresses)
        published = {port.rpartition(":")[2] for port in services()[name]["ports"]}
        assert published == {address.rpartition(":")[2] for _, address in addresses}


def test_the_defaults_are_a_replicated_cluster_and_an_offline_model() -> None:
    env = dotenv()
    nats_urls = [urlparse(url) for url in env["SYLLABUS_NATS_URL"].split(",")]
    assert sorted(url.hostname or "" for url in nats_urls) == servers("nats")
    assert {url.port for url in nats_urls} == {4222}
    assert int(env["SYLLABUS_STREAM_REPLICAS"]) == len(servers("nats")) == 3
    mongo = urlparse(env["SYLLABUS_MONGO_URL"])
    assert [mongo.hostname] == servers("mongo") and parse_qs(mongo.query)["replicaSet"] == ["rs0"]
    assert [urlparse(env["SYLLABUS_REDIS_URL"]).hostname] == servers("valkey/valkey")
    assert env["SYLLABUS_LLM_PROVIDER"] == "offline"
    secrets = [name for name in env if name in config.SECRET_VARIABLES or name.endswith(config.SECRET_SUFFIXES)]
    assert secrets and all(env[name] == "" for name in secrets), "secrets are left empty"


def test_mongo_is_the_replica_set_rs0_and_initiates_it_once() -> None:
    (name,) = servers("mongo")
    mongo = services()[name]
    assert mongo["command"][mongo["command"].index("--replSet") + 1] == "rs0"
    script = interpolated(mongo["healthcheck"]["test"][-1])
    assert mongo["healthcheck"]["test"][:2] == ["CMD", "mongosh"]
    # Initiated only when rs.status() fails (no set yet), with the member address the clients are given.
    assert re.search(r'try \{ rs\.status\(\) \} catch \(e\) \{\s*rs\.initiate\(\{_id: "rs0"', script), script
    assert f'host: "{urlparse(dotenv()["SYLLABUS_MONGO_URL"]).netloc}"' in script, script


def test_nats_configuration_parses_and_makes_a_cluster_that_syncs_always() -> None:
    nats = servers("nats")
    for name in nats:
        service = services()[name]
        mounts = {target: source for source, target, *_ in (volume.split(":") for volume in service["volumes"])}
        assert service["command"][0] == "--config"
        conf = ROOT / mounts[service["command"][1]]
        text = conf.read_text()
        env = {"NATS_SERVER_NAME": service["environment"]["NATS_SERVER_NAME"], "PATH": "/usr/bin:/bin"}
        assert env["NATS_SERVER_NAME"] == name
        tested = subprocess.run(
            [nats_server_binary(), "-t", "-c", conf], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert tested.returncode == 0, tested.stdout + tested.stderr
        assert re.search(r"jetstream\s*\{[^}]*\bsync_interval:\s*always\b", text), f"{conf}: sync_interval always"
        store = re.search(r"jetstream\s*\{[^}]*\bstore_dir:\s*(\S+)", text)
        assert store and store[1] in mounts, f"{conf}: the JetStream store is not on a volume"
        assert mounts[store[1]] in compose()["volumes"], f"{name}: {mounts[store[1]]} is not a named volume"
        assert sorted(re.findall(r"nats-route://([\w-]+):6222", text)) == nats
        assert re.search(r"^port:\s*4222$", text, re.MULTILINE) and re.search(r"^http_port:\s*8222$", text, re.M)
        assert service["healthcheck"]["test"][-1] == "http://127.0.0.1:8222/healthz?js-enabled-only=true"


def test_nats_image_is_the_server_version_the_tests_run() -> None:
    version = subprocess.run(
        [nats_server_binary(), "--version"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    match = re.search(r"v(\d+\.\d+)\.", version)
    assert match, version
    images = {services()[name]["image"] for name in servers("nats")}
    assert images == {f"nats:{match[1]}-alpine"}, "the Alpine image: its busybox wget runs the health check"


def test_server_data_is_on_named_volumes() -> None:
    declared = set(compose()["volumes"])
    used = set()
    for name in servers("nats") + servers("mongo") + servers("valkey/valkey"):
        named = [volume.split(":")[0] for volume in services()[name]["volumes"] if not volume.startswith(".")]
        assert named, f"{name} keeps its data in the container"
        used |= set(named)
    assert used == declared
