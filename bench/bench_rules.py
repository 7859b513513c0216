"""Rule compiler benchmarks: compile time of a 50-condition rule, count time of a 10-condition rule.

The count runs over a synthetic feature table of ``scale`` personas (built with
``spark.range``, cached and materialised first), and is compared with the same filter
written by hand with the DataFrame API (ratio ~1 means the compiler adds no overhead).
"""

from __future__ import annotations

import datetime as dt
import statistics
import time

SNAP = dt.date(2025, 6, 30)


def _rule(n: int) -> dict:
    conds = []
    for i in range(n):
        kind = i % 5
        if kind == 0:
            conds.append({"attr": "fit_score", "op": ">=", "value": i % 30})
        elif kind == 1:
            conds.append(
                {
                    "any": [
                        {"attr": "plan", "op": "in", "value": ["free", "basic"]},
                        {"attr": "monetary", "op": ">", "value": 10 + i},
                    ]
                }
            )
        elif kind == 2:
            conds.append({"not": {"attr": "email", "op": "ends_with", "value": f".x{i}"}})
        elif kind == 3:
            conds.append({"attr": "last_purchase_date", "op": "within_last_days", "value": 300 + i})
        else:
            conds.append({"attr": "engagement_score", "op": "between", "value": [0, 90 + i % 10]})
    return {"name": f"bench {n}", "persona_types": ["customer", "prospect"], "where": {"all": conds}}


def _count_leaves(doc: dict) -> int:
    from segengine.rules import parse_segment

    return parse_segment(doc, max_conditions=10_000).condition_count


def run(spark, config, workdir: str, scale: int) -> list[dict]:
    """Run the rule benchmarks; returns result rows (see bench/run.py)."""
    from pyspark.sql import functions as F

    from segengine.rules import TableViews, compile_segment, parse_segment

    results = []
    # ---- compile time, 50 conditions (parse + validate + render)
    doc50 = _rule(40)  # 40 entries, every 5th an `any` of 2 -> 48 leaves; add 2 for exactly 50
    doc50["where"]["all"] += [{"attr": "fit_score", "op": "<=", "value": 100}, {"attr": "plan", "op": "is_not_null"}]
    leaves = _count_leaves(doc50)
    times = []
    for _ in range(30):
        t0 = time.perf_counter()
        compile_segment(parse_segment(doc50), SNAP)
        times.append(time.perf_counter() - t0)
    results.append(
        {
            "benchmark": "rules_compile_50_conditions",
            "metric": "median_seconds",
            "value": statistics.median(times),
            "unit": "s",
            "notes": f"{leaves} leaf conditions, parse+validate+render, median of 30",
        }
    )

    # ---- count time, 10 conditions, cached feature table of `scale` personas
    views = TableViews(features="bench_rules_features")
    feats = (
        spark.range(scale)
        .select(
            F.format_string("p%08d", "id").alias("persona_id"),
            F.lit(SNAP).alias("snapshot_date"),
            F.element_at(
                F.array(*(F.lit(t) for t in ("customer", "prospect", "visitor"))), (F.col("id") % 3 + 1).cast("int")
            ).alias("persona_type"),
            (F.hash("id") % 101).cast("int").alias("fit_score"),
            (F.abs(F.hash("id", F.lit(1))) % 1000 / 3.0).alias("monetary"),
            F.element_at(
                F.array(*(F.lit(p) for p in ("free", "basic", "pro", "enterprise"))), (F.col("id") % 4 + 1).cast("int")
            ).alias("plan"),
            F.format_string("u%d@x%d.com", "id", F.col("id") % 7).alias("email"),
            F.date_sub(F.lit(SNAP), (F.abs(F.hash("id", F.lit(2))) % 700).cast("int")).alias("last_purchase_date"),
            (F.abs(F.hash("id", F.lit(3))) % 101).cast("int").alias("engagement_score"),
        )
        .cache()
    )
    feats.count()
    feats.createOrReplaceTempView(views.features)
    doc10 = _rule(8)  # 8 entries, 2 of them `any` pairs -> 10 leaves
    sql = compile_segment(parse_segment(doc10), SNAP, views=views).sql
    n_leaves = _count_leaves(doc10)

    def timed(fn) -> tuple[float, int]:
        samples, n = [], 0
        for _ in range(3):
            t0 = time.perf_counter()
            n = fn()
            samples.append(time.perf_counter() - t0)
        return statistics.median(samples), n

    ours, n_ours = timed(lambda: spark.sql(sql).count())

    def by_hand() -> int:
        c = F.col
        cond = c("persona_type").isin("customer", "prospect")
        for i in range(8):
            kind = i % 5
            if kind == 0:
                cond &= F.coalesce(c("fit_score") >= i % 30, F.lit(False))
            elif kind == 1:
                cond &= F.coalesce(c("plan").isin("free", "basic"), F.lit(False)) | F.coalesce(
                    c("monetary") > 10 + i, F.lit(False)
                )
            elif kind == 2:
                cond &= ~F.coalesce(c("email").endswith(f".x{i}"), F.lit(False))
            elif kind == 3:
                cond &= F.coalesce(
                    c("last_purchase_date") >= F.lit(SNAP - dt.timedelta(days=300 + i)), F.lit(False)
                ) & (c("last_purchase_date") <= F.lit(SNAP))
            else:
                cond &= F.coalesce(c("engagement_score").between(0, 90 + i % 10), F.lit(False))
        return feats.where((c("snapshot_date") == F.lit(SNAP)) & cond).count()

    ref, n_ref = timed(by_hand)
    feats.unpersist()
    results.append(
        {
            "benchmark": "rules_count_10_conditions",
            "metric": "median_seconds",
            "value": ours,
            "unit": "s",
            "notes": f"{n_leaves} leaf conditions over {scale} cached personas, {n_ours} selected, median of 3",
        }
    )
    results.append(
        {
            "benchmark": "rules_count_10_conditions",
            "metric": "ratio_vs_hand_written_dataframe_filter",
            "value": ours / ref if ref else float("nan"),
            "unit": "x",
            "notes": f"hand-written filter {ref:.3f}s selected {n_ref} (must equal {n_ours})",
        }
    )
    return results
