"""Score both propensity champions into a ``customer_features`` partition."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.sql import Window
from pyspark.sql import functions as F

from segengine.errors import ModelError
from segengine.features.snapshots import require_feature_partition
from segengine.frames import one_row
from segengine.models.propensity.labels import OUTPUT_COLUMNS, TARGETS, Target
from segengine.models.propensity.pipelines import PROBABILITY, event_probability
from segengine.models.tracking import (
    champion_version,
    configure_mlflow,
    load_version,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake


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
