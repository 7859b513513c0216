"""Ranking metrics (precision, recall, MAP at k) and their bootstrap intervals over users; the result's names."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pyspark.sql import Window
from pyspark.sql import functions as F

from segengine.bootstrap import poisson_weight

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

SPLIT_VALIDATION = "validation"
SPLIT_TEST = "test"
METHODS = ("als", "popularity", "popular_in_segment")
GROUP_KNOWN = "known"
GROUP_COLD = "cold_start"
GROUP_ALL = "all"
GROUPS = (GROUP_KNOWN, GROUP_COLD, GROUP_ALL)
CI_LEVEL = 0.95


def per_user_metrics(recs: DataFrame, truth: DataFrame, k: int) -> DataFrame:
    """precision@k, recall@k and AP@k of every user in ``truth`` (0 for users without recommendations).

    Args:
        recs: DataFrame(persona_id, product_id, rank) (rank 1 = best, unique per user).
        truth: DataFrame(persona_id, product_id): the relevant items.
        k: cut-off.

    Returns:
        DataFrame(persona_id, precision double, recall double, ap double), one row per user of ``truth``.
    """
    truth = truth.select("persona_id", "product_id").distinct()
    r = recs.where(F.col("rank") <= k).select("persona_id", "product_id", "rank")
    hits = r.join(truth.withColumn("hit", F.lit(1)), ["persona_id", "product_id"], "left").fillna({"hit": 0})
    w = Window.partitionBy("persona_id").orderBy("rank").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    hits = hits.withColumn("_cum", F.sum("hit").over(w)).withColumn(
        "_prec", F.when(F.col("hit") == 1, F.col("_cum") / F.col("rank")).otherwise(F.lit(0.0))
    )
    per_user = hits.groupBy("persona_id").agg(F.sum("hit").alias("n_hit"), F.sum("_prec").alias("ap_sum"))
    n_truth = truth.groupBy("persona_id").agg(F.count(F.lit(1)).alias("n_truth"))
    users = n_truth.join(per_user, "persona_id", "left").fillna({"n_hit": 0, "ap_sum": 0.0})
    return users.select(
        "persona_id",
        (F.col("n_hit") / F.lit(float(k))).alias("precision"),
        (F.col("n_hit") / F.col("n_truth")).alias("recall"),
        (F.col("ap_sum") / F.least(F.col("n_truth"), F.lit(k))).alias("ap"),
    )


def ranking_metrics(recs: DataFrame, truth: DataFrame, k: int, catalog_size: int | None = None) -> dict[str, float]:
    """precision@k, recall@k, MAP@k over the users in ``truth``, and catalogue coverage.

    Definitions (as MLlib's ``RankingMetrics``): precision@k = hits in the top k / k;
    recall@k = hits / |relevant|; AP@k = sum over hit positions i of (hits up to i) / i,
    divided by min(|relevant|, k). Users in ``truth`` without recommendations score 0.
    Coverage = distinct recommended products / ``catalog_size``.

    Args:
        recs: DataFrame(persona_id, product_id, rank) (rank 1 = best, unique per user).
        truth: DataFrame(persona_id, product_id): the relevant items.
        k: cut-off.
        catalog_size: number of products (None: coverage not computed).

    Returns:
        {"precision_at_k", "recall_at_k", "map_at_k", "coverage", "users"}.
    """
    row = (
        per_user_metrics(recs, truth, k)
        .agg(
            F.avg("precision").alias("p"),
            F.avg("recall").alias("r"),
            F.avg("ap").alias("m"),
            F.count(F.lit(1)).alias("n"),
        )
        .first()
    )
    assert row is not None  # a global aggregate has exactly one row
    coverage = float("nan")
    if catalog_size:
        r = recs.where(F.col("rank") <= k)
        coverage = r.select("product_id").distinct().count() / float(catalog_size)
    return {
        "precision_at_k": float(row["p"] or 0.0),
        "recall_at_k": float(row["r"] or 0.0),
        "map_at_k": float(row["m"] or 0.0),
        "coverage": coverage,
        "users": float(row["n"] or 0),
    }


def bootstrap_intervals(
    per_user: DataFrame,
    values: list[str],
    ratios: dict[str, tuple[str, str]],
    resamples: int,
    seed: int,
    level: float = CI_LEVEL,
    group_col: str = "group",
) -> dict[str, dict[str, list[float]]]:
    """Percentile bootstrap intervals over users, per group and over all users, in Spark.

    Poisson bootstrap: each user gets an independent Poisson(1) weight per resample
    (:func:`poisson_weight`), which approximates drawing users with replacement and
    needs no per-user row on the driver. Spark sums ``weight`` and ``weight x value``
    per (resample, group); the driver receives ``resamples x groups`` rows, turns them
    into one mean per resample (and one ratio of means for each entry of ``ratios``,
    the lifts: both means over the same resampled users), and takes the percentiles.

    Args:
        per_user: one row per user with ``persona_id``, ``group_col`` and the ``values`` columns.
        values: numeric per-user columns whose means get an interval.
        ratios: ``{name: (numerator column, denominator column)}``: ratio of the means.
        resamples: number of bootstrap resamples.
        seed: the seed of the weights.
        level: the interval's coverage (0.95: the 2.5th and 97.5th percentiles).
        group_col: the column with the user's group.

    Returns:
        ``{group: {value or ratio name: [low, high]}}`` for every group present and ``"all"``;
        NaN bounds where a group's resamples give no estimate.
    """
    b = per_user.sparkSession.range(resamples).withColumnRenamed("id", "_b")
    weighted = per_user.crossJoin(F.broadcast(b)).withColumn(
        "_w", poisson_weight(F.col("persona_id"), F.col("_b"), seed)
    )
    rows = (
        weighted.groupBy("_b", group_col)
        .agg(F.sum("_w").alias("_n"), *[F.sum(F.col("_w") * F.col(v)).alias(v) for v in values])
        .collect()
    )  # resamples x groups rows, whatever the number of users
    sums: dict[str, dict[int, dict[str, float]]] = {}
    for row in rows:
        for group in (row[group_col], GROUP_ALL):
            acc = sums.setdefault(group, {}).setdefault(row["_b"], {"_n": 0.0, **{v: 0.0 for v in values}})
            acc["_n"] += float(row["_n"] or 0)
            for v in values:
                acc[v] += float(row[v] or 0.0)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    out: dict[str, dict[str, list[float]]] = {}
    for group, by_b in sums.items():
        draws: dict[str, list[float]] = {name: [] for name in [*values, *ratios]}
        for acc in by_b.values():
            if acc["_n"] <= 0:
                continue
            for v in values:
                draws[v].append(acc[v] / acc["_n"])
            for name, (num, den) in ratios.items():
                if acc[den] > 0:
                    draws[name].append(acc[num] / acc[den])
        out[group] = {
            name: [float(np.percentile(d, lo_q)), float(np.percentile(d, hi_q))] if d else [float("nan")] * 2
            for name, d in draws.items()
        }
    return out
