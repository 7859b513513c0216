"""Score the CLV champion into a ``customer_features`` partition (prediction and percentile)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pyspark.ml import PipelineModel
from pyspark.sql import Window
from pyspark.sql import functions as F

from segengine.errors import ModelError
from segengine.features.snapshots import require_feature_partition
from segengine.frames import one_row
from segengine.models.clv.pipeline import btyd_stage, with_btyd_summary
from segengine.models.cutoffs import (
    order_facts,
    session_time_zone,
)
from segengine.models.segments import customers_only
from segengine.models.tracking import (
    configure_mlflow,
    load_champion,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake


def apply_clv_model(
    features: DataFrame, model: PipelineModel, orders: DataFrame | None = None, unit_days: float | None = None
) -> DataFrame:
    """Fill clv_predicted and clv_percentile (0–100 among customers) of a feature partition.

    Prospects and visitors get nulls. Same columns, order and types as the input.

    Args:
        features: one ``customer_features`` partition.
        model: the fitted CLV pipeline.
        orders: :func:`order_facts`, needed when the pipeline has a BG/NBD stage (its
            statistics are computed at the partition's date).
        unit_days: the BG/NBD time unit (default: the stage's).

    Returns:
        The partition with the two CLV columns replaced.
    """
    customers = customers_only(features)
    stage = btyd_stage(model)
    if stage is not None:
        if orders is None:
            raise ModelError("CLV: this model has a BG/NBD stage: scoring needs the order facts")
        day = customers.select("snapshot_date").distinct().collect()  # one partition: one date
        if len(day) > 1:
            raise ModelError(f"CLV: the feature rows hold {len(day)} snapshot dates, expected one")
        if day:
            unit = unit_days or stage.getOrDefault("unitDays")
            customers = with_btyd_summary(customers, orders, day[0]["snapshot_date"], unit)
    scored = model.transform(customers).select("persona_id", F.col("clv_prediction").alias("_clv_predicted"))
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


def score_clv(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
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
    require_feature_partition(lake, snapshot_date)  # never score (and write) a missing snapshot
    configure_mlflow(config)
    loaded = load_champion(config, config.clv.model_name)
    features = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    missing = [c for c in loaded.features if c not in features.columns]
    if missing:
        raise ModelError(
            f"model {loaded.name} version {loaded.version} needs column(s) {', '.join(missing)} "
            f"that customer_features for {snapshot_date} lacks"
        )
    orders = None
    if btyd_stage(loaded.model) is not None:
        session_tz = session_time_zone(spark)
        orders = order_facts(lake.read("order_lines"), config.features.timezone, session_tz)
    scored = apply_clv_model(features, loaded.model, orders).cache()
    try:
        row = one_row(scored.agg(F.count("clv_predicted").alias("n"), F.sum("clv_predicted").alias("total")))
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
