"""Benchmark: refresh of 20 dynamic audiences, and a large CSV export.

``run(spark, config, workdir, scale)`` writes a synthetic ``customer_features``
partition of ``scale`` personas (every catalog column, values from hashes of the
persona id, so nothing is collected), saves 20 rule-defined dynamic audiences and
reports:

* the wall time of ``refresh_all`` for the first date (every member is new) and for
  a second date (a different partition: members join and leave), goal <= 120 s at
  1M personas;
* the wall time of exporting a static audience of ``scale / 2`` members to CSV
  (parallel part files, then a single file), and rows per second.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any

D1 = dt.date(2025, 6, 1)
D2 = dt.date(2025, 6, 2)


def _row(benchmark: str, metric: str, value: float, unit: str, notes: str = "") -> dict[str, Any]:
    return {"benchmark": benchmark, "metric": metric, "value": float(value), "unit": unit, "notes": notes}


def synthetic_features(spark: Any, scale: int, day: dt.date, salt: int) -> Any:
    """A feature partition with every catalog column, generated in Spark from hashes."""
    from pyspark.sql import functions as F

    from segengine.features.catalog import ATTRIBUTES

    df = spark.range(scale).select(F.format_string("P%09d", F.col("id")).alias("persona_id"))
    cols = []
    for i, a in enumerate(ATTRIBUTES):
        if a.name == "persona_id":
            cols.append(F.col("persona_id"))
            continue
        if a.name == "snapshot_date":
            cols.append(F.lit(day).alias("snapshot_date"))
            continue
        hi = F.abs(F.xxhash64("persona_id", F.lit(salt), F.lit(i)))
        if a.allowed_values:
            vals = F.array(*[F.lit(v) for v in a.allowed_values])
            c = F.element_at(vals, (hi % len(a.allowed_values) + 1).cast("int"))
        elif a.type == "integer":
            c = (hi % 1000).cast("int")
        elif a.type == "double":
            c = (hi % 100000).cast("double") / 100.0
        elif a.type == "boolean":
            c = (hi % 2) == 0
        elif a.type == "date":
            c = F.date_sub(F.lit(day), (hi % 1000).cast("int"))
        elif a.type == "timestamp":
            c = F.to_timestamp(F.date_sub(F.lit(day), (hi % 1000).cast("int")))
        else:
            c = F.format_string(f"{a.name[:3]}%d", (hi % 10).cast("int"))
        cols.append(c.cast(a.spark_type).alias(a.name))
    return df.select(*cols)


def _segments() -> list[dict[str, Any]]:
    """20 segment documents over common numeric attributes (thresholds vary)."""
    docs = []
    for i in range(20):
        attr = ["monetary", "frequency", "recency_days", "tenure_days"][i % 4]
        cut = {
            "monetary": 100.0 + 40 * i,
            "frequency": 50 + 40 * i,
            "recency_days": 100 + 40 * i,
            "tenure_days": 200 + 30 * i,
        }[attr]
        docs.append(
            {"name": f"bench_{i:02d}", "kind": "dynamic", "where": {"all": [{"attr": attr, "op": ">=", "value": cut}]}}
        )
    return docs


def run(spark: Any, config: Any, workdir: str, scale: int) -> list[dict[str, Any]]:
    """Run the audience benchmarks; see the module docstring."""
    from pyspark.sql import functions as F

    from segengine.audiences import create_audience, export_audience, refresh_all
    from segengine.lake import Lake

    cfg = config.replace(warehouse=os.path.join(workdir, "bench_audiences_wh"))
    lake = Lake.open(spark, cfg)
    for day, salt in ((D1, 1), (D2, 2)):
        lake.overwrite_partition(synthetic_features(spark, scale, day, salt), "customer_features", snapshot_date=day)
    for doc in _segments():
        create_audience(spark, lake, cfg, doc["name"], "bench", "dynamic", "rules", doc)
    rows = []
    for day, label in ((D1, "first refresh (all members new)"), (D2, "second date (joins and leaves)")):
        started = time.time()
        out = refresh_all(spark, lake, cfg, day)
        seconds = time.time() - started
        size = sum(a["size"] for a in out["audiences"])
        moved = sum(a["added"] + a["removed"] for a in out["audiences"])
        rows.append(
            _row(
                "audiences_refresh_20",
                f"seconds_{day.isoformat()}",
                seconds,
                "s",
                f"{label}; {scale} personas, 20 audiences, {size} memberships, {moved} changes; goal <= 120 s at 1M",
            )
        )
    half = (
        lake.read("customer_features", partitions={"snapshot_date": D1})
        .select("persona_id")
        .filter(F.abs(F.xxhash64("persona_id")) % 2 == 0)
    )
    create_audience(spark, lake, cfg, "bench_half", "bench", "static", "upload", {}, half, snapshot_date=D1)
    for single in (False, True):
        path = os.path.join(workdir, f"bench_export_{'single' if single else 'parts'}.csv")
        started = time.time()
        out = export_audience(
            spark,
            lake,
            cfg,
            "bench_half",
            path,
            "csv",
            ["persona_type", "monetary", "country"],
            single_file=single,
            snapshot_date=D1,
        )
        seconds = time.time() - started
        kind = "single file" if single else "parallel parts"
        rows.append(
            _row(
                "audiences_export_csv",
                f"seconds_{kind.replace(' ', '_')}",
                seconds,
                "s",
                f"{out['rows']} members ({kind})",
            )
        )
        rows.append(
            _row(
                "audiences_export_csv",
                f"rows_per_second_{kind.replace(' ', '_')}",
                out["rows"] / max(seconds, 1e-9),
                "rows/s",
                kind,
            )
        )
    return rows
