"""The non-personalised lists: segments, global and per-segment popularity, a user's top k of a list."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyspark.sql import Window
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def segment_of(features: DataFrame) -> DataFrame:
    """Each persona's fallback segment: ``ai_segment`` when scored, else ``persona_type:value_tier``.

    Args:
        features: a ``customer_features`` partition.

    Returns:
        DataFrame(persona_id, segment) (segment never null).
    """
    cols = set(features.columns)
    ai = F.col("ai_segment") if "ai_segment" in cols else F.lit(None).cast("string")
    ptype = F.col("persona_type") if "persona_type" in cols else F.lit("unknown")
    tier = F.col("value_tier") if "value_tier" in cols else F.lit(None).cast("string")
    fallback = F.concat_ws(":", F.coalesce(ptype, F.lit("unknown")), F.coalesce(tier, F.lit("any")))
    return features.select("persona_id", F.coalesce(ai, fallback).alias("segment"))


SEGMENTATION_NONE = "none"


def segmentation_of(features: DataFrame) -> str:
    """Which segmentation :func:`segment_of` gives ``features``: its name for reports.

    ``ai_segment`` when the partition has scored AI segments (personas without one fall
    back to ``persona_type:value_tier``), else ``persona_type:value_tier``.
    """
    if "ai_segment" in features.columns and features.where(F.col("ai_segment").isNotNull()).limit(1).count():
        return "ai_segment"
    return "persona_type:value_tier"


def popular_items(inter: DataFrame, products: DataFrame | None, top_m: int | None = None) -> DataFrame:
    """Global popularity list: distinct buyers per product (ties by strength, product_id).

    Products nobody bought (cold-start items) follow with popularity 0, so the list
    holds the whole catalogue when ``products`` is given.

    Args:
        inter: output of :func:`interactions`.
        products: bronze ``products`` (or None: only products with interactions).
        top_m: list length (None, the default: the whole catalogue, which is what the
            baselines and the fallback need: a list cut at a fixed length runs dry for
            a persona who bought most of it).

    Returns:
        DataFrame(product_id, popularity long, strength double, pop_rank int) (pop_rank <= top_m when given).
    """
    pop = inter.groupBy("product_id").agg(
        F.count(F.when(F.col("bought") & (F.col("strength") > 0), True)).alias("popularity"),
        F.sum(F.greatest(F.col("strength"), F.lit(0.0))).alias("strength"),
    )
    if products is not None:
        pop = (
            products.select("product_id")
            .distinct()
            .join(pop, "product_id", "left")
            .fillna({"popularity": 0, "strength": 0.0})
        )
    w = Window.orderBy(F.desc("popularity"), F.desc("strength"), "product_id")
    # The catalogue is small (products, not customers): a global window is fine here.
    ranked = pop.withColumn("pop_rank", F.row_number().over(w))
    return ranked if top_m is None else ranked.where(F.col("pop_rank") <= top_m)


def popular_in_segment(
    inter: DataFrame, segments: DataFrame, global_top: DataFrame, top_m: int | None = None
) -> DataFrame:
    """Per segment: products by distinct buyers in that segment, then the global list.

    Args:
        inter: output of :func:`interactions`.
        segments: DataFrame(persona_id, segment) from :func:`segment_of`.
        global_top: output of :func:`popular_items` (fills thin segments).
        top_m: list length per segment (None, the default: every product of ``global_top``).

    Returns:
        DataFrame(segment, product_id, popularity, share double in [0, 1], pop_rank int);
        ``share`` is popularity relative to the segment's most popular product.
    """
    in_seg = (
        inter.where(F.col("bought") & (F.col("strength") > 0))
        .join(segments, "persona_id")
        .groupBy("segment", "product_id")
        .agg(F.count(F.lit(1)).alias("popularity"), F.sum("strength").alias("strength"))
        .withColumn("_prio", F.lit(0))
    )
    all_segments = segments.select("segment").distinct()
    # Global fill has no in-segment buyers: popularity 0 in this segment.
    fill = all_segments.crossJoin(
        global_top.select("product_id", F.col("pop_rank").cast("double").alias("_grank"))
    ).select("segment", "product_id", F.lit(0).cast("long").alias("popularity"), (-F.col("_grank")).alias("strength"))
    fill = fill.withColumn("_prio", F.lit(1))
    both = in_seg.unionByName(fill)
    dedupe = Window.partitionBy("segment", "product_id").orderBy("_prio")
    both = both.withColumn("_d", F.row_number().over(dedupe)).where(F.col("_d") == 1)
    w = Window.partitionBy("segment").orderBy("_prio", F.desc("popularity"), F.desc("strength"), "product_id")
    ranked = both.withColumn("pop_rank", F.row_number().over(w))
    if top_m is not None:
        ranked = ranked.where(F.col("pop_rank") <= top_m)
    top = F.max("popularity").over(Window.partitionBy("segment"))
    return ranked.select(
        "segment",
        "product_id",
        "popularity",
        F.when(top > 0, F.col("popularity") / top).otherwise(F.lit(0.0)).alias("share"),
        "pop_rank",
    )


def fallback_lists(inter: DataFrame, products: DataFrame | None, segments: DataFrame) -> tuple[DataFrame, DataFrame]:
    """The two non-personalised lists, each over the whole candidate pool (the catalogue).

    Args:
        inter: output of :func:`interactions`.
        products: bronze ``products`` (or None: the products with interactions).
        segments: DataFrame(persona_id, segment): who counts in which segment.

    Returns:
        (global list of :func:`popular_items`, per-segment list of :func:`popular_in_segment`).
    """
    global_top = popular_items(inter, products)
    return global_top, popular_in_segment(inter, segments, global_top)


def top_from_list(
    users: DataFrame,
    ranked: DataFrame,
    bought: DataFrame | None,
    k: int,
    key: str | None = "segment",
) -> DataFrame:
    """Top ``k`` items of a ranked list per user, skipping the user's bought items.

    Each user reads the list down to position ``k + (items the user bought)``: at most
    that many of those positions are bought, so at least ``k`` are left whenever the
    list is that long, however many of the list's head the user bought. The positions
    are generated per user (``sequence``) and equi-joined to the list on its rank, so
    no user meets more than those rows and nothing is collected.

    Args:
        users: DataFrame(persona_id[, key]), one row per persona.
        ranked: DataFrame([key,] product_id, pop_rank[, share]) with ranks 1, 2, ... (per key).
        bought: DataFrame(persona_id, product_id) to exclude, or None.
        k: items per user.
        key: join column between users and the list (None: one global list).

    Returns:
        DataFrame(persona_id, product_id, rank int, share double): ``min(k, list length -
        the user's bought items in it)`` rows per user.
    """
    if "share" not in ranked.columns:
        ranked = ranked.withColumn("share", F.lit(0.0))
    cols = ["persona_id"] if key is None else ["persona_id", key]
    who = users.select(*cols)
    if bought is not None:
        n_bought = (
            bought.select("persona_id", "product_id")
            .distinct()
            .join(who.select("persona_id"), "persona_id", "left_semi")
            .groupBy("persona_id")
            .agg(F.count(F.lit(1)).alias("_nb"))
        )
        who = who.join(n_bought, "persona_id", "left").fillna({"_nb": 0})
    else:
        who = who.withColumn("_nb", F.lit(0))
    depth = (F.lit(k) + F.col("_nb")).cast("int")
    positions = who.select(*cols, F.explode(F.sequence(F.lit(1), depth)).alias("pop_rank"))
    if key is None:
        cand = positions.join(F.broadcast(ranked.select("product_id", "pop_rank", "share")), "pop_rank")
    else:
        cand = positions.join(ranked.select(key, "product_id", "pop_rank", "share"), [key, "pop_rank"])
    if bought is not None:
        cand = cand.join(bought.select("persona_id", "product_id"), ["persona_id", "product_id"], "left_anti")
    w = Window.partitionBy("persona_id").orderBy("pop_rank", "product_id")
    return (
        cand.withColumn("rank", F.row_number().over(w).cast("int"))
        .where(F.col("rank") <= k)
        .select("persona_id", "product_id", "rank", "share")
    )
