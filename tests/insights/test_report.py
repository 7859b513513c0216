"""The HTML report: every chart present, rendered by headless Chromium without script errors."""

from __future__ import annotations

import datetime as dt
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from segengine.insights import build_insights
from segengine.insights.report import clv_histogram, default_report_path, render_report

from .conftest import D1, D2

CHARTS = (
    "segment-sizes",
    "segment-revenue",
    "rfmt-profile",
    "migration-heatmap",
    "clv-distribution",
    "value-tiers",
    "audience-sizes",
    "industry-trends",
    "audience-overlap",  # the world's audiences were refreshed on the report's date
)
# Figures this world has no data for (no scores, no support tickets, no churn risk): drawn as "no data" panels.
EMPTY_FIGURES = ("scoring-matrix", "support-volume", "churn-risk-distribution")


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def report_path(spark, config, two_snapshots, tmp_path):
    members = spark.createDataFrame([("A1", "a"), ("A1", "b"), ("A2", "p")], "audience_id string, persona_id string")
    registry = spark.createDataFrame([("A1", "Big <spenders>"), ("A2", "Leads")], "audience_id string, name string")
    two_snapshots.write(members, "audience_members", mode="overwrite")
    two_snapshots.write(registry, "audiences", mode="overwrite")
    ts = dt.datetime
    lines = spark.createDataFrame(
        [("o1", 1, "a", ts(2025, 5, 3), "P1", 2, 10.0), ("o2", 1, "b", ts(2025, 6, 3), "P1", 1, 30.0)],
        "order_id string, line_no int, persona_id string, order_ts timestamp, product_id string, quantity int, unit_price double",
    )
    two_snapshots.write(lines, "order_lines", mode="overwrite")
    personas = spark.createDataFrame([("a", "Retail"), ("b", "Energy")], "persona_id string, industry string")
    two_snapshots.write(personas, "personas", mode="overwrite")
    build_insights(spark, two_snapshots, config, D1)
    build_insights(spark, two_snapshots, config, D2)
    return Path(render_report(spark, two_snapshots, config, D2, str(tmp_path / "report.html")))


def test_report_contains_every_chart_and_escapes_names(report_path):
    html = report_path.read_text()
    for name in CHARTS:
        assert f'id="chart-{name}"' in html, name
        assert f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" data-chart="{name}"' in html, name
    for name in EMPTY_FIGURES:
        assert f'id="chart-{name}"' in html and f'class="chart-svg empty" data-chart="{name}"' in html, name
    assert "Big &lt;spenders&gt;" in html and "Big <spenders>" not in html
    assert "50.0% of 4 scored personas stayed" in html  # stability from the migration matrix
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from the network


def test_report_without_insights_names_the_command_to_run(spark, config, two_snapshots, tmp_path):
    from segengine.errors import SegengineError

    with pytest.raises(SegengineError, match="segengine insights --date 2025-07-01"):
        render_report(spark, two_snapshots, config, D2, str(tmp_path / "r.html"))


def test_default_report_path_is_under_the_warehouse(config):
    path = default_report_path(config, D2)
    assert path.endswith("reports/segengine_report_2025-07-01.html")
    assert path.startswith(config.warehouse_uri)


def test_clv_histogram_bins_scored_personas(spark, two_snapshots):
    edges, counts = clv_histogram(two_snapshots.read("customer_features", partitions={"snapshot_date": D2}), bins=4)
    # CLVs 300, 40, 10, 100, 50 on [10, 300] in 4 bins of 72.5.
    assert edges[0] == 10.0 and edges[-1] == 300.0
    assert counts == [3, 1, 0, 1]


@pytest.mark.skipif(chromium() is None, reason="Debian's chromium is not installed (make setup-dev installs it)")
def test_report_renders_in_headless_chromium_without_errors(report_path, tmp_path):
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=2000",
        "--dump-dom",
        report_path.as_uri(),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    dom = done.stdout
    assert done.returncode == 0, done.stderr[-2000:]
    status = re.search(r'<div id="js-status" data-errors="(\d+)" data-charts="(\d+)"', dom)
    assert status, "the page's own script did not run: " + dom[-500:]
    assert status.group(1) == "0", dom[-1000:]
    assert int(status.group(2)) == len(CHARTS) + len(EMPTY_FIGURES)
    for name in CHARTS:
        assert re.search(rf'<figure class="chart" id="chart-{name}" data-chart="{name}" data-rendered="yes"', dom), name
    console_errors = [ln for ln in done.stderr.splitlines() if "Uncaught" in ln or ("CONSOLE" in ln and "ERROR" in ln)]
    assert console_errors == []

    # A screenshot of the whole report beside the test's files, for a person to look at.
    shot = tmp_path / "report.png"
    flags = [c for c in cmd if c not in ("--dump-dom", report_path.as_uri())]
    taken = subprocess.run(
        [*flags, f"--screenshot={shot}", "--window-size=1280,4000", "--hide-scrollbars", report_path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert taken.returncode == 0 and shot.stat().st_size > 10_000, taken.stderr[-2000:]


def test_audience_history_comes_from_refreshes_when_recorded(spark, two_snapshots, report_path):
    from segengine.insights.report import collect_report_data

    refreshes = spark.createDataFrame(
        [("A1", D1, 7, dt.datetime(2025, 1, 1, 6)), ("A1", D2, 9, dt.datetime(2025, 7, 1, 6))],
        "audience_id string, snapshot_date date, size long, refreshed_at timestamp",
    )
    two_snapshots.write(refreshes, "audience_refreshes", mode="overwrite")
    history = collect_report_data(spark, two_snapshots, D2)["history"]
    audience = sorted((h["snapshot_date"], h["segment"], h["size"]) for h in history if h["dimension"] == "audience")
    assert audience == [(D1, "Big <spenders>", 7), (D2, "Big <spenders>", 9)]


def test_histogram_axis_end_labels_stay_inside_the_chart():
    from segengine.insights.charts import histogram

    svg = histogram("clv", [0.0, 10_000.0, 19_900.0], [5, 1], unit="predicted CLV", width=560)
    labels = re.findall(r'<text x="([\d.]+)" y="[\d.]+" text-anchor="(\w+)">([^<]*)</text>', svg)
    axis = [(float(x), anchor, text) for x, anchor, text in labels if text in {"0", "10.0k", "19.9k"}]
    # The last edge sits on the chart's right end, so it must end there, not be centred on it.
    assert axis == [(50.0, "start", "0"), (300.0, "middle", "10.0k"), (550.0, "end", "19.9k")]
