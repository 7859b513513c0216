"""Benchmark: insight tables, the HTML report and the one-persona profile.

``run(spark, config, workdir, scale)`` generates ``scale`` personas into a fresh
warehouse under ``workdir``, computes features for two snapshot dates a cycle apart,
trains and scores the AI segments (so migrations are real), then reports:

* ``build_insights`` wall time for the later date, and its ratio to ``compute_features``
  for the same date (insights should cost a fraction of the features job);
* ``render_report`` wall time (reads only small aggregates + one CLV histogram);
* ``customer_profile`` wall time for one persona (median of 3), and its ratio to a
  plain full scan of the tables it reads (customer_features all dates, order_lines,
  events): the profile prunes partitions and pushes the persona filter down.
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import time
from typing import Any


def _row(benchmark: str, metric: str, value: float, unit: str, notes: str = "") -> dict[str, Any]:
    return {"benchmark": benchmark, "metric": metric, "value": float(value), "unit": unit, "notes": notes}


def _timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def run(spark: Any, config: Any, workdir: str, scale: int) -> list[dict[str, Any]]:
    """Run the insights benchmarks at ``scale`` personas; return result rows."""
    from bench.shared import bronze
    from segengine.features import compute_features
    from segengine.insights import add_months, build_insights
    from segengine.insights.profile import customer_profile
    from segengine.insights.report import render_report
    from segengine.lake import Lake
    from segengine.models.segments import score_segments, train_segments
    from segengine.models.tracking import configure_mlflow

    config = config.replace(
        warehouse=os.path.join(workdir, "insights_warehouse"),
        mlflow=config.mlflow.replace(tracking_uri=None),
    )
    lake = Lake.open(spark, config)
    bronze(spark, lake, config, scale)
    later = dt.date.fromisoformat(config.generator.end_date)
    earlier = add_months(later, -config.features.cycle_months)
    compute_features(spark, lake, config, earlier)
    features_s, _ = _timed(lambda: compute_features(spark, lake, config, later))
    configure_mlflow(config)
    train_segments(spark, lake, config, later)
    for day in (earlier, later):
        score_segments(spark, lake, config, day)
    build_insights(spark, lake, config, earlier)
    insights_s, summary = _timed(lambda: build_insights(spark, lake, config, later))
    report_s, _ = _timed(
        lambda: render_report(spark, lake, config, later, os.path.join(workdir, "insights_report.html"))
    )

    someone = (
        lake.read("customer_features", partitions={"snapshot_date": later})
        .where("persona_type = 'customer'")
        .select("persona_id")
        .first()["persona_id"]
    )
    profile_times = [_timed(lambda: customer_profile(spark, lake, config, someone, later))[0] for _ in range(3)]
    profile_s = statistics.median(profile_times)

    def full_scan() -> int:
        return sum(lake.read(t).count() for t in ("customer_features", "order_lines", "events"))

    scan_s, _ = _timed(full_scan)
    note = f"{scale} personas, snapshot {later}, local Spark"
    return [
        _row("insights", "build_insights_seconds", insights_s, "s", note),
        _row("insights", "build_insights_vs_compute_features", insights_s / features_s, "ratio", note),
        _row("insights", "render_report_seconds", report_s, "s", note),
        _row("insights", "profile_seconds_median_of_3", profile_s, "s", note),
        _row("insights", "profile_vs_full_scan", profile_s / scan_s if scan_s else 0.0, "ratio", note),
        _row("insights", "segment_stability", summary.get("stability") or 0.0, "share", note),
    ]
