"""Coverage per package from `coverage json`, and the floors the test command holds the suite to.

    python scripts/coverage_summary.py [--json PATH] [--floor ROW=PERCENT ...] [--skip-floors REASON]

The MongoDB store is its own row and counts towards no floor: its contract suite runs only against a
server (SYLLABUS_TEST_MONGO_URL), which a machine without one cannot give it. Percentages count lines and
branches together, as `coverage report` does. Exits 1 when a row is below its floor.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("syllabus", "cli", "onemachine", "gateway", "generator", "renderer", "scheduler")
MONGO = "syllabus/store/mongo*.py"
MONGO_ROW = "mongo store"
TOTAL_ROW = "total"
ROWS = (*PACKAGES, TOTAL_ROW, MONGO_ROW)
NOTE = f"syllabus and total leave out {MONGO} (the mongo store row): its contract suite needs SYLLABUS_TEST_MONGO_URL"


@dataclass
class Tally:
    statements: int = 0
    missed: int = 0
    branches: int = 0
    partial: int = 0
    covered: int = 0  # lines and branches run

    def add(self, summary: dict[str, Any]) -> None:
        self.statements += summary["num_statements"]
        self.missed += summary["missing_lines"]
        self.branches += summary.get("num_branches", 0)
        self.partial += summary.get("num_partial_branches", 0)
        self.covered += summary["covered_lines"] + summary.get("covered_branches", 0)

    @property
    def percent(self) -> float:
        measured = self.statements + self.branches
        return 100.0 * self.covered / measured if measured else 100.0


def row_of(path: str) -> str | None:
    if fnmatch(path, MONGO):
        return MONGO_ROW
    package = path.split("/", 1)[0]
    return package if package in PACKAGES else None


def tally(files: dict[str, Any]) -> dict[str, Tally]:
    rows = {name: Tally() for name in ROWS}
    for path, report in files.items():
        row = row_of(Path(path).as_posix())
        if row is None:
            continue
        rows[row].add(report["summary"])
        if row != MONGO_ROW:
            rows[TOTAL_ROW].add(report["summary"])
    return rows


def floor_text(tally: Tally, floor: float | None, checked: bool) -> str:
    if floor is None:
        return ""
    if not checked:
        return f"{floor:g}% not checked"
    return f"{floor:g}% " + ("ok" if tally.percent >= floor else "BELOW")


def table(rows: dict[str, Tally], floors: dict[str, float], checked: bool) -> list[str]:
    width = max(len(row) for row in ROWS)
    lines = [f"{'package':{width}}  {'stmts':>6} {'miss':>6} {'branch':>6} {'part':>5} {'cover':>6}  floor"]
    for row in ROWS:
        t = rows[row]
        lines.append(
            f"{row:{width}}  {t.statements:6} {t.missed:6} {t.branches:6} {t.partial:5} "
            f"{t.percent:5.1f}%  {floor_text(t, floors.get(row), checked)}".rstrip()
        )
    return [*lines, NOTE]


def below_floor(rows: dict[str, Tally], floors: dict[str, float]) -> list[str]:
    return [
        f"{row}: {rows[row].percent:.1f}% is below its floor of {floor:g}%"
        for row, floor in floors.items()
        if rows[row].percent < floor
    ]


def parse_floor(text: str) -> tuple[str, float]:
    row, _, percent = text.partition("=")
    if row not in ROWS or row == MONGO_ROW:
        raise argparse.ArgumentTypeError(f"no floor for {row!r}: one of {', '.join(r for r in ROWS if r != MONGO_ROW)}")
    try:
        return row, float(percent)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected ROW=PERCENT") from None


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, default=ROOT / ".coverage-data" / "coverage.json")
    parser.add_argument("--floor", type=parse_floor, action="append", default=[], metavar="ROW=PERCENT")
    parser.add_argument("--skip-floors", metavar="REASON", help="print the numbers, hold no row to a floor")
    args = parser.parse_args(argv)

    rows = tally(json.loads(args.json.read_text())["files"])
    floors = dict(args.floor)
    print("\n".join(table(rows, floors, checked=not args.skip_floors)))
    print("per file: .venv/bin/coverage report -m   HTML: .venv/bin/coverage html (.coverage-data/html/index.html)")
    if args.skip_floors:
        print(f"floors not checked: {args.skip_floors}")
        return 0
    failures = below_floor(rows, floors)
    for failure in failures:
        print(failure, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
