"""scripts/breakages.py can only prove a guarantee while each breakage still applies: its code to break must stand
in the runtime exactly once, or the breakage would stop with an error (or break nothing) after a refactor."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("breakages", ROOT / "scripts" / "breakages.py")
assert _spec is not None and _spec.loader is not None
breakages = importlib.util.module_from_spec(_spec)
# Registered first: its dataclasses look their module up while they are made.
sys.modules["breakages"] = breakages
_spec.loader.exec_module(breakages)


@pytest.mark.parametrize("breakage", breakages.BREAKAGES, ids=lambda b: b.name)
def test_each_breakage_still_applies_exactly_once(breakage: Any) -> None:
    code = (ROOT / breakage.path).read_text()
    assert code.count(breakage.old) == 1, f"{breakage.name}: update its code to break"
