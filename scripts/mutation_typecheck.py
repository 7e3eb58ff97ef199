"""mypy for mutmut's type-check filter: run in mutants/, it prints mypy's JSON errors minus those that come from how
mutmut lays the mutants out rather than from a mutation (each mutant of a method is a method of its own, so an
attribute annotated in `__init__` is "already defined" in every mutant of it, and a method named like a builtin
shadows it in the others' signatures). A mutant mypy still refuses could not pass CI's mypy step: it is not run.

Usage (pyproject's [tool.mutmut] type_check_command; mutmut recognises the checker by the word "mypy"):
    python ../scripts/mutation_typecheck.py mypy <mypy arguments>
"""

from __future__ import annotations

import json
import subprocess
import sys

LAYOUT_ERRORS = ("already defined on line", "is not valid as a type")


def main(command: list[str]) -> int:
    mypy = subprocess.run([sys.executable, "-m", *command, "--output", "json"], capture_output=True, text=True)
    for line in mypy.stdout.splitlines():
        if line.strip() and not any(words in json.loads(line)["message"] for words in LAYOUT_ERRORS):
            print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
