"""Benchmarks of the data layer: generator, ingest, embedded Delta vs plain Parquet.

``run(spark, config, workdir, scale)``: ``scale`` personas are generated and
ingested; the lake benchmark writes and reads back ``10 * scale`` rows (10M at 1M
personas) through ``Lake.write`` / ``Lake.read`` and through plain
``df.write.parquet`` / ``spark.read.parquet`` of the same data, and reports the ratio
(goal: embedded Delta ≤ 1.3× plain Parquet).
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any


def _row(benchmark: str, metric: str, value: float, unit: str, notes: str = "") -> dict[str, Any]:
    return {"benchmark": benchmark, "metric": metric, "value": round(float(value), 3), "unit": unit, "notes": notes}


def _lake_rows(spark: Any, n: int) -> Any:
    """``n`` synthetic order-line-like rows built with Spark built-ins (no Python)."""
    from pyspark.sql import functions as F

    return spark.range(n).select(
        F.concat(F.lit("O"), F.col("id").cast("string")).alias("order_id"),
        (F.col("id") % 5 + 1).cast("int").alias("line_no"),
        F.concat(F.lit("P"), (F.col("id") % F.lit(max(1, n // 20))).cast("string")).alias("persona_id"),
        F.timestamp_seconds(F.lit(1_672_531_200) + F.col("id") % F.lit(78_000_000)).alias("order_ts"),
        F.element_at(
            F.array(*[F.lit(c) for c in ("web", "app", "store", "phone")]), (F.col("id") % 4 + 1).cast("int")
        ).alias("channel"),
        F.concat(F.lit("SKU"), (F.xxhash64("id") % 400).cast("string")).alias("product_id"),
        (F.col("id") % 3 + 1).cast("int").alias("quantity"),
        (F.abs(F.xxhash64("id", F.lit(1))) % 20000 / 100.0).alias("unit_price"),
    )


def _aggregate(df: Any) -> list[Any]:
    from pyspark.sql import functions as F

    return (
        df.groupBy("channel")
        .agg(F.sum(F.col("quantity") * F.col("unit_price")).alias("revenue"), F.count("*").alias("n"))
        .collect()
    )


def bench_lake(spark: Any, config: Any, workdir: str, rows: int) -> list[dict[str, Any]]:
    """Write + read/aggregate ``rows`` rows: embedded Delta (Lake) vs plain Spark Parquet."""
    from segengine.lake import Lake

    lake = Lake.open(spark, config)
    # Materialise the input once so both writers pay only for writing.
    src_path = f"{workdir}/lake_src"
    _lake_rows(spark, rows).write.mode("overwrite").parquet(src_path)
    src = spark.read.parquet(src_path)
    out: list[dict[str, Any]] = []
    times: dict[str, float] = {}
    for attempt in range(2):  # the first round warms the JVM and the OS cache; the second counts
        t = time.time()
        src.write.mode("overwrite").parquet(f"{workdir}/plain_{attempt}")
        times["parquet_write"] = time.time() - t
        t = time.time()
        lake.write(src, f"{workdir}/delta_{attempt}", mode="overwrite")
        times["delta_write"] = time.time() - t
        t = time.time()
        plain = _aggregate(spark.read.parquet(f"{workdir}/plain_{attempt}"))
        times["parquet_read"] = time.time() - t
        t = time.time()
        delta = _aggregate(lake.read(f"{workdir}/delta_{attempt}"))
        times["delta_read"] = time.time() - t
        assert sorted(tuple(r) for r in plain) == sorted(tuple(r) for r in delta)
    note = f"{rows} rows, second of two rounds; backend {lake.backend.name}"
    for key, value in times.items():
        out.append(_row("lake_" + key.split("_")[1], key.split("_")[0] + "_seconds", value, "s", note))
    out.append(
        _row("lake_write", "delta_vs_parquet_ratio", times["delta_write"] / times["parquet_write"], "x", "goal <= 1.3")
    )
    out.append(
        _row(
            "lake_read",
            "delta_vs_parquet_ratio",
            times["delta_read"] / times["parquet_read"],
            "x",
            "read + group by; goal <= 1.3",
        )
    )
    return out


def run(spark: Any, config: Any, workdir: str, scale: int) -> list[dict[str, Any]]:
    """Generator throughput, ingest throughput and the embedded-Delta-vs-Parquet ratio.

    Args:
        spark: the SparkSession.
        config: the configuration (its warehouse is replaced by one under ``workdir``).
        workdir: scratch directory for raw files and tables.
        scale: number of personas (the lake benchmark uses ``10 * scale`` rows).

    Returns:
        One dict per measurement: benchmark, metric, value, unit, notes.
    """
    from segengine.generate import generate_raw
    from segengine.ingest import ingest
    from segengine.lake import Lake

    workdir = workdir.rstrip("/")
    config = dataclasses.replace(config, warehouse=f"{workdir}/warehouse")
    out: list[dict[str, Any]] = []

    gen = generate_raw(spark, config, f"{workdir}/raw", personas=scale)
    seconds = gen["seconds"]["total"]
    lines = gen["rows"]["order_lines"]
    note = f"{scale} personas, {lines} order lines, {gen['rows']['events']} events"
    out.append(_row("generate", "seconds", seconds, "s", note))
    out.append(_row("generate", "personas_per_second", scale / seconds, "personas/s", note))
    out.append(
        _row(
            "generate",
            "order_lines_per_second",
            lines / gen["seconds"]["order_lines"],
            "rows/s",
            "order_lines step only",
        )
    )
    out.append(_row("generate", "rows_per_second", sum(gen["rows"].values()) / seconds, "rows/s", "all tables"))

    lake = Lake.open(spark, config)
    loaded = ingest(spark, lake, config, f"{workdir}/raw")
    note = f"{loaded['rows_in']} rows in, {loaded['quarantined']} quarantined"
    out.append(_row("ingest", "seconds", loaded["seconds"], "s", note))
    out.append(_row("ingest", "rows_per_second", loaded["rows_in"] / loaded["seconds"], "rows/s", note))
    for table, r in loaded["tables"].items():
        if r["seconds"]:
            out.append(
                _row(
                    "ingest", f"{table}_rows_per_second", r["rows_in"] / r["seconds"], "rows/s", f"{r['rows_in']} rows"
                )
            )

    out.extend(bench_lake(spark, config, workdir, 10 * scale))
    return out
