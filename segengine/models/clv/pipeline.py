"""The CLV pipeline: the regressor (or BG/NBD alone), its BG/NBD stage and the holdout metrics."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyspark.ml import Pipeline, PipelineModel
from pyspark.ml.feature import SQLTransformer, VectorAssembler
from pyspark.ml.regression import GBTRegressor, RandomForestRegressor
from pyspark.sql import functions as F

from segengine.errors import ConfigError, ModelError
from segengine.models.btyd import SUMMARY_COLUMNS, BtydModel, btyd_summary, fit_bgnbd, fit_gamma_gamma
from segengine.models.clv.features import clv_inputs

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from segengine.config import Config

log = logging.getLogger(__name__)


# BG/NBD + Gamma-Gamma predictions (:class:`segengine.models.btyd.BtydModel`, first stage
# of the pipeline) the regressor reads when ``clv.btyd_inputs``: (input name, expression).
BTYD_INPUTS: tuple[tuple[str, str], ...] = (
    ("btyd_expected_transactions", "`btyd_expected_transactions`"),
    ("btyd_p_alive", "`btyd_p_alive`"),
    ("btyd_expected_value", "`btyd_expected_value`"),
    ("btyd_expected_spend", "`btyd_expected_spend`"),
)
# The Gamma-Gamma q is constrained to at least this when the free fit gives q <= 1.
GG_Q_MIN = 2.0
# Missing values (e.g. recency without a purchase in the cycle) become this sentinel:
# trees split it off cleanly (counts and days are never negative; a net amount below
# -1 needs refunds exceeding purchases, rare enough to share the branch).
MISSING = -1.0


def clv_pipeline(config: Config, features: Sequence[str], btyd: BtydModel | None = None) -> Any:
    """An unfitted pipeline: [BG/NBD stage] → derive inputs → assemble → GBT or random forest.

    With ``clv.algorithm: bgnbd`` the pipeline is the BG/NBD + Gamma-Gamma stage alone:
    the prediction is its expected spend in the next cycle.

    Args:
        config: the ``clv`` section.
        features: the catalog columns available (:func:`clv_feature_columns`).
        btyd: a fitted :class:`BtydModel` (needed by ``bgnbd`` and ``clv.btyd_inputs``):
            its predictions become inputs of the regressor.
    """
    cfg = config.clv
    if cfg.algorithm == "bgnbd":
        if btyd is None:
            raise ModelError("CLV: clv.algorithm bgnbd needs a fitted BG/NBD stage")
        out = SQLTransformer(
            statement="SELECT *, greatest(btyd_expected_spend, 0D) AS clv_prediction, "
            "greatest(btyd_expected_spend, 0D) AS prediction FROM __THIS__"
        )
        return Pipeline(stages=[btyd, out])
    exprs = [(name, expr) for name, expr, _ in clv_inputs(features)]
    if btyd is not None:
        exprs += list(BTYD_INPUTS)
    # Expressions and identifiers are this module's constants, never user input.
    prep = SQLTransformer(
        statement="SELECT *, "
        + ", ".join(f"coalesce(CAST({expr} AS DOUBLE), {MISSING}D) AS `clv_in_{name}`" for name, expr in exprs)
        + " FROM __THIS__"
    )
    assembler = VectorAssembler(inputCols=[f"clv_in_{name}" for name, _ in exprs], outputCol="clv_features")
    cols = {"featuresCol": "clv_features", "labelCol": "label", "predictionCol": "clv_raw"}
    reg: GBTRegressor | RandomForestRegressor
    if cfg.algorithm == "gbt":
        reg = GBTRegressor(
            maxIter=cfg.max_iter,
            stepSize=cfg.step_size,
            maxDepth=cfg.max_depth,
            minInstancesPerNode=cfg.min_instances_per_node,
            seed=cfg.seed,
            featuresCol=cols["featuresCol"],
            labelCol=cols["labelCol"],
            predictionCol=cols["predictionCol"],
        )
    elif cfg.algorithm == "rf":
        reg = RandomForestRegressor(
            numTrees=cfg.num_trees,
            maxDepth=cfg.max_depth,
            minInstancesPerNode=cfg.min_instances_per_node,
            seed=cfg.seed,
            featuresCol=cols["featuresCol"],
            labelCol=cols["labelCol"],
            predictionCol=cols["predictionCol"],
        )
    else:
        raise ConfigError(f"clv.algorithm: expected gbt, rf or bgnbd, got {cfg.algorithm!r}")
    # Spend cannot be negative. ``prediction`` duplicates it because MLflow's pyfunc
    # wrapper (serving, mlflow.models.predict) returns the column of that name.
    clip = SQLTransformer(
        statement="SELECT *, greatest(clv_raw, 0D) AS clv_prediction, greatest(clv_raw, 0D) AS prediction FROM __THIS__"
    )
    return Pipeline(stages=[*([btyd] if btyd is not None else []), prep, assembler, reg, clip])


def btyd_stage(model: Any) -> BtydModel | None:
    """The BG/NBD stage of a fitted CLV pipeline, if it has one."""
    return next((s for s in getattr(model, "stages", []) if isinstance(s, BtydModel)), None)


def fit_btyd_stage(orders: DataFrame, cutoff: dt.date, config: Config) -> BtydModel:
    """BG/NBD + Gamma-Gamma fitted on the order history up to ``cutoff``, as a pipeline stage.

    Its horizon is one cycle (``features.cycle_months``) after each row's snapshot date.

    Raises:
        ModelError: no customer, or a likelihood that did not converge, with the cutoff.
    """
    cfg = config.clv
    summary = btyd_summary(orders, cutoff, cfg.btyd_unit_days).cache()
    day = cutoff.isoformat()
    try:
        # A maximum at the boundary (e.g. nobody seems to drop out: a, b -> infinity)
        # does not converge: retry with a growing penalizer rather than fail the training.
        pen, bg = cfg.btyd_penalizer, None
        while bg is None:
            try:
                bg = fit_bgnbd(summary, pen, cfg.btyd_unit_days)
            except ModelError as exc:
                if pen >= 1.0:
                    raise ModelError(f"CLV at cutoff {day}: {exc}") from exc
                pen = max(pen * 10, 0.001)
                log.warning("CLV at cutoff %s: %s; retrying with penalizer %g", day, exc, pen)
        try:
            gg = fit_gamma_gamma(summary, cfg.btyd_penalizer)
        except ModelError as exc:
            # q <= 1: spend too heavy-tailed for a finite expected value; constrain q.
            log.warning("CLV at cutoff %s: %s; refitting with q >= %g", day, exc, GG_Q_MIN)
            try:
                gg = fit_gamma_gamma(summary, cfg.btyd_penalizer, q_min=GG_Q_MIN)
            except ModelError as again:
                raise ModelError(f"CLV at cutoff {day}: {again}") from again
    finally:
        summary.unpersist()
    log.info("CLV BG/NBD at %s: %s; Gamma-Gamma: %s", cutoff.isoformat(), bg, gg)
    return BtydModel.of(bg, gg, config.features.cycle_months)


def with_btyd_summary(rows: DataFrame, orders: DataFrame, cutoff: dt.date, unit_days: float) -> DataFrame:
    """``rows`` plus each persona's BG/NBD statistics at ``cutoff`` (0 for one without a purchase day)."""
    summary = btyd_summary(orders, cutoff, unit_days)
    joined = rows.drop(*[c for c in SUMMARY_COLUMNS if c in rows.columns]).join(summary, "persona_id", "left")
    return joined.withColumns({c: F.coalesce(F.col(c), F.lit(0).cast(t)) for c, t in summary.dtypes[1:]})


def regression_metrics(df: DataFrame, prediction: str, label: str = "label") -> dict[str, float]:
    """MAE, RMSE, total predicted and total actual in one aggregate (no collect of rows).

    Args:
        df: rows with a prediction and a label column.
        prediction: prediction column name.
        label: label column name.

    Returns:
        ``{"mae", "rmse", "predicted_total", "actual_total", "customers"}``.
    """
    err = F.col(prediction) - F.col(label)
    row = df.agg(
        F.avg(F.abs(err)).alias("mae"),
        F.sqrt(F.avg(err * err)).alias("rmse"),
        F.sum(prediction).alias("predicted_total"),
        F.sum(label).alias("actual_total"),
        F.count("*").alias("customers"),
    ).first()
    assert row is not None  # a global aggregate has exactly one row
    return {k: float(row[k] or 0.0) for k in ("mae", "rmse", "predicted_total", "actual_total", "customers")}


def evaluate_holdout(model: PipelineModel, holdout: DataFrame) -> dict[str, dict[str, float]]:
    """Model and "next cycle = last cycle" baseline metrics on the holdout frame."""
    scored = model.transform(holdout).withColumn("baseline", F.coalesce(F.col("monetary").cast("double"), F.lit(0.0)))
    scored = scored.select("clv_prediction", "baseline", "label").cache()
    try:
        return {
            "model": regression_metrics(scored, "clv_prediction"),
            "last_cycle": regression_metrics(scored, "baseline"),
        }
    finally:
        scored.unpersist()
