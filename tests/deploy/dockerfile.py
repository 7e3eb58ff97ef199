"""The root Dockerfile as the deployment tests read it: its stages and instructions (parsed by dockerfile-parse),
the environment its image gives every container, and whether a command line is one the `syllabus` CLI takes."""

from __future__ import annotations

import contextlib
import io
import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from dockerfile_parse import DockerfileParser

from cli.main import build_parser

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"


@dataclass(frozen=True)
class Instruction:
    name: str
    value: str
    line: int


@dataclass
class Stage:
    image: str
    name: str = ""
    instructions: list[Instruction] = field(default_factory=list)

    def values(self, name: str) -> list[str]:
        return [instruction.value for instruction in self.instructions if instruction.name == name]


@cache
def parsed() -> DockerfileParser:
    return DockerfileParser(path=str(DOCKERFILE))


def stages() -> list[Stage]:
    found: list[Stage] = []
    for entry in parsed().structure:
        name, value = entry["instruction"], entry["value"]
        if name == "FROM":
            image, _, alias = value.partition(" AS ")
            found.append(Stage(image.strip(), alias.strip()))
        elif name != "COMMENT":
            assert found, f"line {entry['startline'] + 1}: {name} before any FROM"
            found[-1].instructions.append(Instruction(name, value, entry["startline"] + 1))
    return found


def image_env() -> dict[str, str]:
    """The ENV of the final stage: what every container of the image starts with."""
    return dict(parsed().envs)


def run_words(command: str) -> list[str]:
    """A RUN's shell command as words, `&&` and `;` among them."""
    return shlex.split(command.replace(";", " ; "), posix=True)


def assert_syllabus_command(argv: Sequence[str], where: str) -> None:
    """`syllabus ARGV...` is a command line the CLI's own parser accepts; else what argparse says about it."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            build_parser().parse_args(list(argv))
    except SystemExit:
        raise AssertionError(f"{where}: syllabus {' '.join(argv)}: {stderr.getvalue().strip()}") from None
