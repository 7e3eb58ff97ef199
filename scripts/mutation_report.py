"""The report of the last mutation run (scripts/mutate): the score per module and every unexplained survivor.

A survivor is a mutant the tests let pass. Each is either killed by a better test or listed, with the reason
it cannot be told apart from the original, in scripts/mutation_equivalents.toml. Exit status 1 while any
survivor is unexplained. Reads mutmut's results in mutants/ (one .meta file per mutated module).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EQUIVALENTS = ROOT / "scripts" / "mutation_equivalents.toml"
KILLED = {1, 3}
# mypy (strict, as CI runs it) refused the mutant: it could not land, so it was not run (scripts/mutation_typecheck.py).
TYPE_REFUSED = 37
# SIGXCPU from mutmut's CPU limit, or SIGKILL (-9) when the tests ignored it (a mutant spinning in a loop).
TIMEOUTS = {-9, -24, 24, 36, 152, 255}
# Mutants in code no selected test runs, or not run yet: both count against the module.
NO_TESTS = {5, 33}


def verdict(exit_code: int | None) -> str:
    if exit_code is None:
        return "not checked"
    if exit_code in KILLED:
        return "killed"
    if exit_code == TYPE_REFUSED:
        return "mypy"
    if exit_code in TIMEOUTS:
        # The mutant made the tests hang past their deadline: the tests noticed, it is caught.
        return "timeout"
    if exit_code in NO_TESTS:
        return "no tests"
    if exit_code == 0:
        return "survived"
    return "suspicious"


def results(prefixes: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for meta in sorted((ROOT / "mutants").rglob("*.py.meta")):
        for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
            if not prefixes or any(_within(name, prefix) for prefix in prefixes):
                found[name] = verdict(code)
    return found


def module_of(mutant: str) -> str:
    return mutant.rsplit(".", 1)[0]


def show(mutant: str) -> str:
    diff = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "mutmut"), "show", mutant], cwd=ROOT, capture_output=True, text=True
    ).stdout
    changed = [line for line in diff.splitlines() if line.startswith(("+ ", "- ", "+\t", "-\t"))]
    return "\n".join(f"      {line}" for line in changed[:4])


def _within(name: str, prefix: str) -> bool:
    """Whether a mutant is the one named, or one of a module's or a function's named by its prefix."""
    return name == prefix or name.startswith((prefix + ".", prefix + "__mutmut_"))


def main() -> int:
    prefixes = [arg for arg in sys.argv[1:] if not arg.startswith("-")]
    found = results(prefixes)
    if not found:
        print("no mutation results yet: run ./scripts/mutate")
        return 1
    equivalent: dict[str, str] = tomllib.loads(EQUIVALENTS.read_text()).get("equivalent", {})
    by_module: dict[str, Counter[str]] = {}
    for mutant, status in found.items():
        if status == "survived" and mutant in equivalent:
            status = "equivalent"
        by_module.setdefault(module_of(mutant), Counter())[status] += 1
    print(
        f"{'module':<28} {'mutants':>7} {'mypy':>7} {'killed':>7} {'timeout':>7} {'equiv.':>7} {'left':>8} {'score':>6}"
    )
    for module, counts in sorted(by_module.items()):
        total = sum(counts.values())
        caught = counts["mypy"] + counts["killed"] + counts["timeout"] + counts["equivalent"]
        left = total - caught
        print(
            f"{module:<28} {total:>7} {counts['mypy']:>7} {counts['killed']:>7} {counts['timeout']:>7} "
            f"{counts['equivalent']:>7} "
            f"{left:>8} {caught / total:>6.1%}"
        )
    unexplained = [m for m, s in found.items() if s in {"survived", "no tests", "suspicious"} and m not in equivalent]
    unchecked = [m for m, s in found.items() if s == "not checked"]
    if unchecked:
        print(f"\n{len(unchecked)} mutants not checked yet: ./scripts/mutate resumes")
    if unexplained:
        where = EQUIVALENTS.name
        print(f"\n{len(unexplained)} unexplained survivors (kill each with a test, or explain it in {where}):")
        for mutant in unexplained:
            print(f"  {mutant} ({found[mutant]})\n{show(mutant)}")
        return 1
    return 1 if unchecked else 0


if __name__ == "__main__":
    sys.exit(main())
