"""Benchmarks of the data layer: generator, ingest, both Delta backends vs plain Parquet.

``run(spark, config, workdir, scale)``: ``scale`` personas are generated and
ingested; the lake benchmark writes, reads (one partition, then all) and merges into
one partition ``10 * scale`` rows (10M at 1M personas) through ``Lake`` on each Delta
backend (delta-spark when its jars are loaded, and embedded) and through plain Spark
Parquet, and reports each backend's ratio to Parquet (goal: ≤ 1.3×).
"""

from __future__ import annotations

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


def _sorted(rows: list[Any]) -> list[tuple]:
    return sorted((r[0], round(r[1], 2), r[2]) for r in rows)


MERGE_SHARE = 0.1  # of one month's rows: the updated keys of the merge (plus as many new ones)


def _merge_source(df: Any, month: Any) -> Any:
    """A merge source inside ``month``: a tenth of its lines re-priced, and as many new lines."""
    from pyspark.sql import functions as F

    inside = df.filter(F.col("order_month") == F.lit(month))
    changed = inside.filter(F.xxhash64("order_id") % 10 == 0).withColumn("unit_price", F.col("unit_price") + 1.0)
    new = changed.withColumn("line_no", F.col("line_no") + 10)
    return changed.unionByName(new)


def _parquet_merge(spark: Any, path: str, source: Any, month: Any) -> None:
    """The plain-Parquet equivalent of a merge inside one partition: rewrite that partition.

    Reads the month's folder, keeps the lines the source does not replace, adds the
    source and overwrites only that folder (dynamic partition overwrite), so the cost
    is the partition's, as for the Delta merges.
    """
    from pyspark.sql import functions as F

    part = f"{path}/order_month={month}"
    old = spark.read.parquet(part).withColumn("order_month", F.lit(month).cast("date"))
    kept = old.join(source.select("order_id", "line_no"), ["order_id", "line_no"], "left_anti")
    rewritten = kept.unionByName(source.select(*old.columns)).localCheckpoint(eager=True)
    rewritten.write.mode("overwrite").option("partitionOverwriteMode", "dynamic").partitionBy("order_month").parquet(
        path
    )


def bench_lake(spark: Any, config: Any, workdir: str, rows: int) -> list[dict[str, Any]]:
    """``rows`` order-line-like rows, partitioned by month: plain Parquet and each Delta backend.

    Per store: write the table, read one month and aggregate it (partition pruning),
    read all and aggregate, and merge into one month (``within`` that month; a tenth of
    its lines updated and as many inserted). Each is the second of two rounds (the first
    warms the JVM and the OS cache). Ratios are Delta over plain Parquet, measured in
    the same run.
    """
    from pyspark.sql import functions as F

    from segengine.lake import Lake
    from segengine.session import delta_extension_enabled, delta_jars_available

    backends = ["embedded"]
    if delta_jars_available(spark) and delta_extension_enabled(spark):
        backends.insert(0, "jvm")
    src_path = f"{workdir}/lake_src"
    _lake_rows(spark, rows).withColumn("order_month", F.trunc("order_ts", "month")).write.mode("overwrite").parquet(
        src_path
    )
    src = spark.read.parquet(src_path)
    month = src.agg(F.max("order_month")).first()[0]
    months = src.select("order_month").distinct().count()
    times: dict[str, dict[str, float]] = {store: {} for store in ["parquet", *backends]}
    for attempt in range(2):
        t = time.time()
        src.write.mode("overwrite").partitionBy("order_month").parquet(f"{workdir}/plain_{attempt}")
        times["parquet"]["write"] = time.time() - t
        t = time.time()
        plain_part = _aggregate(spark.read.parquet(f"{workdir}/plain_{attempt}").filter(F.col("order_month") == month))
        times["parquet"]["partition_read"] = time.time() - t
        t = time.time()
        plain_all = _aggregate(spark.read.parquet(f"{workdir}/plain_{attempt}"))
        times["parquet"]["read"] = time.time() - t
        source = _merge_source(src, month).localCheckpoint(eager=True)
        t = time.time()
        _parquet_merge(spark, f"{workdir}/plain_{attempt}", source, month)
        times["parquet"]["merge"] = time.time() - t
        merged = _aggregate(spark.read.parquet(f"{workdir}/plain_{attempt}"))
        for backend in backends:
            cfg = config.replace(delta=config.delta.replace(backend=backend))
            lake = Lake.open(spark, cfg)
            path = f"{workdir}/{backend}_{attempt}"
            t = time.time()
            lake.write(src, path, mode="overwrite", partition_by=["order_month"])
            times[backend]["write"] = time.time() - t
            t = time.time()
            part = _aggregate(lake.read(path, partitions={"order_month": month}))
            times[backend]["partition_read"] = time.time() - t
            t = time.time()
            everything = _aggregate(lake.read(path))
            times[backend]["read"] = time.time() - t
            t = time.time()
            lake.merge(source, path, keys=["order_id", "line_no"], within={"order_month": month})
            times[backend]["merge"] = time.time() - t
            after = _aggregate(lake.read(path))
            assert _sorted(part) == _sorted(plain_part), backend
            assert _sorted(everything) == _sorted(plain_all), backend
            assert _sorted(after) == _sorted(merged), backend
    merge_rows = source.count()
    out: list[dict[str, Any]] = []
    for store, measured in times.items():
        for op, seconds in measured.items():
            note = (
                f"{rows} rows in {months} monthly partitions; merge of {merge_rows} rows into one; second of two rounds"
            )
            out.append(_row(f"lake_{op}", f"{store}_seconds", seconds, "s", note))
            if store != "parquet":
                ratio = seconds / times["parquet"][op]
                out.append(_row(f"lake_{op}", f"{store}_vs_parquet_ratio", ratio, "x", "same run; goal <= 1.3"))
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
    config = config.replace(warehouse=f"{workdir}/warehouse")
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
