"""Writes deploy/grafana/syllabus-dashboard.json, the Grafana dashboard of Syllabus's metrics, built with the
grafana-foundation-sdk (its builders make a dashboard Grafana's schema accepts). `--check` only says whether the
file is what this script would write (the tests run it so).

    .venv/bin/python scripts/grafana_dashboard.py
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from grafana_foundation_sdk.builders import dashboard, prometheus, stat, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.dashboard import DataSourceRef

OUTPUT = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "syllabus-dashboard.json"
DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
# One range for every rate: four scrapes at Prometheus's default 15 s interval.
RATE = "5m"


def query(expr: str, legend: str, ref: str = "A") -> prometheus.Dataquery:
    return prometheus.Dataquery().expr(expr).legend_format(legend).ref_id(ref)


def graph(title: str, unit: str, *queries: prometheus.Dataquery, description: str = "") -> timeseries.Panel:
    panel = timeseries.Panel().title(title).unit(unit).datasource(DATASOURCE).height(8).span(12)
    if description:
        panel = panel.description(description)
    for item in queries:
        panel = panel.with_target(item)
    return panel


# Title, unit, PromQL expressions with their legends, description.
PANELS: list[tuple[str, str, list[tuple[str, str]], str]] = [
    (
        "Throughput",
        "ops",
        [
            (f"sum by (kind) (rate(syllabus_jobs_succeeded_total[{RATE}]))", "{{kind}} succeeded"),
            (f"sum by (kind) (rate(syllabus_jobs_failed_total[{RATE}]))", "{{kind}} failed attempts"),
            (f"sum by (kind) (rate(syllabus_jobs_submitted_total[{RATE}]))", "{{kind}} submitted"),
        ],
        "Jobs per second: submitted at the gateway, succeeded, and attempts that failed (retried or not).",
    ),
    (
        "Queue depth",
        "short",
        [
            ('sum by (queue) (syllabus_queue_jobs{state="waiting"})', "{{queue}} waiting"),
            ('sum by (queue) (syllabus_queue_jobs{state="running"})', "{{queue}} running"),
            ('sum by (queue) (syllabus_queue_jobs{state="retrying"})', "{{queue}} retrying"),
        ],
        "Jobs of every tenant per queue, as the gateway counts them.",
    ),
    (
        "Oldest waiting job",
        "s",
        [("max by (queue) (syllabus_queue_oldest_waiting_seconds)", "{{queue}}")],
        "How long the oldest job waiting for a worker has waited.",
    ),
    (
        "Attempt duration p50 / p99",
        "s",
        [
            (
                f"histogram_quantile(0.5, sum by (le, kind) (rate(syllabus_attempt_duration_seconds_bucket[{RATE}])))",
                "{{kind}} p50",
            ),
            (
                f"histogram_quantile(0.99, sum by (le, kind) (rate(syllabus_attempt_duration_seconds_bucket[{RATE}])))",
                "{{kind}} p99",
            ),
        ],
        "",
    ),
    (
        "Queue wait p50 / p99",
        "s",
        [
            (
                f"histogram_quantile(0.5, sum by (le, kind) (rate(syllabus_queue_wait_seconds_bucket[{RATE}])))",
                "{{kind}} p50",
            ),
            (
                f"histogram_quantile(0.99, sum by (le, kind) (rate(syllabus_queue_wait_seconds_bucket[{RATE}])))",
                "{{kind}} p99",
            ),
        ],
        "From a job's submission (or run_at) to the start of its first attempt.",
    ),
    (
        "Dead letters",
        "short",
        [(f"sum by (kind) (increase(syllabus_jobs_dead_lettered_total[{RATE}]))", "{{kind}}")],
        f"Jobs that failed for good in the last {RATE}.",
    ),
    (
        "Workers",
        "short",
        [
            ("max by (queue) (syllabus_workers)", "{{queue}}"),
            ("max by (queue) (syllabus_queue_paused)", "{{queue}} paused"),
        ],
        "Worker processes alive per queue, and whether the queue is paused (1).",
    ),
    (
        "gRPC latency p99",
        "s",
        [
            (
                "histogram_quantile(0.99, sum by (le, method) "
                f"(rate(syllabus_grpc_request_duration_seconds_bucket[{RATE}])))",
                "{{method}}",
            )
        ],
        "Unary gRPC methods of the gateway (REST calls reach them too).",
    ),
    (
        "gRPC errors",
        "reqps",
        [(f'sum by (method, code) (rate(syllabus_grpc_requests_total{{code!="OK"}}[{RATE}]))', "{{method}} {{code}}")],
        "",
    ),
    (
        "Model tokens",
        "short",
        [
            (
                f"sum by (provider, model, direction) (rate(syllabus_model_tokens_total[{RATE}]))",
                "{{provider}}/{{model}} {{direction}}",
            )
        ],
        "Tokens per second sent to and received from the models.",
    ),
    (
        "Model cost",
        "currencyUSD",
        [(f"sum by (provider, model) (increase(syllabus_model_cost_usd_total[{RATE}]))", "{{provider}}/{{model}}")],
        f"Estimated spend in the last {RATE} (list prices; the provider's bill is the truth).",
    ),
    (
        "Circuit breakers",
        "short",
        [("max by (provider) (syllabus_breaker_state)", "{{provider}}")],
        "0 closed, 1 half-open, 2 open, as the generators last saw them.",
    ),
]


def build() -> dict[str, object]:
    board = (
        dashboard.Dashboard("Syllabus")
        .uid("syllabus")
        .tags(["syllabus"])
        .refresh("30s")
        .time("now-6h", "now")
        .with_variable(dashboard.DatasourceVariable("datasource").label("Data source").type("prometheus"))
    )
    board = board.with_panel(
        stat.Panel()
        .title("Jobs waiting")
        .datasource(DATASOURCE)
        .height(4)
        .span(24)
        .with_target(query('sum(syllabus_queue_jobs{state="waiting"})', "waiting"))
    )
    for title, unit, queries, description in PANELS:
        board = board.with_panel(
            graph(
                title,
                unit,
                *(query(expr, legend, chr(ord("A") + i)) for i, (expr, legend) in enumerate(queries)),
                description=description,
            )
        )
    encoded: dict[str, object] = json.loads(json.dumps(board.build(), cls=JSONEncoder))
    return encoded


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is not what would be written")
    args = parser.parse_args()
    text = render()
    if args.check:
        if not OUTPUT.is_file() or OUTPUT.read_text() != text:
            print(f"{OUTPUT} is stale: run {Path(__file__).name} again", file=sys.stderr)
            return 1
        return 0
    OUTPUT.write_text(text)
    print(f"wrote {OUTPUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
