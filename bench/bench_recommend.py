"""Benchmarks: ALS recommendations and LSH lookalike expansion.

``run(spark, config, workdir, scale)`` generates ``scale`` personas, then reports:

* ALS: training time, ``recommendForAllUsers(top_k)`` time, and the time-split
  precision@10 / recall@10 / MAP@10 / coverage of ALS vs the popularity and
  popular-in-segment baselines (and ALS's precision lift over popularity);
* lookalike: on a sample of the population (the exact method is a cross join, too
  slow for the whole of it), recall@N of the LSH search against exact nearest
  neighbours and both times (ratio = exact / LSH); plus the LSH time on the whole
  population.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import time
from typing import Any

from pyspark.sql import functions as F

LOOKALIKE_ATTRS = ["frequency", "monetary", "recency_days", "tenure_days", "avg_basket_value"]


def _row(benchmark: str, metric: str, value: float, unit: str, notes: str = "") -> dict[str, Any]:
    return {"benchmark": benchmark, "metric": metric, "value": float(value), "unit": unit, "notes": notes}


def _features(spark: Any, lake: Any, config: Any, snapshot: dt.date) -> Any:
    """The features partition (computed by the features area when available)."""
    try:
        from segengine.features import compute_features

        compute_features(spark, lake, config, snapshot)
        return lake.read("customer_features", partitions={"snapshot_date": snapshot})
    except ImportError:
        # Features area not present: the few RFM columns the lookalike needs, from bronze.
        ol = lake.read("order_lines").where(F.to_date("order_ts") <= F.lit(snapshot))
        agg = ol.groupBy("persona_id").agg(
            F.countDistinct("order_id").alias("frequency"),
            F.sum(F.col("quantity") * F.col("unit_price")).alias("monetary"),
            F.datediff(F.lit(snapshot), F.max(F.to_date("order_ts"))).alias("recency_days"),
            F.datediff(F.lit(snapshot), F.min(F.to_date("order_ts"))).alias("tenure_days"),
        )
        agg = agg.withColumn("avg_basket_value", F.col("monetary") / F.col("frequency"))
        feats = agg.select(
            "persona_id",
            F.lit(snapshot).alias("snapshot_date"),
            F.lit("customer").alias("persona_type"),
            "recency_days",
            "frequency",
            "monetary",
            "tenure_days",
            "avg_basket_value",
        )
        lake.write(feats, "customer_features", mode="overwrite", replace_partitions={"snapshot_date": snapshot})
        return lake.read("customer_features", partitions={"snapshot_date": snapshot})


def _bench_als(spark: Any, lake: Any, config: Any, snapshot: dt.date, scale: int) -> list[dict[str, Any]]:
    from segengine.models import recommend as rec

    cfg = config.recommend
    out = []
    order_lines, events, _, personas = rec._load_inputs(lake)
    inter = rec.interactions(order_lines, events, snapshot, cfg, personas).cache()
    n_inter = inter.count()
    t0 = time.time()
    model = rec.train_model(inter, cfg)
    train_s = time.time() - t0
    users = model.users.count()
    out.append(_row("als_train", "seconds", train_s, "s", f"{users} users, {n_inter} interactions, rank {cfg.rank}"))
    # SPARK-20443: recommendForAll stacks users/items in blocks of blockSize; sweep a few.
    for block_size in sorted({1024, cfg.block_size, 8192}):
        model.als.setBlockSize(block_size)
        t0 = time.time()
        model.als.recommendForAllUsers(cfg.top_k).write.format("noop").mode("overwrite").save()
        note = f"{users} users, top {cfg.top_k}, blockSize {block_size}"
        if block_size == cfg.block_size:
            note += " (config)"
        out.append(_row(f"als_recommend_for_all_users_bs{block_size}", "seconds", time.time() - t0, "s", note))
    model.als.setBlockSize(cfg.block_size)
    inter.unpersist()
    t0 = time.time()
    ev = rec.evaluate(spark, lake, config, snapshot)
    eval_s = time.time() - t0
    note = f"train <= {ev['cutoff']}, test {ev['test_days']} days, {ev['test_users']} users"
    for method in ("als", "popularity", "popular_in_segment"):
        for metric in ("precision_at_k", "recall_at_k", "map_at_k", "coverage"):
            name = metric.replace("_at_k", f"_at_{ev['k']}")
            out.append(_row(f"recommend_eval_{method}", name, ev[method][metric], "ratio", note))
    out.append(
        _row("recommend_eval", "als_precision_lift_vs_popularity", ev["precision_lift_vs_popularity"], "x", "goal >= 2")
    )
    out.append(_row("recommend_eval", "seconds", eval_s, "s", "includes a second ALS fit"))
    return out


def _bench_lookalike(spark: Any, config: Any, features: Any, scale: int) -> list[dict[str, Any]]:
    from segengine.models import lookalike as lk

    # Lookalikes among customers: prospects and visitors have no purchase attributes, so
    # after mean imputation they would all sit on one point (distance 0 ties).
    if "persona_type" in features.columns:
        features = features.where(F.col("persona_type") == "customer")
    attrs = [a for a in LOOKALIKE_ATTRS if a in features.columns]
    vectors = lk.scale_attributes(features, attrs).cache()
    population = vectors.count()
    out = []
    # Sample for the exact comparison: at most 20k personas, seed 1%, N 1% of the sample.
    sample = vectors.sample(fraction=min(1.0, 20000 / max(population, 1)), seed=9).cache()
    n_sample = sample.count()
    seed_ids = sample.orderBy(F.xxhash64("persona_id")).limit(max(5, n_sample // 100)).select("persona_id").cache()
    size = max(10, n_sample // 100)
    t0 = time.time()
    lsh_top, params = lk.expand_vectors(sample, seed_ids, size, config.lookalike)
    lsh_ids = {r.persona_id for r in lsh_top.select("persona_id").collect()}
    lsh_s = time.time() - t0
    t0 = time.time()
    cands = sample.join(seed_ids, "persona_id", "left_anti")
    exact = lk.nearest_exact(cands, sample.join(seed_ids, "persona_id", "left_semi"), size)
    exact_ids = {r.persona_id for r in exact.select("persona_id").collect()}
    exact_s = time.time() - t0
    note = f"sample {n_sample} personas, {seed_ids.count()} seeds, N={size}, attrs {','.join(attrs)}, {params}"
    out.append(_row("lookalike_sample", "recall_at_n", len(lsh_ids & exact_ids) / size, "ratio", note))
    out.append(_row("lookalike_sample", "lsh_seconds", lsh_s, "s", note))
    out.append(_row("lookalike_sample", "exact_seconds", exact_s, "s", "cross join of candidates x seeds"))
    out.append(_row("lookalike_sample", "exact_over_lsh_time", exact_s / lsh_s if lsh_s else 0.0, "x", "goal >= 10"))
    # Whole population: LSH time, and the exact method's time extrapolated from a
    # candidate sample against the full seed (its cost is linear in the candidates).
    seed_all = vectors.orderBy(F.xxhash64("persona_id")).limit(max(5, population // 100)).select("persona_id").cache()
    n_seed_all = seed_all.count()
    size_all = max(10, population // 100)
    t0 = time.time()
    top, params = lk.expand_vectors(vectors, seed_all, size_all, config.lookalike)
    top.write.format("noop").mode("overwrite").save()
    lsh_full = time.time() - t0
    note = f"population {population}, {n_seed_all} seeds, N={size_all}, {params}"
    out.append(_row("lookalike_full", "lsh_seconds", lsh_full, "s", note))
    cands_all = vectors.join(seed_all, "persona_id", "left_anti")
    n_cands = population - n_seed_all
    cand_sample = cands_all.sample(fraction=min(1.0, 20000 / max(n_cands, 1)), seed=5).cache()
    n_cs = cand_sample.count()
    t0 = time.time()
    lk.nearest_exact(cand_sample, vectors.join(seed_all, "persona_id", "left_semi"), size_all).write.format(
        "noop"
    ).mode("overwrite").save()
    exact_est = (time.time() - t0) * n_cands / max(n_cs, 1)
    out.append(
        _row(
            "lookalike_full",
            "exact_seconds_extrapolated",
            exact_est,
            "s",
            f"cross join of {n_cs} sampled candidates x {n_seed_all} seeds, scaled x{n_cands / max(n_cs, 1):.1f}",
        )
    )
    out.append(
        _row("lookalike_full", "exact_over_lsh_time", exact_est / lsh_full if lsh_full else 0.0, "x", "goal >= 10")
    )
    return out


def run(spark: Any, config: Any, workdir: str, scale: int) -> list[dict[str, Any]]:
    """Generate ``scale`` personas under ``workdir`` and benchmark ALS and lookalike.

    Args:
        spark: the session.
        config: configuration (its warehouse is replaced by one under ``workdir``).
        workdir: scratch directory.
        scale: number of personas.

    Returns:
        Result rows ``{"benchmark", "metric", "value", "unit", "notes"}``.
    """
    from segengine.generate import generate_bronze
    from segengine.lake import Lake

    config = dataclasses.replace(config, warehouse=os.path.join(workdir, "warehouse_recommend"))
    lake = Lake.open(spark, config)
    snapshot = dt.date.fromisoformat(config.generator.end_date)
    t0 = time.time()
    generate_bronze(spark, lake, config, personas=scale, seed=42)
    out = [_row("recommend_setup", "generate_seconds", time.time() - t0, "s", f"{scale} personas")]
    features = _features(spark, lake, config, snapshot)
    out += _bench_als(spark, lake, config, snapshot, scale)
    out += _bench_lookalike(spark, config, features, scale)
    return out
