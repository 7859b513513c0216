"""Benchmarks: ALS recommendations and LSH lookalike expansion.

``run(spark, config, workdir, scale)`` generates ``scale`` personas, then reports:

* ALS: training time, ``recommendForAllUsers(top_k)`` time and the scorers' times;
* the evaluation (``_bench_als_grid``): train / validation / test windows carved by time,
  the ALS setting chosen on the validation window among ``BENCH_ALS_GRID`` (default
  ``DEFAULT_GRID``), the test window scored once with it: precision@10 / recall@10 (with
  95% bootstrap intervals) / MAP@10 / coverage of ALS vs the popularity and
  popular-in-segment baselines and ALS's lifts, for all users, users known to ALS and
  cold-start users, each row naming its split;
* lookalike: on all customers of the generated population, recall@N of the LSH search
  against the exact nearest neighbours (a cross join of candidates x seeds) and both
  times (ratio = exact / LSH), for a 1% seed and for a large 30% seed; N = 1%.
"""

from __future__ import annotations

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
    # The scorers of recommend(): the same top k, first without excluding bought items
    # (like recommendForAllUsers above), then excluding them (what scoring writes).
    targets = model.users.select("persona_id")
    bought = inter.where("bought").select("persona_id", "product_id")
    t0 = time.time()
    rec.als_top_k(model, targets, None, cfg.top_k).write.format("noop").mode("overwrite").save()
    vec_all = time.time() - t0
    note = f"{users} users, top {cfg.top_k}, NumPy over Arrow batches of the ALS factors"
    out.append(_row("als_top_k_vectorized_all_users", "seconds", vec_all, "s", note))
    mllib_all = next(r["value"] for r in out if r["benchmark"] == f"als_recommend_for_all_users_bs{cfg.block_size}")
    out.append(_row("als_top_k_vectorized_all_users", "speedup_vs_recommend_for_all_users", mllib_all / vec_all, "x"))
    timing = {}
    for scorer in ("vectorized", "mllib"):
        t0 = time.time()
        if scorer == "mllib":
            top = rec._mllib_top_k(model, targets, bought, cfg.top_k, cfg)
        else:
            top = rec.als_top_k(model, targets, bought, cfg.top_k)
        top.write.format("noop").mode("overwrite").save()
        timing[scorer] = time.time() - t0
        note = f"{users} users, top {cfg.top_k} without bought items"
        out.append(_row(f"als_top_k_excluding_bought_{scorer}", "seconds", timing[scorer], "s", note))
    out.append(_row("als_top_k_excluding_bought", "mllib_over_vectorized", timing["mllib"] / timing["vectorized"], "x"))
    inter.unpersist()
    return out


# The grid of ALS settings the evaluation chooses from on the validation window (the
# configuration's own setting first); BENCH_ALS_GRID replaces it.
DEFAULT_GRID = (
    "rank=16,reg_param=0.3,alpha=2.0;rank=8,reg_param=0.3,alpha=2.0;rank=32,reg_param=0.3,alpha=2.0;"
    "rank=16,reg_param=0.03,alpha=2.0;rank=16,reg_param=1.0,alpha=2.0;rank=16,reg_param=0.3,alpha=8.0"
)


def _bench_als_grid(spark: Any, lake: Any, config: Any, snapshot: dt.date) -> list[dict[str, Any]]:
    """The honest evaluation: ALS settings chosen on the validation window, the test window scored once.

    ``BENCH_ALS_GRID="rank=16,alpha=2;rank=32,alpha=2"`` (default :data:`DEFAULT_GRID`):
    one ALS fit per setting up to the validation cutoff, scored on the validation
    window; the best precision@10 there is chosen, refitted up to the test cutoff and
    scored once on the test window (:func:`segengine.models.recommend.evaluate`). Rows
    name their split: ``recommend_eval_validation*`` / ``recommend_eval_test*``, per
    group of users (all, known to ALS, cold start), with the bootstrap interval bounds.
    """
    from segengine.models import recommend as rec

    grid = rec.parse_grid(os.environ.get("BENCH_ALS_GRID", DEFAULT_GRID), config.recommend)
    t0 = time.time()
    ev = rec.evaluate(spark, lake, config, snapshot, grid=grid)
    eval_s = time.time() - t0
    k = ev["k"]
    val, test = ev["validation"], ev["test"]
    where = (
        f"train <= {ev['validation_cutoff']}, validation {'..'.join(val['window'])}, test {'..'.join(test['window'])}; "
        f"chosen on validation: {ev['setting']}"
    )
    out = []
    for g in ev["grid"]:
        chosen = " (chosen)" if g["setting"] == ev["setting"] else ""
        note = f"split validation, all users; lift {g['lift_vs_popularity']:.3f}x{chosen}; {where}"
        out.append(
            _row(
                "recommend_eval_validation_grid",
                f"precision_at_{k}[{g['setting']}]",
                g["precision_at_k"],
                "ratio",
                note,
            )
        )
    for window in (val, test):
        split = window["split"]
        u = window["users"]
        seg = f"segments {window['segmentation']} as of {window['segments_as_of']}"
        for key in ("scored", "known", "cold_start"):
            out.append(_row(f"recommend_eval_{split}", f"users_{key}", u[key], "users", f"split {split}; {where}"))
        for group in rec.GROUPS:
            ci = window["ci"][group]
            note = f"split {split}, {group} users ({u['scored'] if group == 'all' else u[group]}); {seg}; {where}"
            for method in rec.METHODS:
                m = window["metrics"][group][method]
                bench = f"recommend_eval_{split}_{group}_{method}"
                for metric in ("precision_at_k", "recall_at_k"):
                    name = metric.replace("_at_k", f"_at_{k}")
                    lo, hi = ci[method][metric]
                    out.append(_row(bench, name, m[metric], "ratio", f"95% CI [{lo:.4f}, {hi:.4f}]; {note}"))
                    out.append(_row(bench, f"{name}_ci_low", lo, "ratio", note))
                    out.append(_row(bench, f"{name}_ci_high", hi, "ratio", note))
                out.append(_row(bench, f"map_at_{k}", m["map_at_k"], "ratio", note))
                out.append(_row(bench, "coverage", m["coverage"], "ratio", note))
            for base in ("popularity", "popular_in_segment"):
                lo, hi = ci[f"lift_vs_{base}"]
                value = window["lift"][group][f"vs_{base}"]
                metric = f"{group}_als_precision_lift_vs_{base}"
                out.append(_row(f"recommend_eval_{split}", metric, value, "x", f"95% CI [{lo:.3f}, {hi:.3f}]; {note}"))
                out.append(_row(f"recommend_eval_{split}", f"{metric}_ci_low", lo, "x", note))
                out.append(_row(f"recommend_eval_{split}", f"{metric}_ci_high", hi, "x", note))
    out.append(_row("recommend_eval", "seconds", eval_s, "s", f"{len(grid)} validation fits + 1 test fit, bootstrap"))
    return out


def lookalike_vs_exact(spark: Any, config: Any, features: Any, scale: int) -> list[dict[str, Any]]:
    """recall@N of the LSH search against the exact search, and both times, on all customers."""
    from segengine.models import lookalike as lk

    # Lookalikes among customers: prospects and visitors have no purchase attributes, so
    # after mean imputation they would all sit on one point (distance 0 ties).
    if "persona_type" in features.columns:
        features = features.where(F.col("persona_type") == "customer")
    attrs = [a for a in LOOKALIKE_ATTRS if a in features.columns]
    vectors = lk.scale_attributes(features, attrs).cache()
    population = vectors.count()
    out = []
    # (name, seed share, N share): a typical 1% seed, and a large seed (30%: "all good
    # customers") that the search reduces to grid representatives when it exceeds
    # lookalike.max_seed_points.
    for name, seed_share, size_share in (("lookalike", 0.01, 0.01), ("lookalike_large_seed", 0.3, 0.01)):
        seed_ids = (
            vectors.orderBy(F.xxhash64("persona_id", F.lit(name)))
            .limit(max(5, int(population * seed_share)))
            .select("persona_id")
            .cache()
        )
        n_seed = seed_ids.count()
        size = max(10, int(population * size_share))
        if name != "lookalike" and n_seed * (population - n_seed) > 2e9:
            seed_ids.unpersist()
            continue  # the exact reference would take hours here
        t0 = time.time()
        top, params = lk.expand_vectors(vectors, seed_ids, size, config.lookalike)
        lsh_ids = {r.persona_id for r in top.select("persona_id").collect()}
        lsh_s = time.time() - t0
        t0 = time.time()
        cands = vectors.join(seed_ids, "persona_id", "left_anti")
        exact = lk.nearest_exact(cands, vectors.join(seed_ids, "persona_id", "left_semi"), size)
        exact_ids = {r.persona_id for r in exact.select("persona_id").collect()}
        exact_s = time.time() - t0
        note = (
            f"{scale} personas: {population} customers, {n_seed} seeds, N={size}, attrs {','.join(attrs)}; "
            f"widenings {params['widenings']}, {params['seed_points']} seed points, "
            f"bucket {params['bucket_length']:.4f}, {params['num_hash_tables']} tables"
        )
        out.append(_row(name, "recall_at_n", len(lsh_ids & exact_ids) / size, "ratio", note))
        out.append(_row(name, "lsh_seconds", lsh_s, "s", note))
        out.append(_row(name, "exact_seconds", exact_s, "s", f"{scale} personas: cross join candidates x seeds"))
        out.append(_row(name, "exact_over_lsh_time", exact_s / lsh_s if lsh_s else 0.0, "x", "goal >= 10 at 1M"))
        seed_ids.unpersist()
    vectors.unpersist()
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
    from bench.shared import bronze
    from segengine.lake import Lake

    config = config.replace(warehouse=os.path.join(workdir, "warehouse_recommend"))
    lake = Lake.open(spark, config)
    snapshot = dt.date.fromisoformat(config.generator.end_date)
    t0 = time.time()
    bronze(spark, lake, config, scale)
    out = [_row("recommend_setup", "generate_seconds", time.time() - t0, "s", f"{scale} personas")]
    features = _features(spark, lake, config, snapshot)
    # The evaluation's segments come from the feature partition of each training cutoff
    # (validation and test), never the snapshot's, whose tiers count the tested purchases.
    cfg = config.recommend
    test_cutoff = snapshot - dt.timedelta(days=cfg.eval_test_days)
    t0 = time.time()
    for cutoff in (test_cutoff - dt.timedelta(days=cfg.eval_validation_days), test_cutoff):
        _features(spark, lake, config, cutoff)
    out.append(_row("recommend_setup", "cutoff_features_seconds", time.time() - t0, "s", "2 feature partitions"))
    out += _bench_als(spark, lake, config, snapshot, scale)
    out += _bench_als_grid(spark, lake, config, snapshot)
    out += lookalike_vs_exact(spark, config, features, scale)
    return out
