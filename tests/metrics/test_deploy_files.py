"""deploy/: the alert rules and the scrape example pass promtool, the dashboard is the one its builder (the
grafana-foundation-sdk) writes, every PromQL expression parses, and every metric they use is one the code exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import REGISTRY

# Every module that declares metrics, so the registry holds them all.
from syllabus.metrics import models, requests, scheduler, workers  # noqa: F401
from syllabus.metrics.queues import QueueGauges
from syllabus.v1 import admin_service_pb2 as pb

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DASHBOARD = DEPLOY / "grafana" / "syllabus-dashboard.json"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
SCRAPE = DEPLOY / "prometheus" / "prometheus.yml"
METRIC = re.compile(r"\bsyllabus_[a-z0-9_]+\b")
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_sum", "_count", "_created")}


def promtool(*argv: str | Path) -> subprocess.CompletedProcess[str]:
    assert shutil.which("promtool"), "promtool is not on PATH: install Debian's prometheus package (scripts/test does)"
    return subprocess.run(["promtool", *map(str, argv)], capture_output=True, text=True, timeout=60, check=False)


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in board["panels"] for target in panel.get("targets", [])]


def alert_exprs() -> list[str]:
    rules: dict[str, Any] = yaml.safe_load(ALERTS.read_text())
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


async def exported_names() -> set[str]:
    """Every sample name the code can export: the registry's families (with their type's suffixes) and the queue
    gauges of a gateway that has a queue."""

    async def one_queue() -> list[pb.QueueStats]:
        return [pb.QueueStats(queue="generator")]

    gauges = QueueGauges(one_queue)
    await gauges.refresh()
    names = set()
    for family in [*REGISTRY.collect(), *gauges.collect()]:
        suffixes = SUFFIXES.get(family.type, ("",))
        names |= {family.name + suffix for suffix in suffixes}
    return names


def test_alert_rules_pass_promtool() -> None:
    checked = promtool("check", "rules", ALERTS)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "4 rules found" in checked.stdout


def test_scrape_example_passes_promtool(tmp_path: Path) -> None:
    # The example's credentials file is the admin's token where Prometheus runs: here, a file of our own.
    token = tmp_path / "token"
    token.write_text("syl_example\n")
    (tmp_path / "alerts.yml").write_text(ALERTS.read_text())
    config = tmp_path / "prometheus.yml"
    config.write_text(SCRAPE.read_text().replace("/etc/prometheus/syllabus-admin-token", str(token)))
    checked = promtool("check", "config", config)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_dashboard_is_what_its_builder_writes() -> None:
    builder = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "grafana_dashboard.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert builder.returncode == 0, builder.stderr


def test_dashboard_expressions_are_valid_promql(tmp_path: Path) -> None:
    # promtool parses expressions given as recording rules.
    records = [{"record": f"syllabus_dashboard:expr_{i}", "expr": e} for i, e in enumerate(dashboard_exprs())]
    path = tmp_path / "dashboard.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": records}]}))
    checked = promtool("check", "rules", path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"{len(records)} rules found" in checked.stdout


@pytest.mark.parametrize("where", ["dashboard", "alerts"])
async def test_every_metric_used_is_exported(where: str) -> None:
    exprs = dashboard_exprs() if where == "dashboard" else alert_exprs()
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert len(used) >= (10 if where == "dashboard" else 4)
    assert used <= await exported_names(), used - await exported_names()
