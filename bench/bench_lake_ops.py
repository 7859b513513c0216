"""The fixed cost of one lake operation on a small table, on each Delta backend.

The audience registry, run summaries and refresh logs are tables of a few hundred rows
written many times a day; on them the cost of an operation is its Spark jobs and its
log work, not its data. ``run(spark, config, workdir, scale)`` repeats each operation
on a 100-row table (``scale`` is ignored) and reports the median seconds and the number
of Spark jobs of one operation, per backend (delta-spark when its jars are loaded, and
embedded). Not part of the default ``make bench`` run: ``python -m bench.run --only lake_ops``.
"""

from __future__ import annotations

import datetime as dt
import statistics
import time
from collections.abc import Callable
from typing import Any

ROUNDS = 6  # the first two are warm-up
ROWS = 100


def _operations(spark: Any, lake: Any, uri: str, i: int) -> list[tuple[str, Callable[[], Any]]]:
    from pyspark.sql import functions as F

    df = spark.range(ROWS).select(
        F.col("id").cast("string").alias("persona_id"),
        F.lit(i).alias("x"),
        F.lit(dt.date(2025, 1, 1)).alias("day"),
    )
    part = uri + "_by_day"
    return [
        ("create", lambda: lake.write(df, uri)),
        ("append", lambda: lake.write(df, uri)),
        ("version", lambda: lake.version(uri)),
        ("history", lambda: lake.history(uri, 5)),
        ("read_count", lambda: lake.read(uri).count()),
        ("read_rows", lambda: lake.read_rows(uri)),
        ("merge", lambda: lake.merge(df.withColumn("x", F.lit(-1)).limit(ROWS // 2), uri, keys=["persona_id"])),
        ("delete", lambda: lake.delete_where(uri, F.col("persona_id") == "3")),
        ("overwrite", lambda: lake.write(df, uri, mode="overwrite")),
        ("create_partitioned", lambda: lake.write(df, part, partition_by=["day"])),
        (
            "overwrite_partition",
            lambda: lake.write(df, part, mode="overwrite", replace_partitions={"day": dt.date(2025, 1, 1)}),
        ),
    ]


def run(spark: Any, config: Any, workdir: str, scale: int) -> list[dict[str, Any]]:
    from segengine.lake import Lake
    from segengine.session import delta_extension_enabled, delta_jars_available

    backends = ["embedded"]
    if delta_jars_available(spark) and delta_extension_enabled(spark):
        backends.insert(0, "jvm")
    tracker = spark.sparkContext.statusTracker()
    seconds: dict[tuple[str, str], list[float]] = {}
    jobs: dict[tuple[str, str], list[int]] = {}
    for backend in backends:
        cfg = config.replace(
            warehouse=f"{workdir}/{backend}",
            delta=config.delta.replace(backend=backend),
        )
        lake = Lake.open(spark, cfg)
        for i in range(ROUNDS):
            for name, operation in _operations(spark, lake, f"{workdir}/{backend}/t{i}", i):
                group = f"lake_ops-{backend}-{name}-{i}"
                spark.sparkContext.setJobGroup(group, group)
                started = time.perf_counter()
                operation()
                seconds.setdefault((backend, name), []).append(time.perf_counter() - started)
                jobs.setdefault((backend, name), []).append(len(tracker.getJobIdsForGroup(group)))
        spark.sparkContext.setJobGroup("", "")
    rows = []
    for (backend, name), values in seconds.items():
        warm = values[2:]
        rows.append(
            {
                "benchmark": f"lake_ops_{backend}",
                "metric": f"{name}_s",
                "value": round(statistics.median(warm), 4),
                "unit": "s",
                "notes": f"median of {len(warm)}, {ROWS}-row table; Spark jobs: {statistics.median(jobs[(backend, name)][2:]):.0f}",
            }
        )
    return rows
