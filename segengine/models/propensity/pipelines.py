"""The propensity classifier, the RFM baseline and the isotonic calibration stage."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyspark.ml import Pipeline
from pyspark.ml.classification import GBTClassifier, LogisticRegression
from pyspark.ml.feature import SQLTransformer, VectorAssembler
from pyspark.ml.functions import vector_to_array
from pyspark.ml.regression import IsotonicRegression
from pyspark.sql import functions as F

from segengine.errors import ConfigError, ModelError
from segengine.features.catalog import CATALOG

if TYPE_CHECKING:
    from segengine.config import Config


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


def isotonic() -> IsotonicRegression:
    """Isotonic regression of the label on element 1 of the probability vector, output ``propensity``."""
    return IsotonicRegression(featuresCol=PROBABILITY, featureIndex=1, labelCol="label", predictionCol="propensity")
