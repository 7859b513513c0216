"""Serving: ALS first, the segment list to fill, scores 1-100; the daily ``recommendations`` partition."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pyspark.sql import Window
from pyspark.sql import functions as F

from segengine.errors import ModelError
from segengine.features.snapshots import require_feature_partition
from segengine.models.recommend.als import RecommendModel
from segengine.models.recommend.fallback import fallback_lists, segment_of, top_from_list
from segengine.models.recommend.feedback import _load_inputs, interactions
from segengine.models.recommend.persistence import load_champion_model
from segengine.models.recommend.schema import RECOMMENDATIONS_SCHEMA, RECOMMENDER_ALS, RECOMMENDER_SEGMENT
from segengine.models.recommend.topk import _mllib_top_k, als_top_k

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config, RecommendConfig
    from segengine.lake import Lake


def percentile_score(df: DataFrame, col: str, cuts: list[float]) -> DataFrame:
    """Add ``score`` = 1 + number of cut points strictly below ``col`` (so 1..len(cuts)+1).

    Args:
        df: any DataFrame with a numeric ``col``.
        col: column to scale.
        cuts: the 1st..99th percentiles of ``col`` (from ``approxQuantile``).

    Returns:
        ``df`` with an int ``score`` in 1..100 when 99 cuts are given.
    """
    above = [(F.col(col) > F.lit(float(c))).cast("int") for c in cuts]
    total = F.lit(1)
    for term in above:
        total = total + term
    return df.withColumn("score", F.least(F.lit(100), total).cast("int"))


def recommend(
    model: RecommendModel | None,
    targets: DataFrame,
    inter: DataFrame,
    products: DataFrame | None,
    cfg: RecommendConfig,
    k: int | None = None,
    fallback: bool = True,
    segments: DataFrame | None = None,
) -> DataFrame:
    """Top ``k`` products per target persona: ALS first, popular-in-segment to fill.

    Args:
        model: trained model (None: fallback only).
        targets: DataFrame(persona_id, segment): who gets recommendations.
        inter: :func:`interactions` up to the scoring date (bought items, popularity).
        products: bronze ``products`` (cold-start items for the fallback list) or None.
        cfg: ``config.recommend`` (top_k, exclude_purchased, max_overfetch, fallback_max_score).
        k: items per persona (default ``cfg.top_k``).
        fallback: fill short lists from the segment list (False: ALS only).
        segments: DataFrame(persona_id, segment) whose purchases rank each segment's list
            (default ``targets``: scoring targets every persona; an evaluation scores a
            few and passes the whole population).

    Returns:
        DataFrame(persona_id, product_id, rank int, score int 1-100, recommender string).
        Every target gets exactly ``k`` rows when at least ``k`` products of the catalogue
        remain after excluding the ones they bought (with ``scorer: mllib``, an ALS list
        cut short by the ``max_overfetch`` cap is filled from the segment list). The
        fallback lists span the whole catalogue: no cut at ``k + max_overfetch``.
    """
    k = k or cfg.top_k
    bought = inter.where(F.col("bought")).select("persona_id", "product_id") if cfg.exclude_purchased else None
    als_top = None
    if model is not None:
        if cfg.scorer == "mllib":
            als_top = _mllib_top_k(model, targets, bought, k, cfg)
        else:
            als_top = als_top_k(model, targets, bought, k)
        als_top = als_top.cache()
        cuts = [c for c in als_top.approxQuantile("prediction", [i / 100 for i in range(1, 100)], 0.001)]
        als_top = percentile_score(als_top, "prediction", cuts)
    if not fallback:
        if als_top is None:
            raise ModelError("recommend: neither a model nor the fallback was asked for")
        return als_top.select(
            "persona_id", "product_id", F.col("_r").alias("rank"), "score", F.lit(RECOMMENDER_ALS).alias("recommender")
        )
    # Personas with k ALS rows are done; the rest (cold start, or fewer than k unbought
    # items in the model) are filled from their segment's list, ALS rows first.
    members = (segments if segments is not None else targets).select("persona_id", "segment")
    _, seg_list = fallback_lists(inter, products, members)
    if als_top is not None:
        full = als_top.where((F.col("_r") == 1) & (F.col("_n") >= k)).select("persona_id")
        short = targets.join(full, "persona_id", "left_anti")
    else:
        short = targets
    fill = top_from_list(short, seg_list, bought, k, key="segment")
    max_score = max(1, min(100, cfg.fallback_max_score))
    parts = [
        fill.select(
            "persona_id",
            "product_id",
            F.lit(1).alias("_prio"),
            F.col("rank").cast("double").alias("_order"),
            (F.lit(1) + F.round(F.col("share") * (max_score - 1))).cast("int").alias("score"),
            F.lit(RECOMMENDER_SEGMENT).alias("recommender"),
        )
    ]
    if als_top is not None:
        parts.append(
            als_top.where(F.col("_n") < k).select(
                "persona_id",
                "product_id",
                F.lit(0).alias("_prio"),
                (-F.col("prediction")).alias("_order"),
                "score",
                F.lit(RECOMMENDER_ALS).alias("recommender"),
            )
        )
    mixed = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])
    dedupe = Window.partitionBy("persona_id", "product_id").orderBy("_prio", "_order")
    mixed = mixed.withColumn("_d", F.row_number().over(dedupe)).where(F.col("_d") == 1)
    w = Window.partitionBy("persona_id").orderBy("_prio", "_order", "product_id")
    mixed = (
        mixed.withColumn("rank", F.row_number().over(w).cast("int"))
        .where(F.col("rank") <= k)
        .select("persona_id", "product_id", "rank", "score", "recommender")
    )
    if als_top is None:
        return mixed
    done = als_top.where(F.col("_n") >= k).select(
        "persona_id", "product_id", F.col("_r").alias("rank"), "score", F.lit(RECOMMENDER_ALS).alias("recommender")
    )
    return done.unionByName(mixed)


def _features(lake: Lake, snapshot_date: dt.date) -> DataFrame:
    require_feature_partition(lake, snapshot_date)
    return lake.read("customer_features", partitions={"snapshot_date": snapshot_date})


def score_recommendations(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """Write the top ``top_k`` products per persona to the ``recommendations`` partition.

    Targets are the personas of ``customer_features`` for the date whose type is in
    ``config.recommend.persona_types``. Uses the registered champion
    (:func:`load_champion_model`); personas unknown to it get the popular-in-segment
    fallback. Only the order lines are read (bought items, popularity by distinct buyers);
    the events count at training time. Idempotent: the date's partition is replaced.

    Args:
        spark: the session.
        lake: the Lake.
        config: configuration.
        snapshot_date: scoring date.

    Returns:
        Summary: rows, personas, share of ALS rows, model version used, table version.

    Raises:
        ModelError: no champion model. FeatureSnapshotMissing: no features for the date.
    """
    cfg = config.recommend
    model, model_version = load_champion_model(spark, config)
    features = _features(lake, snapshot_date)
    targets = segment_of(features.where(F.col("persona_type").isin(*cfg.persona_types)))
    order_lines, _, products, _ = _load_inputs(lake)
    # Scoring needs the bought items and the popularity lists, both from purchases: the
    # events (product views, add-to-cart) only shape the model, at training time.
    inter = interactions(order_lines, None, snapshot_date, cfg).cache()
    recs = recommend(model, targets, inter, products, cfg).withColumn("snapshot_date", F.lit(snapshot_date))
    recs = recs.select([F.col(f.name).cast(f.dataType) for f in RECOMMENDATIONS_SCHEMA.fields])
    version = lake.overwrite_partition(recs, "recommendations", snapshot_date=snapshot_date)
    stats = (
        lake.read("recommendations", partitions={"snapshot_date": snapshot_date})
        .agg(
            F.count(F.lit(1)).alias("rows"),
            F.countDistinct("persona_id").alias("personas"),
            F.avg((F.col("recommender") == RECOMMENDER_ALS).cast("double")).alias("als_share"),
        )
        .first()
    )
    assert stats is not None  # a global aggregate has exactly one row
    inter.unpersist()
    return {
        "snapshot_date": snapshot_date.isoformat(),
        "rows": int(stats["rows"]),
        "personas": int(stats["personas"]),
        "als_share": float(stats["als_share"] or 0.0),
        "model_version": model_version,
        "version": version,
    }
