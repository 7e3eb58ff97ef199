""".github/workflows: actionlint finds nothing (with shellcheck on the `run:` scripts where it is installed), and the
workflow agrees with what it runs: the README's test command, the variables the tests and the bench read, the
replica set its script starts, the compose profiles and image variable of docker-compose.yml."""

from __future__ import annotations

import re
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymongo.uri_parser import parse_uri

from tests.store.conftest import MONGO_URL_VARIABLE

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
CI = ROOT / ".github" / "workflows" / "ci.yml"
MONGO_SCRIPT = ROOT / ".github" / "scripts" / "mongo-replica-set"
COMPOSE = ROOT / "docker-compose.yml"
ACTIONLINT = Path(sysconfig.get_path("scripts")) / "actionlint"


def workflow() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(CI.read_text())
    return loaded


def job(name: str) -> dict[str, Any]:
    found: dict[str, Any] = workflow()["jobs"][name]
    return found


def runs(name: str) -> list[str]:
    return [step["run"].strip() for step in job(name)["steps"] if "run" in step]


def test_actionlint_finds_nothing() -> None:
    assert WORKFLOWS, "no workflow in .github/workflows"
    result = subprocess.run(
        [str(ACTIONLINT), "-no-color", "-verbose", *map(str, WORKFLOWS)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, ""), result.stdout + result.stderr
    if shutil.which("shellcheck"):
        # actionlint quietly leaves out a linter it cannot start: make sure the scripts were checked.
        assert 'Rule "shellcheck" was disabled' not in result.stderr, result.stderr


def test_shellcheck_finds_nothing_in_the_workflow_scripts() -> None:
    if not shutil.which("shellcheck"):
        pytest.skip("shellcheck is not installed (Debian's package `shellcheck`)")
    scripts = sorted((ROOT / ".github" / "scripts").iterdir())
    result = subprocess.run(["shellcheck", *map(str, scripts)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_test_job_runs_the_readme_test_command() -> None:
    testing = (ROOT / "README.md").read_text().split("\n## Testing\n", 1)[1]
    match = re.search(r"^`([^`]+)` is the one test command", testing, re.MULTILINE)
    assert match, "README's Testing section no longer names the test command"
    assert runs("test").count(match.group(1)) == 1, runs("test")


def test_the_mongo_urls_are_the_variables_read_and_the_replica_set_started() -> None:
    script = MONGO_SCRIPT.read_text()
    assert "--publish 127.0.0.1:27017:27017" in script
    # The bench takes its MongoDB from the variable the services read, and takes it out of their environment.
    assert '"SYLLABUS_MONGO_URL"' in (ROOT / "bench" / "processes.py").read_text()
    for name, variable in (("test", MONGO_URL_VARIABLE), ("bench", "SYLLABUS_MONGO_URL")):
        assert ".github/scripts/mongo-replica-set" in runs(name), f"job {name} starts no MongoDB"
        uri = parse_uri(job(name)["env"][variable])
        assert uri["nodelist"] == [("127.0.0.1", 27017)]
        assert f"--replSet {uri['options']['replicaSet']} " in script


def test_actions_are_pinned_by_commit_with_their_version() -> None:
    for path in WORKFLOWS:
        uses = re.findall(r"^\s*(?:-\s+)?uses:\s*(.+)$", path.read_text(), re.MULTILINE)
        assert uses, path
        for line in uses:
            assert re.fullmatch(r"[\w.-]+/[\w./-]+@[0-9a-f]{40} # v\d+(\.\d+)*", line.strip()), line


def test_jobs_are_bounded_and_read_only() -> None:
    loaded = workflow()
    assert loaded["permissions"] == {"contents": "read"}
    assert loaded["concurrency"]["cancel-in-progress"] is True
    for name, spec in loaded["jobs"].items():
        assert isinstance(spec.get("timeout-minutes"), int), f"job {name} has no timeout"
        assert "permissions" not in spec, f"job {name} asks for more than the workflow's"
    breaking = job("breaking")
    assert breaking["if"] == "github.event_name == 'pull_request'"
    assert breaking["steps"][0]["with"]["fetch-depth"] == 0


def test_the_image_job_runs_docker_compose_ymls_profiles_and_image() -> None:
    if not COMPOSE.exists():
        pytest.skip("no docker-compose.yml yet")
    env = job("image")["env"]
    compose: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    services: dict[str, Any] = compose["services"]
    declared = {profile for service in services.values() for profile in service.get("profiles", [])}
    wanted = set(env["COMPOSE_PROFILES"].split(","))
    assert wanted <= declared, f"profiles the image job starts but docker-compose.yml lacks: {wanted - declared}"
    # The image the job builds is the one compose runs, and compose gets the configuration a user starts from.
    assert "${IMAGE" in COMPOSE.read_text()
    assert any('"$IMAGE"' in run for run in runs("image"))
    # .env.example turns authentication on: the job's calls carry a key made with the CLI, as the README says.
    assert any("keys create" in run and '-H "$auth"' in run for run in runs("image"))
    assert "cp .env.example .env" in runs("image") and (ROOT / ".env.example").is_file()
    # The job asks compose where the gateway's REST port is published.
    ports = [str(port.get("target")) if isinstance(port, dict) else str(port) for port in services["gateway"]["ports"]]
    assert any(port.split("/")[0].rsplit(":", 1)[-1] == "8080" for port in ports), ports
