"""Customer lifetime value: each customer's net spend in the next cycle (MLlib regressor).

Time split (``cycle`` = ``features.cycle_months``, S = the snapshot date; a window
``(a, b]`` holds orders whose local order date is after day a and up to and including
day b; features at a date describe data up to the end of that day)::

    train   : features at S - 2·cycle, label = net spend in (S - 2·cycle, S - cycle]
    holdout : features at S - cycle,   label = net spend in (S - cycle,   S]
    final   : refit on the holdout window (the most recent complete one)
    scoring : features at S, prediction = spend expected in (S, S + cycle]

The holdout model never sees the holdout labels; the metrics (MAE, RMSE, total
predicted vs actual) are reported with those of the baseline "next cycle = last
cycle" (the customer's ``monetary`` at the cutoff), and logged to MLflow. The label is
the *net* spend (refunds subtracted), 0 for a customer who did not buy, and may be
negative if refunds exceed purchases in the window.

Features are the numeric catalog attributes in :data:`CLV_CANDIDATES` that the
catalog lists at training time; the exact list is logged with the model and checked
again when scoring.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from segengine.errors import ConfigError, ModelError
from segengine.models.segments import customers_only

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config

log = logging.getLogger(__name__)

# Numeric attributes a CLV model may use, in a fixed order (the catalog decides which exist).
CLV_CANDIDATES = (
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "avg_basket_value",
    "avg_monthly_spend",
    "orders_cycle",
    "revenue_cycle",
    "orders_lifetime",
    "revenue_lifetime",
    "distinct_products",
    "distinct_categories",
    "days_since_last_purchase",
    "days_since_last_visit",
    "visits_30d",
    "time_on_site_30d",
    "email_opens_90d",
    "email_clicks_90d",
    "engagement_score",
    "fit_score",
    "age",
)
# Missing numeric values (no purchase yet, unknown age) become this sentinel: trees
# split it off cleanly, and no real count/amount/day value is negative.
MISSING = -1.0

FeatureBuilder = Callable[[Any, Any, Any, dt.date], "DataFrame"]


# ------------------------------------------------------------------ time windows


def shift_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months (clamped to the month's last day)."""
    total = day.year * 12 + (day.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def clv_windows(snapshot_date: dt.date, cycle_months: int) -> dict[str, tuple[dt.date, dt.date]]:
    """The (feature cutoff, label end) of each window; the label window is (cutoff, end].

    Args:
        snapshot_date: S.
        cycle_months: the cycle length.

    Returns:
        ``{"train": (S-2c, S-c), "holdout": (S-c, S), "final": (S-c, S)}``.
    """
    if cycle_months < 1:
        raise ConfigError(f"features.cycle_months: must be at least 1, got {cycle_months}")
    holdout_cutoff = shift_months(snapshot_date, -cycle_months)
    train_cutoff = shift_months(snapshot_date, -2 * cycle_months)
    return {
        "train": (train_cutoff, holdout_cutoff),
        "holdout": (holdout_cutoff, snapshot_date),
        "final": (holdout_cutoff, snapshot_date),
    }


def label_frame(order_lines: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """Net spend per persona with order date in ``(start, end]``.

    Args:
        order_lines: bronze order lines (persona_id, order_ts, quantity, unit_price).
        start: exclusive: orders on this day belong to the features side.
        end: inclusive.

    Returns:
        DataFrame(persona_id, label double).
    """
    from pyspark.sql import functions as F

    day = F.to_date("order_ts")
    return (
        order_lines.filter((day > F.lit(start)) & (day <= F.lit(end)))
        .groupBy("persona_id")
        .agg(F.sum(F.col("quantity") * F.col("unit_price")).cast("double").alias("label"))
    )


def training_frame(features: DataFrame, order_lines: DataFrame, cutoff: dt.date, end: dt.date) -> DataFrame:
    """Customers at ``cutoff`` with their label: net spend in ``(cutoff, end]`` (0 if none).

    Args:
        features: feature rows built at ``cutoff`` (all persona types).
        order_lines: bronze order lines.
        cutoff: the features' snapshot date.
        end: last day of the label window.

    Returns:
        The customer rows plus a ``label`` column.
    """
    from pyspark.sql import functions as F

    labels = label_frame(order_lines, cutoff, end)
    return (
        customers_only(features)
        .join(labels, "persona_id", "left")
        .withColumn("label", F.coalesce(F.col("label"), F.lit(0.0)))
    )


# ------------------------------------------------------------------ model


def clv_feature_columns(available: Sequence[str] | None = None) -> list[str]:
    """The CLV inputs: numeric catalog attributes of :data:`CLV_CANDIDATES` present in ``available``."""
    from segengine.features.catalog import CATALOG

    cols = [
        c
        for c in CLV_CANDIDATES
        if c in CATALOG and CATALOG[c].type in ("integer", "double") and (available is None or c in available)
    ]
    if not cols:
        raise ModelError("CLV: none of the candidate numeric features is in the catalog and the feature table")
    return cols


def clv_pipeline(config: Config, features: Sequence[str]) -> Any:
    """An unfitted pipeline: impute → assemble → GBT or random forest regressor."""
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import SQLTransformer, VectorAssembler
    from pyspark.ml.regression import GBTRegressor, RandomForestRegressor

    cfg = config.clv
    # Identifiers come from the catalog (plain snake_case), never from user input.
    prep = SQLTransformer(
        statement="SELECT *, "
        + ", ".join(f"coalesce(CAST(`{c}` AS DOUBLE), {MISSING}D) AS `clv_in_{c}`" for c in features)
        + " FROM __THIS__"
    )
    assembler = VectorAssembler(inputCols=[f"clv_in_{c}" for c in features], outputCol="clv_features")
    if cfg.algorithm == "gbt":
        reg = GBTRegressor(
            featuresCol="clv_features",
            labelCol="label",
            predictionCol="clv_raw",
            maxDepth=cfg.max_depth,
            maxIter=cfg.max_iter,
            stepSize=cfg.step_size,
            seed=cfg.seed,
        )
    elif cfg.algorithm == "rf":
        reg = RandomForestRegressor(
            featuresCol="clv_features",
            labelCol="label",
            predictionCol="clv_raw",
            maxDepth=cfg.max_depth,
            numTrees=cfg.num_trees,
            seed=cfg.seed,
        )
    else:
        raise ConfigError(f"clv.algorithm: expected gbt or rf, got {cfg.algorithm!r}")
    # Spend cannot be negative. ``prediction`` duplicates it because MLflow's pyfunc
    # wrapper (serving, mlflow.models.predict) returns the column of that name.
    clip = SQLTransformer(
        statement="SELECT *, greatest(clv_raw, 0D) AS clv_prediction, greatest(clv_raw, 0D) AS prediction FROM __THIS__"
    )
    return Pipeline(stages=[prep, assembler, reg, clip])


def regression_metrics(df: DataFrame, prediction: str, label: str = "label") -> dict[str, float]:
    """MAE, RMSE, total predicted and total actual in one aggregate (no collect of rows).

    Args:
        df: rows with a prediction and a label column.
        prediction: prediction column name.
        label: label column name.

    Returns:
        ``{"mae", "rmse", "predicted_total", "actual_total", "customers"}``.
    """
    from pyspark.sql import functions as F

    err = F.col(prediction) - F.col(label)
    row = df.agg(
        F.avg(F.abs(err)).alias("mae"),
        F.sqrt(F.avg(err * err)).alias("rmse"),
        F.sum(prediction).alias("predicted_total"),
        F.sum(label).alias("actual_total"),
        F.count("*").alias("customers"),
    ).first()
    return {k: float(row[k] or 0.0) for k in ("mae", "rmse", "predicted_total", "actual_total", "customers")}


def evaluate_holdout(model: PipelineModel, holdout: DataFrame) -> dict[str, dict[str, float]]:
    """Model and "next cycle = last cycle" baseline metrics on the holdout frame."""
    from pyspark.sql import functions as F

    scored = model.transform(holdout).withColumn("baseline", F.coalesce(F.col("monetary").cast("double"), F.lit(0.0)))
    scored = scored.select("clv_prediction", "baseline", "label").cache()
    try:
        return {
            "model": regression_metrics(scored, "clv_prediction"),
            "last_cycle": regression_metrics(scored, "baseline"),
        }
    finally:
        scored.unpersist()


def _default_builder(spark: Any, lake: Any, config: Any, cutoff: dt.date) -> DataFrame:
    from segengine.features import build_features  # the features area's agreed API

    return build_features(spark, lake, config, cutoff)


def train_clv(
    spark: SparkSession,
    lake: Any,
    config: Config,
    snapshot_date: dt.date,
    feature_builder: FeatureBuilder | None = None,
) -> dict[str, Any]:
    """Train the CLV model on the time split, report holdout metrics, register the champion.

    Args:
        spark: the session.
        lake: the storage layer (order_lines is read for labels).
        config: ``clv`` and ``features.cycle_months``.
        snapshot_date: S (see the module docstring for the windows).
        feature_builder: builds the feature rows as of a cutoff; default
            ``segengine.features.build_features`` (tests pass their own).

    Returns:
        Summary: windows, features, holdout metrics for the model and the baseline,
        registered version.
    """
    import mlflow

    from segengine.models.tracking import configure_mlflow, log_spark_model, register_model

    builder = feature_builder or _default_builder
    configure_mlflow(config)
    windows = clv_windows(snapshot_date, config.features.cycle_months)
    orders = lake.read("order_lines")
    train = training_frame(builder(spark, lake, config, windows["train"][0]), orders, *windows["train"]).cache()
    holdout = training_frame(builder(spark, lake, config, windows["holdout"][0]), orders, *windows["holdout"]).cache()
    try:
        features = clv_feature_columns([c for c in train.columns if c in holdout.columns])
        n_train, n_holdout = train.count(), holdout.count()
        if n_train == 0 or n_holdout == 0:
            raise ModelError(
                f"CLV: no customers to learn from (train window {windows['train']}: {n_train}, "
                f"holdout window {windows['holdout']}: {n_holdout}); is there order history before the cutoffs?"
            )
        eval_model = clv_pipeline(config, features).fit(train)
        metrics = evaluate_holdout(eval_model, holdout)
        final = clv_pipeline(config, features).fit(holdout)
        example = holdout.select("persona_id", *features).limit(5).toPandas()
        out = final.transform(spark.createDataFrame(example)).select("clv_prediction").toPandas()
        with mlflow.start_run(run_name=f"clv {snapshot_date}"):
            mlflow.log_params(
                {
                    "snapshot_date": str(snapshot_date),
                    "algorithm": config.clv.algorithm,
                    "max_depth": config.clv.max_depth,
                    "max_iter": config.clv.max_iter,
                    "num_trees": config.clv.num_trees,
                    "step_size": config.clv.step_size,
                    "seed": config.clv.seed,
                    "cycle_months": config.features.cycle_months,
                    "train_window": f"{windows['train'][0]}..{windows['train'][1]}",
                    "holdout_window": f"{windows['holdout'][0]}..{windows['holdout'][1]}",
                    "features": ",".join(features),
                }
            )
            mlflow.log_metrics({"train_customers": n_train, "holdout_customers": n_holdout})
            for who, m in metrics.items():
                mlflow.log_metrics({f"holdout_{who}_{k}": v for k, v in m.items() if k != "customers"})
            info = log_spark_model(final, example, features, out)
        version = register_model(config, info.model_uri, config.clv.model_name, features)
    finally:
        train.unpersist()
        holdout.unpersist()
    return {
        "snapshot_date": str(snapshot_date),
        "model": config.clv.model_name,
        "version": version,
        "windows": {k: [str(a), str(b)] for k, (a, b) in windows.items()},
        "features": features,
        "train_customers": n_train,
        "holdout_customers": n_holdout,
        "holdout": metrics,
    }


def apply_clv_model(features: DataFrame, model: PipelineModel) -> DataFrame:
    """Fill clv_predicted and clv_percentile (0–100 among customers) of a feature partition.

    Prospects and visitors get nulls. Same columns, order and types as the input.

    Args:
        features: one ``customer_features`` partition.
        model: the fitted CLV pipeline.

    Returns:
        The partition with the two CLV columns replaced.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    scored = model.transform(customers_only(features)).select(
        "persona_id", F.col("clv_prediction").alias("_clv_predicted")
    )
    # One global ordering over customers: percent_rank needs it; it is a single sort of
    # (id, double) pairs, the cheapest exact way to rank.
    scored = scored.withColumn(
        "_clv_percentile", F.percent_rank().over(Window.orderBy("_clv_predicted")) * F.lit(100.0)
    )
    joined = features.join(scored, "persona_id", "left")
    types = dict(features.dtypes)
    replaced = {"clv_predicted": "_clv_predicted", "clv_percentile": "_clv_percentile"}
    return joined.select(
        *[F.col(replaced[c]).cast(types[c]).alias(c) if c in replaced else F.col(c) for c in features.columns]
    )


def score_clv(spark: SparkSession, lake: Any, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """Write clv_predicted and clv_percentile into the date's feature partition.

    Loads ``models:/<clv.model_name>@<champion>`` and refuses it if its logged features
    do not match the catalog. Idempotent (one partition overwrite, same schema).

    Args:
        spark: the session.
        lake: the storage layer.
        config: the configuration.
        snapshot_date: the feature partition to score.

    Returns:
        Summary: model version, table version, customers scored, total predicted.
    """
    from pyspark.sql import functions as F

    from segengine.models.tracking import configure_mlflow, load_champion

    configure_mlflow(config)
    loaded = load_champion(config, config.clv.model_name)
    features = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    missing = [c for c in loaded.features if c not in features.columns]
    if missing:
        raise ModelError(
            f"model {loaded.name} version {loaded.version} needs column(s) {', '.join(missing)} "
            f"that customer_features for {snapshot_date} lacks"
        )
    scored = apply_clv_model(features, loaded.model).cache()
    try:
        row = scored.agg(F.count("clv_predicted").alias("n"), F.sum("clv_predicted").alias("total")).first()
        version = lake.overwrite_partition(scored, "customer_features", snapshot_date=snapshot_date)
    finally:
        scored.unpersist()
    return {
        "snapshot_date": str(snapshot_date),
        "model_version": loaded.version,
        "table_version": version,
        "customers_scored": int(row["n"]),
        "predicted_total": float(row["total"] or 0.0),
    }


def run_train_job(ctx: Any) -> dict[str, Any]:
    """``jobs/train_clv.py``: train, evaluate and register the CLV model for ``ctx.snapshot_date``."""
    return train_clv(ctx.spark, ctx.lake, ctx.config, ctx.snapshot_date)


def run_score_job(ctx: Any) -> dict[str, Any]:
    """Score CLV for ``ctx.snapshot_date`` (used by ``jobs/score.py``)."""
    return score_clv(ctx.spark, ctx.lake, ctx.config, ctx.snapshot_date)
