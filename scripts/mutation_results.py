"""The verdicts of the last mutation run, kept in the repository (scripts/mutation_results.json) so that a fresh
checkout reports them and a run resumes from them, as mutmut resumes from its own mutants/ directory.

    save      mutants/*.meta -> mutation_results.json (a mutant's verdict and its function's hash)
    restore   mutation_results.json -> mutants/*.meta, for files mutmut has no results of yet

mutmut keeps a verdict while the mutated function's hash is unchanged, so verdicts of code changed since are
dropped by mutmut itself when it generates the mutants again.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "scripts" / "mutation_results.json"
MUTANTS = ROOT / "mutants"
NO_TESTS = 33


def _kept(code: int | None) -> int | None:
    # "No test runs this code" says more about mutmut's test statistics, which a fresh checkout collects again,
    # than about the tests: such a mutant is left without a verdict, to run once its tests are known.
    return None if code == NO_TESTS else code


def save() -> None:
    kept: dict[str, Any] = {}
    for meta in sorted(MUTANTS.rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        kept[str(meta.relative_to(MUTANTS))] = {
            "exit_code_by_key": {name: _kept(code) for name, code in data["exit_code_by_key"].items()},
            "hash_by_function_name": data["hash_by_function_name"],
        }
    RESULTS.write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n")


def restore() -> None:
    if not RESULTS.exists():
        return
    for name, data in json.loads(RESULTS.read_text()).items():
        meta = MUTANTS / name
        if meta.exists():
            continue
        meta.parent.mkdir(parents=True, exist_ok=True)
        # The fields mutmut's meta file must hold; timings are only estimates, measured again by the next run.
        empty: dict[str, Any] = {
            "type_check_error_by_key": {},
            "durations_by_key": {},
            "estimated_durations_by_key": {},
        }
        meta.write_text(json.dumps({**data, **empty}))


def main() -> int:
    command = sys.argv[1] if len(sys.argv) == 2 else ""
    if command == "save":
        save()
    elif command == "restore":
        restore()
    else:
        print("usage: mutation_results.py save|restore", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
