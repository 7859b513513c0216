"""Benchmark: syncing 20 audiences' diffs to a destination, and exact vs approximate overlap.

``run(spark, config, workdir, scale)`` builds the same 20 dynamic audiences over
``scale`` synthetic personas as ``bench_audiences``, refreshes them for a first date,
attaches all of them to a ``delta`` destination and reports:

* the wall time of the first sync (every member sent: a full snapshot);
* after the refresh of a second date, the wall time of the sync of the diffs (joins and
  leaves of 20 audiences): the issue's "time to sync the diffs of 20 audiences after a
  daily refresh";
* the wall time of the exact overlap of the 20 audiences (one pass) and of the
  HyperLogLog estimate, and the estimate's error against the exact counts: the largest
  and the mean absolute error of ``both`` as a share of the smaller audience of the
  pair, and the largest absolute error of the Jaccard index.
"""

from __future__ import annotations

import os
import time
from typing import Any

from bench.bench_audiences import D1, D2, _row, _segments, synthetic_features


def run(spark: Any, config: Any, workdir: str, scale: int) -> list[dict[str, Any]]:
    """Run the activation benchmarks; see the module docstring."""
    from segengine.audiences import create_audience, refresh_all
    from segengine.audiences.destinations import attach, create_destination, sync_destinations
    from segengine.audiences.overlap import audience_overlap
    from segengine.lake import Lake

    cfg = config.replace(warehouse=os.path.join(workdir, "bench_activation_wh"))
    lake = Lake.open(spark, cfg)
    for day, salt in ((D1, 1), (D2, 2)):
        lake.overwrite_partition(synthetic_features(spark, scale, day, salt), "customer_features", snapshot_date=day)
    names = []
    for doc in _segments():
        create_audience(spark, lake, cfg, doc["name"], "bench", "dynamic", "rules", doc)
        names.append(doc["name"])
    refresh_all(spark, lake, cfg, D1)
    create_destination(spark, lake, "bench_delta", "delta", {}, "bench")
    for name in names:
        attach(spark, lake, name, "bench_delta", "bench")
    rows = []
    started = time.time()
    first = sync_destinations(spark, lake)
    sent = sum(s["adds"] for s in first["synced"])
    rows.append(
        _row("activation_sync_20", "seconds_first_sync", time.time() - started, "s", f"{sent} members, full snapshot")
    )
    refresh_all(spark, lake, cfg, D2, allow_large_change=True)
    started = time.time()
    second = sync_destinations(spark, lake)
    moved = sum(s["adds"] + s["removes"] for s in second["synced"])
    rows.append(
        _row(
            "activation_sync_20",
            "seconds_diff_sync",
            time.time() - started,
            "s",
            f"{moved} joins and leaves of 20 audiences after the refresh of a second date; {scale} personas",
        )
    )
    timings = {}
    results = {}
    for mode in ("exact", "approx"):
        started = time.time()
        results[mode] = audience_overlap(spark, lake, names, mode=mode)
        timings[mode] = time.time() - started
        rows.append(_row("activation_overlap_20", f"seconds_{mode}", timings[mode], "s", f"20 audiences, {mode}"))
    exact = {(r["a"], r["b"]): r for r in results["exact"]}
    errors, jaccard_errors = [], []
    for r in results["approx"]:
        e = exact[(r["a"], r["b"])]
        smaller = min(e["size_a"], e["size_b"])
        if r["a"] != r["b"] and smaller:
            errors.append(abs(r["both"] - e["both"]) / smaller)
            jaccard_errors.append(abs((r["jaccard"] or 0.0) - (e["jaccard"] or 0.0)))
    if errors:
        rows.append(_row("activation_overlap_20", "max_error_share_of_smaller", max(errors), "ratio", "HLL lg_k=12"))
        rows.append(
            _row(
                "activation_overlap_20",
                "mean_error_share_of_smaller",
                sum(errors) / len(errors),
                "ratio",
                "HLL lg_k=12",
            )
        )
        rows.append(_row("activation_overlap_20", "max_jaccard_abs_error", max(jaccard_errors), "abs", "HLL lg_k=12"))
    return rows
