"""Purchase propensity and churn risk: time windows, labels and holdout metrics.

This is the groundwork of the two predictive traits (issue 41, item 1): the classifiers,
their calibration, the catalog attributes and the pipeline steps are not built yet.

Time split (S = the snapshot date, N = the horizon in days, K stacked cutoffs a month
apart; a label window ``(u, u + N]`` holds orders whose local order date is after day u
and up to and including day u + N, as in :mod:`segengine.models.clv`)::

    holdout : u = S - N: features at S - N, labels in (S - N, S]
    train   : u = S - 2N - j months (j = 0 .. K-1): every label ends by S - N, so no
              training label sees the holdout's days
    final   : u = S - N - j months (j = 0 .. K-1), refit once the holdout has judged
    scoring : features at S, the probability of the event in (S, S + N]

Labels, for the personas of the population at the cutoff:

* ``purchase_next``: 1 when the persona placed an order with a positive quantity in the
  label window, else 0 (every persona of the population: customers and prospects).
* ``churned``: only for personas who purchased on or before the cutoff: 1 when they did
  not purchase in the label window, else 0 (null for the others, who cannot churn).
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import functions as F

from segengine.errors import ConfigError
from segengine.models.clv import shift_months

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

CALIBRATION_BINS = 10


def propensity_windows(snapshot_date: dt.date, horizon_days: int, cutoffs: int = 6) -> dict[str, object]:
    """The (cutoff, label end) windows of each role; a label window is ``(cutoff, end]``.

    Args:
        snapshot_date: S.
        horizon_days: N, the label window's length in days.
        cutoffs: K, the stacked monthly cutoffs of training (and of the final refit).

    Returns:
        ``{"train": [(u, u + N), …], "holdout": (S - N, S), "final": [(u, u + N), …]}``,
        lists most recent first.

    Raises:
        ConfigError: a horizon or a number of cutoffs below 1.
    """
    if horizon_days < 1:
        raise ConfigError(f"propensity horizon: must be at least 1 day, got {horizon_days}")
    if cutoffs < 1:
        raise ConfigError(f"propensity cutoffs: must be at least 1, got {cutoffs}")
    horizon = dt.timedelta(days=horizon_days)
    holdout = snapshot_date - horizon

    def windows(last_cutoff: dt.date) -> list[tuple[dt.date, dt.date]]:
        return [(u, u + horizon) for u in (shift_months(last_cutoff, -j) for j in range(cutoffs))]

    return {"train": windows(holdout - horizon), "holdout": (holdout, snapshot_date), "final": windows(holdout)}


def propensity_labels(population: DataFrame, orders: DataFrame, cutoff: dt.date, horizon_days: int) -> DataFrame:
    """Both labels at ``cutoff`` for every persona of ``population``.

    Args:
        population: DataFrame(persona_id): the personas that exist at the cutoff (e.g. the
            feature snapshot of that date).
        orders: :func:`segengine.models.clv.order_facts` (one row per order, local dates).
        cutoff: u; orders on this day are history, not label.
        horizon_days: N.

    Returns:
        DataFrame(persona_id, cutoff date, bought_before boolean, purchase_next int,
        churned int (null when not bought_before)).
    """
    day, end = F.col("order_date"), F.lit(cutoff + dt.timedelta(days=horizon_days))
    purchases = orders.filter(F.col("is_purchase") & (day <= end))
    history = purchases.groupBy("persona_id").agg(
        F.max(day <= F.lit(cutoff)).alias("bought_before"),
        F.max(day > F.lit(cutoff)).alias("bought_after"),
    )
    joined = population.select("persona_id").distinct().join(history, "persona_id", "left")
    before = F.coalesce(F.col("bought_before"), F.lit(False))
    after = F.coalesce(F.col("bought_after"), F.lit(False))
    return joined.select(
        "persona_id",
        F.lit(cutoff).alias("cutoff"),
        before.alias("bought_before"),
        after.cast("int").alias("purchase_next"),
        F.when(before, (~after).cast("int")).alias("churned"),
    )


def holdout_metrics(scored: DataFrame, score: str = "score", label: str = "label") -> dict[str, float]:
    """ROC AUC, PR AUC and the lift of the top decile of ``scored``.

    Args:
        scored: one row per persona with a numeric ``score`` and a 0/1 ``label``.

    Returns:
        ``{"roc_auc", "pr_auc", "top_decile_lift", "positive_rate", "rows"}``. The top
        decile is the rows scoring above the 90th percentile of the score (Spark's
        ``percentile_approx``, exact below 10,000 distinct scores; rows tied at the
        percentile are left out); its lift is its positive rate over the overall one.
    """
    rows = scored.select(F.col(score).cast("double").alias("score"), F.col(label).cast("double").alias("label"))
    totals = rows.agg(
        F.count("*").alias("n"),
        F.avg("label").alias("rate"),
        F.percentile_approx("score", 0.9, 10_000).alias("p90"),
    ).first()
    if not totals["n"]:
        raise ValueError("holdout_metrics: no rows to evaluate")
    top = rows.filter(F.col("score") > F.lit(totals["p90"])).agg(F.avg("label").alias("rate")).first()["rate"]

    def area(metric: str) -> float:
        evaluator = BinaryClassificationEvaluator(rawPredictionCol="score", labelCol="label", metricName=metric)
        return float(evaluator.evaluate(rows))

    rate = float(totals["rate"])
    if top is None:
        raise ValueError("holdout_metrics: no row scores above the 90th percentile (too few distinct scores)")
    return {
        "roc_auc": area("areaUnderROC"),
        "pr_auc": area("areaUnderPR"),
        "top_decile_lift": float(top) / rate if rate else float("nan"),
        "positive_rate": rate,
        "rows": int(totals["n"]),
    }


def calibration_curve(scored: DataFrame, score: str = "probability", label: str = "label") -> DataFrame:
    """Mean predicted probability against the observed rate, in fixed-width bins.

    Args:
        scored: one row per persona with a probability in [0, 1] and a 0/1 label.

    Returns:
        DataFrame(bin int 0..9, rows long, mean_predicted double, observed_rate double),
        one row per non-empty bin ``[b/10, (b+1)/10)`` (1.0 in the last bin), ordered.
    """
    p = F.col(score).cast("double")
    bin_ = F.least(F.floor(p * CALIBRATION_BINS), F.lit(CALIBRATION_BINS - 1)).cast("int")
    return (
        scored.select(bin_.alias("bin"), p.alias("p"), F.col(label).cast("double").alias("y"))
        .groupBy("bin")
        .agg(F.count("*").alias("rows"), F.avg("p").alias("mean_predicted"), F.avg("y").alias("observed_rate"))
        .orderBy("bin")
    )
