"""Purchase propensity and churn risk: calibrated MLlib classifiers on a time split.

Two predictive traits (issue 41, item 1), each an MLlib ``GBTClassifier`` (or a logistic
regression, ``propensity.algorithm``) over catalog attributes, calibrated with isotonic
regression, registered in MLflow and gated like the other models:

* ``purchase_propensity_30d``: P(a purchase in the next ``propensity.horizon_days`` days)
  for every customer and prospect (visitors get null; the name keeps the default 30);
* ``churn_risk``: P(no purchase in the next ``propensity.churn_days`` days) for a
  customer who bought before (null for everyone else, who cannot churn).

Time split (S = the snapshot date, N = the horizon in days, K stacked cutoffs a month
apart; a label window ``(u, u + N]`` holds orders whose local order date is after day u
and up to and including day u + N, as in :mod:`segengine.models.clv`)::

    holdout : u = S - N: features at S - N, labels in (S - N, S]
    train   : u = S - 2N - j months (j = 0 .. K-1): every label ends by S - N, so no
              training label sees the holdout's days
    final   : u = S - N - j months (j = 0 .. K-1) (the windows a refit would use)
    scoring : features at S, the probability of the event in (S, S + N]

Labels, for the personas of the population at the cutoff:

* ``purchase_next``: 1 when the persona placed an order with a positive quantity in the
  label window, else 0 (every persona of the population: customers and prospects).
* ``churned``: only for personas who purchased on or before the cutoff: 1 when they did
  not purchase in the label window, else 0 (null for the others, who cannot churn).

Training rows are computed at each cutoff from the order lines and the personas
(:func:`propensity_features`: the CLV model's order features,
:func:`segengine.models.clv.customer_value_features`, which a test holds equal to the
feature table's, plus the persona type at the cutoff), never from data after the cutoff.
The model is fitted on the stacked training cutoffs only; the holdout judges it:

* ROC AUC, PR AUC and the top-decile lift (:func:`holdout_metrics`, in Spark, on every
  holdout row), the same for the **RFM baseline**: a logistic regression on recency
  (``ln(1 + days_since_last_purchase)``, 0 and a "never bought" flag without a purchase)
  and frequency (``ln(1 + frequency)``) alone, fitted on the same training rows;
* percentile bootstrap 95% intervals for both AUCs and for the paired difference
  model − baseline (the same Poisson resamples of the holdout rows for both), computed on
  a bounded, hash-drawn sample of at most ``propensity.eval_max_rows`` holdout rows;
* a 10-bin calibration table (:func:`calibration_curve`) before and after calibration,
  out of sample: the isotonic map is fitted on one half of the holdout (a stable hash of
  the persona) and the table is read on the other half.

Calibration: ``pyspark.ml.regression.IsotonicRegression`` fitted on the whole holdout's
model scores against its labels is the last stage of the registered pipeline, so the
stored probability is calibrated. The registered model is the one the holdout judged
(no refit on the final windows: the calibration map belongs to the scores of the model
it was fitted on, and a refit would have no later labels left to calibrate on).

Promotion (:func:`segengine.models.tracking.register_and_promote`): the metric is the
holdout ROC AUC of the uncalibrated score (higher is better); the current champion is
scored on the same holdout rows.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import numpy as np
from numpy.typing import NDArray
from pyspark import StorageLevel
from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.evaluation import BinaryClassificationEvaluator
from pyspark.ml.feature import SQLTransformer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import IsotonicRegression
from pyspark.sql import Window
from pyspark.sql import functions as F

from segengine.errors import ConfigError, ModelError
from segengine.features.catalog import CATALOG
from segengine.features.profile import profile_features
from segengine.features.snapshots import require_feature_partition
from segengine.features.windows import cycle_start
from segengine.models.clv import customer_value_features
from segengine.models.cutoffs import (
    FeatureBuilder,
    LabelWindow,
    history_text,
    money,
    one_row,
    order_facts,
    order_history_span,
    session_time_zone,
    shift_months,
    stack_cutoffs,
    window_text,
)
from segengine.models.tracking import (
    Validation,
    champion_version,
    configure_mlflow,
    load_version,
    log_spark_model,
    register_and_promote,
    score_champion,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

log = logging.getLogger(__name__)

CALIBRATION_BINS = 10


class PropensityWindows(TypedDict):
    """The (cutoff, label end) windows of each role, lists most recent first."""

    train: list[LabelWindow]
    holdout: LabelWindow
    final: list[LabelWindow]


def propensity_windows(snapshot_date: dt.date, horizon_days: int, cutoffs: int = 6) -> PropensityWindows:
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

    def windows(last_cutoff: dt.date) -> list[LabelWindow]:
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


# ------------------------------------------------------------------ targets and inputs


@dataclass(frozen=True)
class Target:
    """One propensity model: its label, population, output columns and config fields."""

    key: str  # purchase | churn
    label: str  # the column of :func:`propensity_labels`
    column: str  # the catalog attribute scoring writes
    percentile: str  # its percentile among the scored personas (0-100)
    population: tuple[str, ...]  # persona types the model learns and scores
    horizon_field: str  # the ``propensity`` field holding N
    model_field: str  # the ``propensity`` field holding the registered model name

    def horizon(self, config: Config) -> int:
        return int(getattr(config.propensity, self.horizon_field))

    def model_name(self, config: Config) -> str:
        return str(getattr(config.propensity, self.model_field))


TARGETS: tuple[Target, ...] = (
    Target(
        "purchase",
        "purchase_next",
        "purchase_propensity_30d",
        "purchase_propensity_30d_pct",
        ("customer", "prospect"),
        "horizon_days",
        "purchase_model_name",
    ),
    Target("churn", "churned", "churn_risk", "churn_risk_pct", ("customer",), "churn_days", "churn_model_name"),
)
OUTPUT_COLUMNS: tuple[str, ...] = tuple(c for t in TARGETS for c in (t.column, t.percentile))

# The model's inputs, in order: (input name, SQL expression over catalog columns, the
# catalog columns it reads, customers only), as in :data:`segengine.models.clv.CLV_INPUTS`.
# Per-cycle values, recencies and rates only: lifetime totals and tenure grow with the
# recorded history, so earlier cutoffs would never show the values scoring meets. An
# input "customers only" describes purchases: it is missing for everyone else.
PROPENSITY_INPUTS: tuple[tuple[str, str, tuple[str, ...], bool], ...] = (
    ("recency_days", "`recency_days`", ("recency_days",), True),
    ("frequency", "`frequency`", ("frequency",), True),
    ("monetary", "`monetary`", ("monetary",), True),
    ("days_since_last_purchase", "`days_since_last_purchase`", ("days_since_last_purchase",), True),
    ("avg_basket_value", "`avg_basket_value`", ("avg_basket_value",), True),
    ("items_cycle", "`items_cycle`", ("items_cycle",), True),
    # Purchases and net spend per 30 days since the first purchase (at least one month).
    (
        "orders_30d",
        "`orders_lifetime` / greatest(`tenure_days` + 1, 30) * 30",
        ("orders_lifetime", "tenure_days"),
        True,
    ),
    (
        "lifetime_spend_30d",
        "`revenue_lifetime` / greatest(`tenure_days` + 1, 30) * 30",
        ("revenue_lifetime", "tenure_days"),
        True,
    ),
    # Days since the last purchase over the customer's mean gap between purchases.
    (
        "overdue_ratio",
        "`days_since_last_purchase` * greatest(`orders_lifetime` - 1, 1) / greatest(`tenure_days`, 1)",
        ("days_since_last_purchase", "orders_lifetime", "tenure_days"),
        True,
    ),
    # Spend in this cycle against the one before: a customer slowing down.
    ("revenue_prev_cycle", "`revenue_prev_cycle`", ("revenue_prev_cycle",), True),
    ("spend_change", "`monetary` - `revenue_prev_cycle`", ("monetary", "revenue_prev_cycle"), True),
    # The persona, for customers and prospects alike.
    ("days_since_created", "`days_since_created`", ("days_since_created",), False),
    ("consent_email", "CAST(`consent_email` AS INT)", ("consent_email",), False),
    ("is_b2b", "CAST(`is_b2b` AS INT)", ("is_b2b",), False),
    ("cutoff_month", "month(`snapshot_date`)", ("snapshot_date",), False),
)
# The RFM baseline: recency and frequency alone (log scale, a flag for "never bought").
BASELINE_INPUTS: tuple[tuple[str, str], ...] = (
    ("recency", "ln(1 + coalesce(`days_since_last_purchase`, 0))"),
    ("never_bought", "CASE WHEN `days_since_last_purchase` IS NULL THEN 1 ELSE 0 END"),
    ("frequency", "ln(1 + coalesce(`frequency`, 0))"),
)
BASELINE_COLUMNS = ("persona_type", "days_since_last_purchase", "frequency")
# Missing values (a prospect has no purchase to measure) become this sentinel for the trees.
MISSING = -1.0
VALIDATION_METRIC = "holdout_roc_auc"
PROBABILITY = "propensity_probability"  # the classifier's probability vector (element 1: the event)


def propensity_inputs(available: Sequence[str] | None = None) -> list[tuple[str, str, tuple[str, ...], bool]]:
    """The :data:`PROPENSITY_INPUTS` whose columns are all in the catalog and in ``available``."""
    inputs = [
        item
        for item in PROPENSITY_INPUTS
        if all(c in CATALOG and (available is None or c in available) for c in item[2])
    ]
    if not inputs:
        raise ModelError("propensity: none of the model inputs' columns is in the catalog and the feature rows")
    return inputs


def propensity_feature_columns(available: Sequence[str] | None = None) -> list[str]:
    """The catalog columns the propensity models read, in input order (persona_type first)."""
    cols = ["persona_type", *[c for c in BASELINE_COLUMNS if c != "persona_type"]]
    for _, _, sources, _ in propensity_inputs(available):
        cols.extend(c for c in sources if c not in cols)
    return cols


def _customer_only(expr: str) -> str:
    # Non-customers have no purchase to measure; the feature table stores 0 or null for
    # them depending on the column, the training rows null: both become the same value.
    return f"CASE WHEN `persona_type` = 'customer' THEN CAST({expr} AS DOUBLE) END"


def classifier_pipeline(config: Config, features: Sequence[str]) -> Pipeline:
    """An unfitted pipeline: derive inputs → assemble → GBT (or logistic) classifier.

    Its output ``propensity_probability`` is the probability vector (element 1: the event).
    """
    cfg = config.propensity
    exprs = [
        (name, _customer_only(expr) if customers_only else f"CAST({expr} AS DOUBLE)")
        for name, expr, _, customers_only in propensity_inputs(features)
    ]
    # Expressions and identifiers are this module's constants, never user input.
    prep = SQLTransformer(
        statement="SELECT *, "
        + ", ".join(f"coalesce({expr}, {MISSING}D) AS `propensity_in_{name}`" for name, expr in exprs)
        + ", CASE WHEN `persona_type` = 'customer' THEN 1D ELSE 0D END AS `propensity_in_is_customer`"
        + " FROM __THIS__"
    )
    inputs = ["propensity_in_is_customer", *[f"propensity_in_{name}" for name, _ in exprs]]
    assembler = VectorAssembler(inputCols=inputs, outputCol="propensity_features")
    common = {"featuresCol": "propensity_features", "labelCol": "label", "predictionCol": "propensity_class"}
    clf: GBTClassifier | LogisticRegression
    if cfg.algorithm == "gbt":
        clf = GBTClassifier(
            maxIter=cfg.max_iter,
            maxDepth=cfg.max_depth,
            stepSize=cfg.step_size,
            minInstancesPerNode=cfg.min_instances_per_node,
            seed=cfg.seed,
            featuresCol=common["featuresCol"],
            labelCol=common["labelCol"],
            predictionCol=common["predictionCol"],
        )
    elif cfg.algorithm == "logistic":
        clf = LogisticRegression(
            regParam=cfg.reg_param,
            maxIter=100,
            featuresCol=common["featuresCol"],
            labelCol=common["labelCol"],
            predictionCol=common["predictionCol"],
        )
    else:
        raise ConfigError(f"propensity.algorithm: expected gbt or logistic, got {cfg.algorithm!r}")
    # Not every classifier's constructor takes these two; each has the setters.
    clf.setRawPredictionCol("propensity_raw").setProbabilityCol(PROBABILITY)
    return Pipeline(stages=[prep, assembler, clf])


def baseline_pipeline(config: Config) -> Pipeline:
    """The RFM baseline: a logistic regression on recency and frequency alone (``rfm_probability``)."""
    prep = SQLTransformer(
        statement="SELECT *, "
        + ", ".join(f"CAST({_customer_only(expr)} AS DOUBLE) AS `rfm_in_{name}`" for name, expr in BASELINE_INPUTS)
        + " FROM __THIS__"
    )
    fill = SQLTransformer(
        statement="SELECT *, "
        + ", ".join(
            f"coalesce(`rfm_in_{name}`, {1 if name == 'never_bought' else 0}D) AS `rfm_x_{name}`"
            for name, _ in BASELINE_INPUTS
        )
        + " FROM __THIS__"
    )
    assembler = VectorAssembler(inputCols=[f"rfm_x_{name}" for name, _ in BASELINE_INPUTS], outputCol="rfm_features")
    lr = LogisticRegression(
        featuresCol="rfm_features",
        labelCol="label",
        predictionCol="rfm_class",
        rawPredictionCol="rfm_raw",
        probabilityCol="rfm_probability",
        maxIter=100,
        regParam=0.0,
    )
    return Pipeline(stages=[prep, fill, assembler, lr])


def event_probability(column: str) -> Any:
    """Element 1 of a probability vector column, as a double."""
    return vector_to_array(F.col(column)).getItem(1)


# ------------------------------------------------------------------ training rows


def propensity_features(
    orders: DataFrame, personas: DataFrame, cutoff: dt.date, cycle_months: int, tz: str, session_tz: str
) -> DataFrame:
    """Every persona that exists at ``cutoff`` with the catalog columns the models read, as then.

    The feature catalog's definitions (``docs/features.md``) computed from the order
    lines and personas only: the CLV model's order features
    (:func:`segengine.models.clv.customer_value_features`), the net revenue of the cycle
    before the current one, and the persona's profile columns
    (:func:`segengine.features.profile.profile_features`). A test holds them equal to the
    feature table's.

    Args:
        orders: :func:`segengine.models.clv.order_facts`.
        personas: bronze personas (a persona exists from its local creation date on).
        cutoff: the date the features describe (data up to the end of that day).
        cycle_months: ``features.cycle_months``.
        tz: ``features.timezone``.
        session_tz: the session time zone.

    Returns:
        persona_id, snapshot_date, persona_type (customer: a purchase on or before the
        cutoff; prospect: an email or phone; else visitor), days_since_created,
        consent_email, is_b2b, revenue_prev_cycle and the columns of
        :func:`segengine.models.clv.customer_value_features` (the order columns are
        null for non-customers).
    """
    value = customer_value_features(orders, personas, cutoff, cycle_months, tz, session_tz).drop(
        "snapshot_date", "persona_type"
    )
    current = cycle_start(cutoff, cycle_months)
    previous = cycle_start(current, cycle_months)
    day = F.col("order_date")
    prev = (
        orders.where((day >= F.lit(previous)) & (day < F.lit(current)))
        .groupBy("persona_id")
        .agg(F.sum("net_micros").alias("_prev_micros"))
    )
    profile = profile_features(personas, cutoff, tz, session_tz).select(
        "persona_id", "days_since_created", "consent_email", "is_b2b", "has_email", "has_phone"
    )
    customer = F.col("orders_lifetime").isNotNull()
    kind = F.when(customer, "customer").when(F.col("has_email") | F.col("has_phone"), "prospect").otherwise("visitor")
    micros = F.coalesce(F.col("_prev_micros"), F.lit(0).cast("long"))
    revenue_prev = F.when(customer, money(micros))
    joined = profile.join(value, "persona_id", "left").join(prev, "persona_id", "left")
    rest = [c for c in value.columns if c != "persona_id"]
    return joined.select(
        "persona_id",
        F.lit(cutoff).alias("snapshot_date"),
        kind.alias("persona_type"),
        "days_since_created",
        "consent_email",
        "is_b2b",
        revenue_prev.alias("revenue_prev_cycle"),
        *rest,
    )


def labelled_rows(
    features: DataFrame, orders: DataFrame, cutoff: dt.date, horizon_days: int, target: Target
) -> DataFrame:
    """The target's population at ``cutoff`` with its 0/1 ``label`` (double) in ``(cutoff, cutoff + N]``.

    Args:
        features: rows built at ``cutoff`` (:func:`propensity_features` or the feature table).
        orders: :func:`segengine.models.clv.order_facts`.
        cutoff: the features' snapshot date.
        horizon_days: N.
        target: which label and population.

    Returns:
        The population's feature rows plus ``label``.
    """
    population = features.where(F.col("persona_type").isin(*target.population))
    labels = propensity_labels(population, orders, cutoff, horizon_days)
    return population.join(
        labels.select("persona_id", F.col(target.label).cast("double").alias("label")), "persona_id"
    ).where(F.col("label").isNotNull())


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


def isotonic() -> IsotonicRegression:
    """Isotonic regression of the label on element 1 of the probability vector, output ``propensity``."""
    return IsotonicRegression(featuresCol=PROBABILITY, featureIndex=1, labelCol="label", predictionCol="propensity")


def scored_holdout(model: PipelineModel, baseline: PipelineModel | None, holdout: DataFrame) -> DataFrame:
    """persona_id, label, the probability vector, ``_score`` (model) and ``_base`` (baseline) of the holdout."""
    out = model.transform(holdout)
    cols = ["persona_id", "label", PROBABILITY, event_probability(PROBABILITY).alias("_score")]
    if baseline is not None:
        out = baseline.transform(out)
        cols.append(event_probability("rfm_probability").alias("_base"))
    return out.select(*cols)


# ------------------------------------------------------------------ training


def train_propensity(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    feature_builder: FeatureBuilder | None = None,
    force_promote: bool = False,
) -> dict[str, Any]:
    """Train, evaluate, calibrate and register both propensity models (gated).

    Args:
        spark: the session.
        lake: the storage layer (order_lines for the labels, personas).
        config: ``propensity`` and ``features`` (cycle_months, timezone).
        snapshot_date: S (see the module docstring for the windows).
        feature_builder: builds the feature rows as of a cutoff (every persona, with
            ``persona_type``); default :func:`propensity_features` of the cached orders.
            Called once per distinct cutoff.
        force_promote: make the new versions the champions whatever their holdout AUC.

    Returns:
        Summary per model (``models``: windows, rows, holdout metrics of the model and
        the baseline with bootstrap intervals, calibration tables, version) and
        ``promotion`` per model.

    Raises:
        ModelError: the holdout cutoff is before the first order, a model has no rows to
            learn from, or its training rows hold one class only.
    """
    cfg = config.propensity
    for t in TARGETS:
        propensity_windows(snapshot_date, t.horizon(config), cfg.train_cutoffs)  # config errors first
    configure_mlflow(config)
    cycle, tz = config.features.cycle_months, config.features.timezone
    session_tz = session_time_zone(spark)
    orders = order_facts(lake.read("order_lines"), tz, session_tz).persist(StorageLevel.MEMORY_AND_DISK)
    built: dict[dt.date, DataFrame] = {}
    try:
        first_day, last_day = order_history_span(orders)
        if feature_builder is None:
            personas = lake.read("personas")

            def default_builder(_spark: SparkSession, _lake: Lake, _config: Config, cutoff: dt.date) -> DataFrame:
                return propensity_features(orders, personas, cutoff, cycle, tz, session_tz)

            builder: FeatureBuilder = default_builder
        else:
            builder = feature_builder

        def features_at(cutoff: dt.date) -> DataFrame:
            if cutoff not in built:
                built[cutoff] = builder(spark, lake, config, cutoff).persist(StorageLevel.MEMORY_AND_DISK)
            return built[cutoff]

        models = {}
        for target in TARGETS:
            models[target.key] = _train_target(
                spark, config, target, snapshot_date, features_at, orders, (first_day, last_day), force_promote
            )
    finally:
        for df in built.values():
            df.unpersist()
        orders.unpersist()
    return {
        "snapshot_date": str(snapshot_date),
        "train_rows": sum(m["train_rows"] for m in models.values()),
        "models": models,
        "promotion": {k: m["promotion"] for k, m in models.items()},
    }


def _train_target(
    spark: SparkSession,
    config: Config,
    target: Target,
    snapshot_date: dt.date,
    features_at: Callable[[dt.date], DataFrame],
    orders: DataFrame,
    history: tuple[dt.date | None, dt.date | None],
    force_promote: bool,
) -> dict[str, Any]:
    import mlflow
    import mlflow.spark

    cfg = config.propensity
    horizon = target.horizon(config)
    name = target.model_name(config)
    windows = propensity_windows(snapshot_date, horizon, cfg.train_cutoffs)
    holdout_cutoff = windows["holdout"][0]
    first_day, last_day = history
    what = f"propensity {target.key} ({target.column})"
    if first_day is None or first_day > holdout_cutoff:
        span = history_text(first_day, last_day)
        raise ModelError(
            f"{what}: the holdout cutoff {holdout_cutoff.isoformat()} (snapshot {snapshot_date.isoformat()} minus "
            f"propensity.{target.horizon_field}={horizon}) is before the first order (order history: {span}); "
            "use a later snapshot date"
        )
    roles = [windows["holdout"], *windows["train"]]
    common = set.intersection(*(set(features_at(c).columns) for c, _ in roles))
    features = propensity_feature_columns(sorted(common))
    labelled: dict[dt.date, DataFrame] = {}
    scored = None
    try:
        for c, _ in roles:
            rows = labelled_rows(features_at(c), orders, c, horizon, target)
            labelled[c] = rows.select("persona_id", "label", *features, F.lit(c).alias("_cutoff")).persist(
                StorageLevel.MEMORY_AND_DISK
            )
        counts = {
            c: one_row(df.agg(F.count(F.lit(1)).alias("n"), F.sum("label").alias("pos"))) for c, df in labelled.items()
        }
        n_train = sum(int(counts[c]["n"]) for c, _ in windows["train"])
        pos_train = sum(int(counts[c]["pos"] or 0) for c, _ in windows["train"])
        n_holdout = int(counts[holdout_cutoff]["n"])
        if n_train == 0 or n_holdout == 0:
            per_window = ", ".join(f"{window_text(w)}: {int(counts[w[0]]['n'])}" for w in windows["train"])
            raise ModelError(
                f"{what}: no rows to learn from (rows per train window {per_window}; holdout window "
                f"{window_text(windows['holdout'])}: {n_holdout}); the order history is "
                f"{history_text(first_day, last_day)}: use fewer propensity.train_cutoffs "
                "or a later snapshot date"
            )
        if pos_train in (0, n_train):
            raise ModelError(
                f"{what}: the {n_train} training rows all have label {1 if pos_train else 0} "
                f"(train windows {window_text(windows['train'][-1])} .. {window_text(windows['train'][0])}): "
                "nothing to learn; use more propensity.train_cutoffs or a later snapshot date"
            )
        train = stack_cutoffs([labelled[c] for c, _ in windows["train"]], spark.sparkContext.defaultParallelism)
        champion = champion_version(config, name)  # resolved once, before training
        model = classifier_pipeline(config, features).fit(train)
        baseline = baseline_pipeline(config).fit(train)
        holdout = labelled[holdout_cutoff]
        scored = scored_holdout(model, baseline, holdout).persist(StorageLevel.MEMORY_AND_DISK)
        metrics = {"model": holdout_metrics(scored, "_score"), "rfm_baseline": holdout_metrics(scored, "_base")}
        sample = bounded_sample(scored, ["persona_id", "label", "_score", "_base"], cfg.eval_max_rows, cfg.seed)
        intervals = paired_auc_bootstrap(
            sample["label"].to_numpy(),
            sample["_score"].to_numpy(),
            sample["_base"].to_numpy(),
            cfg.eval_bootstrap_resamples,
            cfg.eval_bootstrap_seed,
        )
        difference = metrics["model"]["roc_auc"] - metrics["rfm_baseline"]["roc_auc"]
        calibration = calibration_tables(scored, cfg.seed)
        calibrator = isotonic().fit(scored)
        out = SQLTransformer(statement="SELECT *, propensity AS prediction FROM __THIS__")
        final = PipelineModel(stages=[*model.stages, calibrator, out])

        def champion_auc(mv: Any) -> float:
            loaded = mlflow.spark.load_model(f"models:/{mv.name}/{mv.version}")
            return holdout_metrics(scored_holdout(loaded, None, holdout), "_score")["roc_auc"]

        champ_version, champ_auc, note = score_champion(champion, champion_auc)
        # Customers first: their columns are filled, so the signature sees every type.
        example_rows = (
            holdout.select("persona_id", *features)
            .orderBy(F.col("persona_type") != F.lit("customer"), "persona_id")
            .limit(5)
        )
        example = example_rows.toPandas()
        output = final.transform(example_rows).select("propensity").toPandas()
        evaluation = {
            "holdout": metrics,
            "roc_auc_difference": difference,
            "bootstrap": intervals,
            "calibration": calibration,
        }
        with mlflow.start_run(run_name=f"propensity {target.key} {snapshot_date}"):
            mlflow.log_params(
                {
                    "snapshot_date": str(snapshot_date),
                    "target": target.key,
                    "horizon_days": horizon,
                    "algorithm": cfg.algorithm,
                    "max_depth": cfg.max_depth,
                    "max_iter": cfg.max_iter,
                    "step_size": cfg.step_size,
                    "min_instances_per_node": cfg.min_instances_per_node,
                    "reg_param": cfg.reg_param,
                    "seed": cfg.seed,
                    "train_cutoffs": len(windows["train"]),
                    "train_window": f"{windows['train'][-1][0]}..{windows['train'][0][1]}",
                    "holdout_window": f"{windows['holdout'][0]}..{windows['holdout'][1]}",
                    "features": ",".join(features),
                    "calibration": "isotonic",
                    "bootstrap_resamples": cfg.eval_bootstrap_resamples,
                }
            )
            mlflow.log_metrics({"train_rows": n_train, "train_positives": pos_train, "holdout_rows": n_holdout})
            for who, m in metrics.items():
                mlflow.log_metrics({f"holdout_{who}_{k}": v for k, v in m.items() if k != "rows"})
            mlflow.log_metrics(
                {
                    "holdout_roc_auc_difference": difference,
                    "holdout_model_roc_auc_ci_low": intervals["model"][0],
                    "holdout_model_roc_auc_ci_high": intervals["model"][1],
                    "holdout_rfm_baseline_roc_auc_ci_low": intervals["baseline"][0],
                    "holdout_rfm_baseline_roc_auc_ci_high": intervals["baseline"][1],
                    "holdout_roc_auc_difference_ci_low": intervals["difference"][0],
                    "holdout_roc_auc_difference_ci_high": intervals["difference"][1],
                }
            )
            mlflow.log_dict(evaluation, "evaluation.json")
            info = log_spark_model(final, example, features, output)
        validation = Validation(
            metric=VALIDATION_METRIC,
            value=metrics["model"]["roc_auc"],
            higher_is_better=True,
            champion_version=champ_version,
            champion_value=champ_auc,
            note=note,
        )
        promotion = register_and_promote(
            config,
            info.model_uri,
            name,
            features,
            validation,
            force=force_promote,
            tags={"segengine.snapshot_date": str(snapshot_date), "segengine.target": target.key},
        )
    finally:
        if scored is not None:
            scored.unpersist()
        for df in labelled.values():
            df.unpersist()
    return {
        "model": name,
        "version": promotion.version,
        "column": target.column,
        "horizon_days": horizon,
        "windows": {
            "train": [[str(a), str(b)] for a, b in windows["train"]],
            "holdout": [str(d) for d in windows["holdout"]],
        },
        "features": features,
        "train_rows": n_train,
        "train_positives": pos_train,
        "holdout_rows": n_holdout,
        **evaluation,
        "promotion": promotion.as_dict(),
    }


# ------------------------------------------------------------------ scoring


def apply_propensity_model(features: DataFrame, model: PipelineModel, target: Target) -> DataFrame:
    """The target's calibrated probability and its percentile (0-100) for its population.

    The percentile ranks the classifier's own score, before calibration: isotonic
    calibration is a step function (many personas share a step, so a percentile of it
    would jump by whole steps), and it never reverses the order of two scores, so the
    percentile and the probability rank the personas alike.

    Args:
        features: one ``customer_features`` partition.
        model: the registered pipeline (classifier, then isotonic calibration).
        target: which population and columns.

    Returns:
        DataFrame(persona_id, <column> double, <percentile> double), one row per persona
        of the population (customers and prospects, or customers).
    """
    population = features.where(F.col("persona_type").isin(*target.population))
    p = F.least(F.greatest(F.col("propensity").cast("double"), F.lit(0.0)), F.lit(1.0))
    scored = model.transform(population).select(
        "persona_id", p.alias(target.column), event_probability(PROBABILITY).alias("_raw")
    )
    # One global ordering, as the CLV percentile: a single sort of (id, double) pairs.
    rank = F.percent_rank().over(Window.orderBy("_raw")) * F.lit(100.0)
    return scored.select("persona_id", target.column, rank.alias(target.percentile))


def load_propensity_champion(config: Config, target: Target) -> Any:
    """The champion of ``target``'s model, or a one-line :class:`ModelError` saying how to train it."""
    name = target.model_name(config)
    mv = champion_version(config, name)
    if mv is None:
        raise ModelError(
            f"no registered model {name}@{config.mlflow.champion_alias} (needed for {target.column}): train it "
            "first with `segengine train propensity --date YYYY-MM-DD`"
        )
    return load_version(config, mv)


def score_propensity(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """Write purchase_propensity_30d, churn_risk and their percentiles into the date's feature partition.

    Loads both champions (a missing one is a :class:`ModelError` naming the model and the
    command that trains it), fills the four columns (null outside each population) and
    replaces the partition in one commit; a table written before these attributes were in
    the catalog gains them as nullable columns.

    Args:
        spark: the session.
        lake: the storage layer.
        config: the configuration.
        snapshot_date: the feature partition to score.

    Returns:
        Summary: model versions, table version, personas scored per model, mean probability.
    """
    require_feature_partition(lake, snapshot_date)  # never score (and write) a missing snapshot
    configure_mlflow(config)
    loaded = {t.key: load_propensity_champion(config, t) for t in TARGETS}
    features = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    for t in TARGETS:
        missing = [c for c in loaded[t.key].features if c not in features.columns]
        if missing:
            m = loaded[t.key]
            raise ModelError(
                f"model {m.name} version {m.version} needs column(s) {', '.join(missing)} "
                f"that customer_features for {snapshot_date} lacks"
            )
    base = features.drop(*[c for c in OUTPUT_COLUMNS if c in features.columns])
    out = base
    for t in TARGETS:
        out = out.join(apply_propensity_model(features, loaded[t.key].model, t), "persona_id", "left")
    order = list(features.columns) + [c for c in OUTPUT_COLUMNS if c not in features.columns]
    scored = out.select(*[F.col(c).cast("double").alias(c) if c in OUTPUT_COLUMNS else F.col(c) for c in order])
    scored = scored.persist(StorageLevel.MEMORY_AND_DISK)
    try:
        aggs = []
        for t in TARGETS:
            aggs += [F.count(t.column).alias(f"{t.key}_n"), F.avg(t.column).alias(f"{t.key}_mean")]
        row = one_row(scored.agg(*aggs))
        evolve = any(c not in features.columns for c in OUTPUT_COLUMNS)
        version = lake.write(
            scored,
            "customer_features",
            mode="overwrite",
            replace_partitions={"snapshot_date": snapshot_date},
            evolve_schema=evolve,
        )
    finally:
        scored.unpersist()
    return {
        "snapshot_date": str(snapshot_date),
        "table_version": version,
        "scored": int(row["purchase_n"]),
        "models": {
            t.key: {
                "model": loaded[t.key].name,
                "model_version": loaded[t.key].version,
                "column": t.column,
                "personas_scored": int(row[f"{t.key}_n"]),
                "mean_probability": float(row[f"{t.key}_mean"]) if row[f"{t.key}_mean"] is not None else None,
            }
            for t in TARGETS
        },
    }
