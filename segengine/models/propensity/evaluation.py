"""Holdout evaluation of a propensity model: AUCs, lift, bootstrap intervals and calibration tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from numpy.typing import NDArray
from pyspark.ml import PipelineModel
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.sql import functions as F

from segengine.frames import one_row
from segengine.models.propensity.pipelines import PROBABILITY, event_probability, isotonic

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


CALIBRATION_BINS = 10


def holdout_metrics(scored: DataFrame, score: str = "score", label: str = "label") -> dict[str, float]:
    """ROC AUC, PR AUC and the lift of the top decile of ``scored``.

    Args:
        scored: one row per persona with a numeric ``score`` and a 0/1 ``label``.

    Returns:
        ``{"roc_auc", "pr_auc", "top_decile_lift", "positive_rate", "rows"}``. The top
        decile is the rows scoring above the 90th percentile of the score (Spark's
        ``percentile_approx``, exact below 10,000 distinct scores; rows tied at the
        percentile are left out); its lift is its positive rate over the overall one.
        The areas are NaN when the labels hold one class only, the lift when no row
        scores above the percentile (too few distinct scores).

    Raises:
        ValueError: no rows.
    """
    rows = scored.select(F.col(score).cast("double").alias("score"), F.col(label).cast("double").alias("label"))
    totals = one_row(
        rows.agg(
            F.count("*").alias("n"),
            F.avg("label").alias("rate"),
            F.sum("label").alias("positives"),
            F.percentile_approx("score", 0.9, 10_000).alias("p90"),
        )
    )
    if not totals["n"]:
        raise ValueError("holdout_metrics: no rows to evaluate")
    top = one_row(rows.filter(F.col("score") > F.lit(totals["p90"])).agg(F.avg("label").alias("rate")))["rate"]
    both_classes = 0 < totals["positives"] < totals["n"]

    def area(metric: Literal["areaUnderROC", "areaUnderPR"]) -> float:
        if not both_classes:
            return float("nan")
        evaluator = BinaryClassificationEvaluator(rawPredictionCol="score", labelCol="label", metricName=metric)
        return float(evaluator.evaluate(rows))

    rate = float(totals["rate"])
    return {
        "roc_auc": area("areaUnderROC"),
        "pr_auc": area("areaUnderPR"),
        "top_decile_lift": float(top) / rate if rate and top is not None else float("nan"),
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


# ------------------------------------------------------------------ evaluation


def bounded_sample(df: DataFrame, columns: Sequence[str], max_rows: int, seed: int) -> Any:
    """At most ``max_rows`` rows of ``df`` as pandas, drawn by a stable hash of the persona.

    The same rows come back whatever the partitioning (no ``rand()``); the driver never
    holds more than ``max_rows`` rows, however many personas there are.
    """
    n = df.count()
    share = min(1.0, max_rows / n) if n else 1.0
    u = F.pmod(F.xxhash64("persona_id", F.lit(seed)), F.lit(2**53)).cast("double") / F.lit(float(2**53))
    picked = df.select(*columns, u.alias("_u")).where(F.col("_u") < F.lit(share)).orderBy("_u", "persona_id")
    return picked.limit(int(max_rows)).drop("_u").toPandas()


def _tie_groups(score: NDArray[Any]) -> tuple[NDArray[Any], int]:
    _, inverse = np.unique(score, return_inverse=True)  # groups in ascending score order
    return inverse.ravel(), int(inverse.max()) + 1 if inverse.size else 0


def weighted_auc(groups: tuple[NDArray[Any], int], y: NDArray[Any], w: NDArray[Any]) -> float:
    """ROC AUC with row weights: P(score of a positive > score of a negative), ties count half.

    ``groups`` is :func:`_tie_groups` of the scores, computed once for every resample
    (scikit-learn's ``roc_auc_score`` sorts again at each call; the bootstrap calls this
    hundreds of times on the same scores).
    """
    inverse, n = groups
    pos = np.bincount(inverse, weights=w * y, minlength=n)
    neg = np.bincount(inverse, weights=w * (1.0 - y), minlength=n)
    total_pos, total_neg = pos.sum(), neg.sum()
    if total_pos <= 0 or total_neg <= 0:
        return float("nan")
    below = np.cumsum(neg) - neg
    return float((pos * (below + 0.5 * neg)).sum() / (total_pos * total_neg))


def paired_auc_bootstrap(
    y: NDArray[Any], model: NDArray[Any], baseline: NDArray[Any], resamples: int, seed: int
) -> dict[str, Any]:
    """Percentile bootstrap 95% intervals of both AUCs and of their paired difference.

    Each resample weights every row by a Poisson(1) draw (seeded); the model and the
    baseline are scored on the same weights, so the difference's interval is paired.

    Returns:
        ``{"model": [lo, hi], "baseline": [lo, hi], "difference": [lo, hi], "resamples",
        "rows"}`` (NaN bounds without both classes).
    """
    y = np.asarray(y, dtype=float)
    gm, gb = _tie_groups(np.asarray(model, dtype=float)), _tie_groups(np.asarray(baseline, dtype=float))
    rng = np.random.default_rng(seed)
    out = np.full((max(resamples, 0), 2), np.nan)
    for r in range(resamples):
        w = rng.poisson(1.0, y.size).astype(float)
        out[r] = weighted_auc(gm, y, w), weighted_auc(gb, y, w)

    def interval(values: NDArray[Any]) -> list[float]:
        values = values[~np.isnan(values)]
        if values.size == 0:
            return [float("nan"), float("nan")]
        return [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]

    return {
        "model": interval(out[:, 0]),
        "baseline": interval(out[:, 1]),
        "difference": interval(out[:, 0] - out[:, 1]),
        "resamples": int(resamples),
        "rows": int(y.size),
    }


def _curve_rows(df: DataFrame, score: str) -> list[dict[str, Any]]:
    # At most CALIBRATION_BINS rows.
    return [r.asDict() for r in calibration_curve(df, score=score).collect()]


def calibration_tables(scored: DataFrame, seed: int) -> dict[str, Any]:
    """The calibration table before and after isotonic calibration, out of sample.

    The isotonic map is fitted on one half of ``scored`` (a stable hash of the persona)
    and both tables are read on the other half.

    Args:
        scored: persona_id, label, ``_score`` and the probability vector.
        seed: the hash seed of the split.
    """
    half = F.pmod(F.xxhash64("persona_id", F.lit(seed)), F.lit(2)) == F.lit(0)
    fit_half, read_half = scored.where(half), scored.where(~half)
    if fit_half.limit(1).count() == 0 or read_half.limit(1).count() == 0:
        return {"raw": [], "calibrated": [], "note": "too few rows to split"}
    iso = isotonic().fit(fit_half)
    read = iso.transform(read_half)
    return {"raw": _curve_rows(read, "_score"), "calibrated": _curve_rows(read, "propensity")}


def scored_holdout(model: PipelineModel, baseline: PipelineModel | None, holdout: DataFrame) -> DataFrame:
    """persona_id, label, the probability vector, ``_score`` (model) and ``_base`` (baseline) of the holdout."""
    out = model.transform(holdout)
    cols = ["persona_id", "label", PROBABILITY, event_probability(PROBABILITY).alias("_score")]
    if baseline is not None:
        out = baseline.transform(out)
        cols.append(event_probability("rfm_probability").alias("_base"))
    return out.select(*cols)
