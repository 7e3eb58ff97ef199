"""The run command leaves what its banner suggests usable: `buf curl` needs buf, which it installs."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

from onemachine.stack import buf_command

ROOT = Path(__file__).resolve().parents[1]


def test_the_run_command_installs_the_extra_that_holds_buf() -> None:
    script = (ROOT / "scripts" / "run").read_text()
    installed = re.findall(r'pip install [^\n]*-e "?\.\[(\w+)\]"?', script)
    assert installed, "scripts/run installs syllabus without extras"
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(requirement.startswith("buf-bin") for extra in installed for requirement in extras[extra])


def test_the_banner_names_a_buf_that_runs() -> None:
    version = subprocess.run([buf_command(), "--version"], capture_output=True, text=True, cwd=ROOT, check=True)
    assert re.fullmatch(r"\d+\.\d+\.\d+\s*", version.stdout)
