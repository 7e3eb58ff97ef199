"""A pytest plugin for mutation runs only (`-p tests.mutation_order` in [tool.mutmut]): the tests a mutant is run
against go fastest first, by the durations mutmut recorded, so a mutant a unit test kills is not first run
through the slow pipeline tests (mutmut stops at the first failure). Outside a mutation run it does nothing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

STATS = Path("mutmut-stats.json")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if not STATS.exists():
        return
    durations: dict[str, float] = json.loads(STATS.read_text())["duration_by_test"]
    # Unknown tests last: mutmut did not associate them with this mutant's code in the first place.
    items.sort(key=lambda item: durations.get(item.nodeid, float("inf")))
