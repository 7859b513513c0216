"""Product recommendations: implicit-feedback ALS with a popular-in-segment fallback.

Pipeline, all in Spark built-ins:

1. :func:`interactions` turns purchases (quantity x recency decay, refunds subtract) and
   product views / add-to-cart events (``view_weight`` / ``cart_weight`` x decay) into one
   implicit strength per (persona, product).
2. :func:`index_ids` maps string ids to consecutive integers for ALS without collecting
   the ids to the driver (only one count per Spark partition is collected).
3. :func:`fit_als` fits ``pyspark.ml.recommendation.ALS`` (implicitPrefs, config.recommend).
4. :func:`recommend` takes each known user's ALS top ``top_k`` without bought items
   (``scorer: vectorized``: :func:`als_top_k`, exact, NumPy over Arrow batches of the
   MLlib factors; ``scorer: mllib``: ``recommendForUserSubset`` over-fetched by the items
   a user bought, capped by ``max_overfetch``), fills users with fewer than ``top_k``
   (cold-start users: no interactions; cold-start items never have factors) from the
   popular-in-segment list, and scales scores.

Score scaling (1-100), stated once here and in the README:

* ALS rows: the global percentile of the ALS prediction among all ALS recommendations
  delivered in the same run: ``score = 1 + #{p in P1..P99 : prediction > p}`` where
  ``P1..P99`` are the (approximate) percentiles. A score of 70 means "stronger than
  about 70% of the personalised recommendations made for this date"; comparable across
  customers, which the rule compiler's ``recommended: {min_score: 70}`` needs.
* Fallback rows (``recommender = "popular_in_segment"``): ``1 + round((fallback_max_score - 1)
  * popularity / top popularity in the segment)``, so a non-personalised recommendation
  never scores above ``fallback_max_score`` (default 50).

Within a customer, ALS rows rank before fallback rows.

Registered model (MLflow): one ``PipelineModel([IdMapping(users), IdMapping(items),
ALSModel])`` per version (:func:`recommend_pipeline`), so the factors and the id mappings
they were fitted with are one artifact, loaded by one resolution of the champion alias
(:func:`load_champion_model`). Promotion is gated on precision@k of the time-split
evaluation's **validation** window: the current champion's *validation model* (the ALS its
own run fitted up to its validation cutoff, tagged ``segengine.validation_model``) is scored
on the same validation users, and the new version becomes champion only if its precision
is not lower (:func:`segengine.models.tracking.register_and_promote`).

Evaluation (:func:`evaluate`): train / validation / test windows carved by time; choices
(a hyperparameter grid, the promotion gate) on validation only, the test window scored
once; baselines take full-length lists from the whole catalogue; segments as of the
training cutoff; every buyer of the window scored (ALS-known and cold-start users, each
group reported); percentile bootstrap intervals over users on precision, recall and lift.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import Column, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from segengine.errors import ModelError
from segengine.features.snapshots import feature_snapshot_dates, require_feature_partition

if TYPE_CHECKING:
    from pyspark.ml.recommendation import ALSModel
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config, RecommendConfig
    from segengine.lake import Lake

log = logging.getLogger(__name__)

RECOMMENDER_ALS = "als"
RECOMMENDER_SEGMENT = "popular_in_segment"
SCORERS = ("vectorized", "mllib")  # config.recommend.scorer
USER_IDX = "user_idx"
ITEM_IDX = "item_idx"
MAX_INDEX = 2**31 - 1  # ALS ids must fit a Java int

RECOMMENDATIONS_SCHEMA = T.StructType(
    [
        T.StructField("persona_id", T.StringType()),
        T.StructField("product_id", T.StringType()),
        T.StructField("rank", T.IntegerType()),
        T.StructField("score", T.IntegerType()),
        T.StructField("recommender", T.StringType()),
        T.StructField("snapshot_date", T.DateType()),
    ]
)


# ----------------------------------------------------------------- interactions


def _end_of(as_of: dt.date) -> Column:
    """Exclusive upper bound: data up to the end of ``as_of``."""
    return F.lit(as_of + dt.timedelta(days=1)).cast("timestamp")


def _decay(ts_col: str, as_of: dt.date, half_life_days: int) -> Column:
    """0.5 ** (age in days / half-life): yesterday's signal outweighs last year's."""
    age = F.greatest(F.lit(0), F.datediff(F.lit(as_of), F.to_date(F.col(ts_col))))
    return F.pow(F.lit(0.5), age / F.lit(float(max(half_life_days, 1))))


def purchase_interactions(order_lines: DataFrame, as_of: dt.date, half_life_days: int) -> DataFrame:
    """Purchase signal per order line up to ``as_of``.

    Args:
        order_lines: bronze ``order_lines`` (persona_id, product_id, order_ts, quantity).
        as_of: last day included.
        half_life_days: recency half-life of the decay.

    Returns:
        DataFrame(persona_id, product_id, weight double, bought int): ``weight`` is
        quantity x decay (negative for refunds), ``bought`` is 1 for a positive quantity.
    """
    return order_lines.where(F.col("order_ts") < _end_of(as_of)).select(
        "persona_id",
        "product_id",
        (F.col("quantity").cast("double") * _decay("order_ts", as_of, half_life_days)).alias("weight"),
        (F.col("quantity") > 0).cast("int").alias("bought"),
    )


def event_interactions(
    events: DataFrame,
    as_of: dt.date,
    cfg: RecommendConfig,
    personas: DataFrame | None = None,
) -> DataFrame:
    """Product views and add-to-cart events up to ``as_of`` as weighted signal.

    Args:
        events: bronze ``events``.
        as_of: last day included.
        cfg: ``config.recommend`` (view_weight, cart_weight, recency_half_life_days).
        personas: optional bronze ``personas``: resolves cookie-only events to a persona.

    Returns:
        DataFrame(persona_id, product_id, weight double, bought int = 0).
    """
    ev = events.where(
        F.col("event_type").isin("product_view", "add_to_cart")
        & F.col("product_id").isNotNull()
        & (F.col("event_ts") < _end_of(as_of))
    )
    if personas is not None:
        cookies = personas.where(F.col("cookie_id").isNotNull()).select(
            F.col("cookie_id").alias("_cookie"), F.col("persona_id").alias("_cookie_persona")
        )
        ev = ev.join(cookies, ev["cookie_id"] == cookies["_cookie"], "left").withColumn(
            "persona_id", F.coalesce("persona_id", "_cookie_persona")
        )
    kind_weight = F.when(F.col("event_type") == "add_to_cart", F.lit(cfg.cart_weight)).otherwise(F.lit(cfg.view_weight))
    return ev.where(F.col("persona_id").isNotNull()).select(
        "persona_id",
        "product_id",
        (kind_weight * _decay("event_ts", as_of, cfg.recency_half_life_days)).alias("weight"),
        F.lit(0).alias("bought"),
    )


def interactions(
    order_lines: DataFrame,
    events: DataFrame | None,
    as_of: dt.date,
    cfg: RecommendConfig,
    personas: DataFrame | None = None,
) -> DataFrame:
    """Implicit feedback per (persona, product) up to the end of ``as_of``.

    Args:
        order_lines: bronze ``order_lines``.
        events: bronze ``events`` (or None: purchases only).
        as_of: last day included.
        cfg: ``config.recommend``.
        personas: optional, to attribute cookie-only events.

    Returns:
        DataFrame(persona_id, product_id, strength double, bought boolean): ``strength`` is
        the summed weight (it can be <= 0 after refunds; :func:`training_rows` drops those);
        ``bought`` is true when the persona ever bought the product (refunded or not).
    """
    parts = purchase_interactions(order_lines, as_of, cfg.recency_half_life_days)
    if events is not None:
        parts = parts.unionByName(event_interactions(events, as_of, cfg, personas))
    return parts.groupBy("persona_id", "product_id").agg(
        F.sum("weight").alias("strength"), (F.max("bought") > 0).alias("bought")
    )


def training_rows(inter: DataFrame) -> DataFrame:
    """Rows ALS learns from: positive strength only (refunded-away purchases carry no preference)."""
    return inter.where(F.col("strength") > 0)


# ----------------------------------------------------------------- id mapping


def index_ids(df: DataFrame, id_col: str, index_col: str) -> DataFrame:
    """Map the distinct string ids of ``df[id_col]`` to consecutive ints 0..n-1 (sorted by id).

    Built-ins only and no id reaches the driver: ids are range-partitioned and sorted,
    each row gets its row number within its Spark partition, and the driver collects
    one count per partition to turn those into global offsets (the zipWithIndex idea).

    Args:
        df: any DataFrame with ``id_col``.
        id_col: string id column.
        index_col: name of the int column to add.

    Returns:
        DataFrame(id_col, index_col int), one row per distinct non-null id.

    Raises:
        ModelError: more ids than an int can index.
    """
    # localCheckpoint pins the partitioning so spark_partition_id() is stable between
    # the count job and the final projection.
    ids = (
        df.select(id_col)
        .where(F.col(id_col).isNotNull())
        .distinct()
        .orderBy(id_col)
        .withColumn("_pid", F.spark_partition_id())
        .localCheckpoint()
    )
    counts = sorted((r["_pid"], r["count"]) for r in ids.groupBy("_pid").count().collect())
    total = sum(c for _, c in counts)
    if total > MAX_INDEX:
        raise ModelError(f"{total} distinct {id_col} values: more than ALS can index ({MAX_INDEX})")
    offsets, running = [], 0
    for pid, count in counts:
        offsets.append((pid, running))
        running += count
    spark = df.sparkSession
    offset_df = spark.createDataFrame(offsets or [(0, 0)], "_pid int, _offset long")
    w = Window.partitionBy("_pid").orderBy(id_col)
    return (
        ids.join(F.broadcast(offset_df), "_pid")
        .withColumn(index_col, (F.col("_offset") + F.row_number().over(w) - 1).cast("int"))
        .select(id_col, index_col)
    )


# ----------------------------------------------------------------- model


def fit_als(train: DataFrame, cfg: RecommendConfig) -> ALSModel:
    """Fit implicit-feedback ALS on (user_idx, item_idx, strength).

    Args:
        train: indexed training rows.
        cfg: ``config.recommend`` (rank, reg_param, alpha, max_iter, block_size, seed).

    Returns:
        The fitted ``ALSModel`` (coldStartStrategy="drop": unknown ids give no rows, never NaN).
    """
    from pyspark.ml.recommendation import ALS

    als = ALS(
        rank=cfg.rank,
        regParam=cfg.reg_param,
        alpha=cfg.alpha,
        maxIter=cfg.max_iter,
        implicitPrefs=True,
        userCol=USER_IDX,
        itemCol=ITEM_IDX,
        ratingCol="strength",
        coldStartStrategy="drop",
        blockSize=cfg.block_size,
        seed=cfg.seed,
    )
    blocks = cfg.num_blocks or train.sparkSession.sparkContext.defaultParallelism
    als.setNumUserBlocks(blocks).setNumItemBlocks(blocks)
    return als.fit(train)


@dataclass
class RecommendModel:
    """ALS plus the id mappings it needs at scoring time."""

    als: ALSModel
    users: DataFrame  # persona_id, user_idx
    items: DataFrame  # product_id, item_idx


def train_model(inter: DataFrame, cfg: RecommendConfig) -> RecommendModel:
    """Index ids and fit ALS on the positive interactions.

    Args:
        inter: output of :func:`interactions`.
        cfg: ``config.recommend``.

    Returns:
        A :class:`RecommendModel` (mappings cached).

    Raises:
        ModelError: no positive interaction to learn from.
    """
    rows = training_rows(inter).cache()
    users = index_ids(rows, "persona_id", USER_IDX).cache()
    items = index_ids(rows, "product_id", ITEM_IDX).cache()
    if users.limit(1).count() == 0:
        raise ModelError("no purchases or product events before the training date: nothing to train ALS on")
    train = rows.join(users, "persona_id").join(items, "product_id").select(USER_IDX, ITEM_IDX, "strength")
    # One layout that depends on the rows only (hash of the ids, sorted within), so the
    # seeded ALS sees the same blocks in the same order whatever the input files were.
    blocks = cfg.num_blocks or train.sparkSession.sparkContext.defaultParallelism
    train = train.repartition(blocks, USER_IDX, ITEM_IDX).sortWithinPartitions(USER_IDX, ITEM_IDX)
    model = fit_als(train, cfg)
    rows.unpersist()
    return RecommendModel(model, users, items)


# ----------------------------------------------------------------- fallback lists


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


# ----------------------------------------------------------------- scoring


def als_candidates(model: RecommendModel, users: DataFrame, n_fetch: int) -> DataFrame:
    """ALS top ``n_fetch`` items for the given personas that the model knows (MLlib).

    Args:
        model: a :class:`RecommendModel`.
        users: DataFrame(persona_id).
        n_fetch: items per user (top_k plus the over-fetch).

    Returns:
        DataFrame(persona_id, product_id, prediction double); unknown personas give no rows.
    """
    known = users.select("persona_id").distinct().join(model.users, "persona_id")
    recs = model.als.recommendForUserSubset(known.select(USER_IDX), n_fetch)
    exploded = recs.select(USER_IDX, F.explode("recommendations").alias("r")).select(
        USER_IDX, F.col(f"r.{ITEM_IDX}").alias(ITEM_IDX), F.col("r.rating").cast("double").alias("prediction")
    )
    return (
        exploded.where(~F.isnan("prediction"))
        .join(model.users, USER_IDX)
        .join(model.items, ITEM_IDX)
        .select("persona_id", "product_id", "prediction")
    )


ALS_TOP_SCHEMA = "persona_id string, product_id string, prediction double, _r int, _n int"


def _mllib_top_k(model: RecommendModel, targets: DataFrame, bought: DataFrame | None, k: int, cfg) -> DataFrame:
    """``scorer: mllib``: ``recommendForUserSubset`` over-fetched, then bought items removed.

    Over-fetches by the most items any target bought, capped by ``max_overfetch``: a
    user who bought more than that can get fewer than ``k`` ALS rows.
    """
    n_fetch = k
    if bought is not None:
        most = (
            bought.join(targets.select("persona_id"), "persona_id")
            .groupBy("persona_id")
            .count()
            .agg(F.max("count"))
            .first()[0]
        )
        n_fetch = k + min(int(most or 0), cfg.max_overfetch)
    cand = als_candidates(model, targets, n_fetch)
    if bought is not None:
        cand = cand.join(bought, ["persona_id", "product_id"], "left_anti")
    w = Window.partitionBy("persona_id").orderBy(F.desc("prediction"), "product_id")
    top = cand.withColumn("_r", F.row_number().over(w).cast("int")).where(F.col("_r") <= k)
    return top.withColumn("_n", F.count(F.lit(1)).over(Window.partitionBy("persona_id")).cast("int"))


def _top_k_arrow(item_factors: Any, item_idx: Any, product_ids: list[str], k: int, chunk_cells: int = 1 << 22):
    """The ``mapInArrow`` function of :func:`als_top_k` (see there), closed over the item factors.

    ``item_factors`` row i belongs to ALS item ``item_idx[i]`` and product ``product_ids[i]``.
    """

    def run(batches):
        import numpy as np
        import pyarrow as pa

        n_items, rank = item_factors.shape
        item_t = np.ascontiguousarray(item_factors.T)
        # item_idx -> row of item_factors; the last slot (-1) stands for "not in the model"
        lookup = np.full((int(item_idx.max()) + 2) if n_items else 1, -1, dtype=np.int64)
        lookup[item_idx] = np.arange(n_items)
        products = pa.array(product_ids, type=pa.string())
        kk = min(k, n_items)
        for batch in batches:
            total = batch.num_rows
            if total == 0 or kk == 0:
                continue
            step = max(1, chunk_cells // max(n_items, 1))
            for lo in range(0, total, step):
                part = batch.slice(lo, step)
                n = part.num_rows
                feats = part.column("features")
                users = part.column("persona_id")
                scores = feats.flatten().to_numpy(zero_copy_only=False).astype(np.float32).reshape(n, rank) @ item_t
                bought = part.column("_bought")
                lengths = bought.value_lengths().fill_null(0).to_numpy(zero_copy_only=False)
                if lengths.sum():
                    vals = bought.flatten().to_numpy(zero_copy_only=False).astype(np.int64)
                    rows = np.repeat(np.arange(n), lengths)
                    inside = (vals >= 0) & (vals < len(lookup) - 1)
                    cols = np.where(inside, lookup[np.where(inside, vals, len(lookup) - 1)], -1)
                    keep = cols >= 0
                    scores[rows[keep], cols[keep]] = -np.inf
                # Everything scoring at least the k-th best is a candidate (ties included), so
                # the order below is exact: score descending, then item id (= product_id order).
                if kk < n_items:
                    kth = np.partition(scores, n_items - kk, axis=1)[:, n_items - kk]
                    cand = (scores >= kth[:, None]) & np.isfinite(scores)
                else:
                    cand = np.isfinite(scores)
                r, c = np.nonzero(cand)
                sc = scores[r, c]
                order = np.lexsort((c, -sc, r))
                r, c, sc = r[order], c[order], sc[order]
                starts = np.searchsorted(r, np.arange(n))
                pos = np.arange(len(r)) - starts[r]
                take = pos < kk
                r, c, sc, pos = r[take], c[take], sc[take], pos[take]
                per_user = np.bincount(r, minlength=n)
                yield pa.RecordBatch.from_arrays(
                    [
                        users.take(pa.array(r)),
                        products.take(pa.array(c)),
                        pa.array(sc.astype(np.float64)),
                        pa.array((pos + 1).astype(np.int32)),
                        pa.array(per_user[r].astype(np.int32)),
                    ],
                    names=["persona_id", "product_id", "prediction", "_r", "_n"],
                )

    return run


def als_top_k(model: RecommendModel, targets: DataFrame, bought: DataFrame | None, k: int) -> DataFrame:
    """``scorer: vectorized``: the exact ALS top ``k`` per known target, bought items excluded.

    The MLlib model's factors, scored without ``recommendForUserSubset``: the item
    factors (the catalogue, not the customers) go to every task; each Arrow batch of
    user factors is multiplied by them in NumPy (one matrix product per batch, in chunks
    of at most 4M cells), the user's bought items are masked out, and the top ``k`` are
    taken per row. One pass over the users, no shuffle of candidate rows and no
    over-fetch: every user gets ``min(k, items in the model - items they bought)`` rows.

    Args:
        model: a :class:`RecommendModel`.
        targets: DataFrame(persona_id, ...): who to score (unknown personas give no rows).
        bought: DataFrame(persona_id, product_id) to exclude, or None.
        k: items per persona.

    Returns:
        DataFrame(persona_id, product_id, prediction double, _r int rank 1..k, _n int rows of the persona).
    """
    import numpy as np

    items = (
        model.als.itemFactors.withColumnRenamed("id", ITEM_IDX)
        .join(model.items, ITEM_IDX)
        .select(ITEM_IDX, "product_id", "features")
        .orderBy(ITEM_IDX)
        .collect()
    )
    factors = np.array([r["features"] for r in items], dtype=np.float32).reshape(len(items), model.als.rank)
    product_ids = [r["product_id"] for r in items]
    known = targets.select("persona_id").distinct().join(model.users, "persona_id")
    users = known.join(model.als.userFactors.withColumnRenamed("id", USER_IDX), USER_IDX)
    if bought is not None:
        lists = (
            bought.join(F.broadcast(model.items), "product_id")
            .join(known, "persona_id")
            .groupBy("persona_id")
            .agg(F.collect_list(ITEM_IDX).alias("_bought"))
        )
        users = users.join(lists, "persona_id", "left")
    else:
        users = users.withColumn("_bought", F.lit(None).cast("array<int>"))
    run = _top_k_arrow(factors, np.array([r[ITEM_IDX] for r in items], dtype=np.int64), product_ids, k)
    scored = users.select("persona_id", "features", F.col("_bought").cast("array<long>").alias("_bought"))
    return scored.mapInArrow(run, ALS_TOP_SCHEMA)


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
    scorer = getattr(cfg, "scorer", "vectorized")
    if scorer not in SCORERS:
        raise ModelError(f"recommend.scorer: expected one of {', '.join(SCORERS)}, got {scorer!r}")
    als_top = None
    if model is not None:
        if scorer == "mllib":
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


# ----------------------------------------------------------------- evaluation

SPLIT_VALIDATION = "validation"
SPLIT_TEST = "test"
METHODS = ("als", "popularity", "popular_in_segment")
GROUP_KNOWN = "known"
GROUP_COLD = "cold_start"
GROUP_ALL = "all"
GROUPS = (GROUP_KNOWN, GROUP_COLD, GROUP_ALL)
CI_LEVEL = 0.95


def per_user_metrics(recs: DataFrame, truth: DataFrame, k: int) -> DataFrame:
    """precision@k, recall@k and AP@k of every user in ``truth`` (0 for users without recommendations).

    Args:
        recs: DataFrame(persona_id, product_id, rank) (rank 1 = best, unique per user).
        truth: DataFrame(persona_id, product_id): the relevant items.
        k: cut-off.

    Returns:
        DataFrame(persona_id, precision double, recall double, ap double), one row per user of ``truth``.
    """
    truth = truth.select("persona_id", "product_id").distinct()
    r = recs.where(F.col("rank") <= k).select("persona_id", "product_id", "rank")
    hits = r.join(truth.withColumn("hit", F.lit(1)), ["persona_id", "product_id"], "left").fillna({"hit": 0})
    w = Window.partitionBy("persona_id").orderBy("rank").rowsBetween(Window.unboundedPreceding, Window.currentRow)
    hits = hits.withColumn("_cum", F.sum("hit").over(w)).withColumn(
        "_prec", F.when(F.col("hit") == 1, F.col("_cum") / F.col("rank")).otherwise(F.lit(0.0))
    )
    per_user = hits.groupBy("persona_id").agg(F.sum("hit").alias("n_hit"), F.sum("_prec").alias("ap_sum"))
    n_truth = truth.groupBy("persona_id").agg(F.count(F.lit(1)).alias("n_truth"))
    users = n_truth.join(per_user, "persona_id", "left").fillna({"n_hit": 0, "ap_sum": 0.0})
    return users.select(
        "persona_id",
        (F.col("n_hit") / F.lit(float(k))).alias("precision"),
        (F.col("n_hit") / F.col("n_truth")).alias("recall"),
        (F.col("ap_sum") / F.least(F.col("n_truth"), F.lit(k))).alias("ap"),
    )


def ranking_metrics(recs: DataFrame, truth: DataFrame, k: int, catalog_size: int | None = None) -> dict[str, float]:
    """precision@k, recall@k, MAP@k over the users in ``truth``, and catalogue coverage.

    Definitions (as MLlib's ``RankingMetrics``): precision@k = hits in the top k / k;
    recall@k = hits / |relevant|; AP@k = sum over hit positions i of (hits up to i) / i,
    divided by min(|relevant|, k). Users in ``truth`` without recommendations score 0.
    Coverage = distinct recommended products / ``catalog_size``.

    Args:
        recs: DataFrame(persona_id, product_id, rank) (rank 1 = best, unique per user).
        truth: DataFrame(persona_id, product_id): the relevant items.
        k: cut-off.
        catalog_size: number of products (None: coverage not computed).

    Returns:
        {"precision_at_k", "recall_at_k", "map_at_k", "coverage", "users"}.
    """
    row = (
        per_user_metrics(recs, truth, k)
        .agg(
            F.avg("precision").alias("p"),
            F.avg("recall").alias("r"),
            F.avg("ap").alias("m"),
            F.count(F.lit(1)).alias("n"),
        )
        .first()
    )
    coverage = float("nan")
    if catalog_size:
        r = recs.where(F.col("rank") <= k)
        coverage = r.select("product_id").distinct().count() / float(catalog_size)
    return {
        "precision_at_k": float(row["p"] or 0.0),
        "recall_at_k": float(row["r"] or 0.0),
        "map_at_k": float(row["m"] or 0.0),
        "coverage": coverage,
        "users": float(row["n"] or 0),
    }


def _poisson1_cdf() -> list[float]:
    """P(X <= j) for X ~ Poisson(1), j = 0, 1, ... until the tail is below 1e-12."""
    cdf, total, j = [], 0.0, 0
    while 1.0 - total > 1e-12:
        total += math.exp(-1.0) / math.factorial(j)
        cdf.append(total)
        j += 1
    return cdf


def poisson_weight(persona: Column, resample: Column, seed: int) -> Column:
    """A Poisson(1) bootstrap weight per (persona, resample), a pure function of the ids and the seed.

    A uniform from ``xxhash64(persona, resample, seed)`` through the inverse CDF of
    Poisson(1): the same persona gets the same weight in the same resample whatever the
    partitioning or row order (``rand()`` would depend on both).
    """
    bits = F.pmod(F.xxhash64(persona, resample, F.lit(seed)), F.lit(2**53)).cast("double")
    uniform = bits / F.lit(float(2**53))
    weight = F.lit(0)
    for c in _poisson1_cdf():
        weight = weight + (uniform > F.lit(c)).cast("int")
    return weight


def bootstrap_intervals(
    per_user: DataFrame,
    values: list[str],
    ratios: dict[str, tuple[str, str]],
    resamples: int,
    seed: int,
    level: float = CI_LEVEL,
    group_col: str = "group",
) -> dict[str, dict[str, list[float]]]:
    """Percentile bootstrap intervals over users, per group and over all users, in Spark.

    Poisson bootstrap: each user gets an independent Poisson(1) weight per resample
    (:func:`poisson_weight`), which approximates drawing users with replacement and
    needs no per-user row on the driver. Spark sums ``weight`` and ``weight x value``
    per (resample, group); the driver receives ``resamples x groups`` rows, turns them
    into one mean per resample (and one ratio of means for each entry of ``ratios``,
    the lifts: both means over the same resampled users), and takes the percentiles.

    Args:
        per_user: one row per user with ``persona_id``, ``group_col`` and the ``values`` columns.
        values: numeric per-user columns whose means get an interval.
        ratios: ``{name: (numerator column, denominator column)}``: ratio of the means.
        resamples: number of bootstrap resamples.
        seed: the seed of the weights.
        level: the interval's coverage (0.95: the 2.5th and 97.5th percentiles).
        group_col: the column with the user's group.

    Returns:
        ``{group: {value or ratio name: [low, high]}}`` for every group present and ``"all"``;
        NaN bounds where a group's resamples give no estimate.
    """
    import numpy as np

    b = per_user.sparkSession.range(resamples).withColumnRenamed("id", "_b")
    weighted = per_user.crossJoin(F.broadcast(b)).withColumn(
        "_w", poisson_weight(F.col("persona_id"), F.col("_b"), seed)
    )
    rows = (
        weighted.groupBy("_b", group_col)
        .agg(F.sum("_w").alias("_n"), *[F.sum(F.col("_w") * F.col(v)).alias(v) for v in values])
        .collect()
    )  # resamples x groups rows, whatever the number of users
    sums: dict[str, dict[int, dict[str, float]]] = {}
    for row in rows:
        for group in (row[group_col], GROUP_ALL):
            acc = sums.setdefault(group, {}).setdefault(row["_b"], {"_n": 0.0, **{v: 0.0 for v in values}})
            acc["_n"] += float(row["_n"] or 0)
            for v in values:
                acc[v] += float(row[v] or 0.0)
    lo_q, hi_q = 100 * (1 - level) / 2, 100 * (1 + level) / 2
    out: dict[str, dict[str, list[float]]] = {}
    for group, by_b in sums.items():
        draws: dict[str, list[float]] = {name: [] for name in [*values, *ratios]}
        for acc in by_b.values():
            if acc["_n"] <= 0:
                continue
            for v in values:
                draws[v].append(acc[v] / acc["_n"])
            for name, (num, den) in ratios.items():
                if acc[den] > 0:
                    draws[name].append(acc[num] / acc[den])
        out[group] = {
            name: [float(np.percentile(d, lo_q)), float(np.percentile(d, hi_q))] if d else [float("nan")] * 2
            for name, d in draws.items()
        }
    return out


def _load_inputs(lake: Lake) -> tuple[DataFrame, DataFrame | None, DataFrame | None, DataFrame | None]:
    order_lines = lake.read("order_lines")
    events = lake.read("events") if lake.exists("events") else None
    products = lake.read("products") if lake.exists("products") else None
    personas = lake.read("personas") if lake.exists("personas") else None
    return order_lines, events, products, personas


def _features(lake: Lake, snapshot_date: dt.date) -> DataFrame:
    require_feature_partition(lake, snapshot_date)
    return lake.read("customer_features", partitions={"snapshot_date": snapshot_date})


def segments_as_of(lake: Lake, as_of: dt.date) -> tuple[DataFrame | None, str, dt.date | None]:
    """The segments an evaluation may use when its model is trained up to ``as_of``.

    The latest ``customer_features`` partition on or before ``as_of``: a later one (the
    evaluation date's) has value tiers and AI segments that already count the purchases
    the evaluation tests on, a leak in favour of popular-in-segment.

    Args:
        lake: the Lake.
        as_of: the training cutoff (last day of training data).

    Returns:
        (DataFrame(persona_id, segment) or None, segmentation name, the partition date or None);
        without such a partition a warning is logged and the segmentation is ``"none"``.
    """
    dates = [d for d in feature_snapshot_dates(lake) if d <= as_of]
    if not dates:
        log.warning(
            "recommendation evaluation trained up to %s without a segmentation (no customer_features partition "
            "on or before %s; run `segengine features --date %s`): popular_in_segment is the popularity "
            "baseline over one segment of everyone",
            as_of,
            as_of,
            as_of,
        )
        return None, SEGMENTATION_NONE, None
    features = lake.read("customer_features", partitions={"snapshot_date": dates[-1]})
    return segment_of(features), segmentation_of(features), dates[-1]


@dataclass
class _Inputs:
    order_lines: DataFrame
    events: DataFrame | None
    products: DataFrame | None
    personas: DataFrame | None
    catalog: int | None


def _window_truth(order_lines: DataFrame, inter: DataFrame, train_end: dt.date, end: dt.date, cfg) -> DataFrame:
    """Purchases after ``train_end`` up to the end of ``end`` (minus items bought before, when excluded)."""
    truth = (
        order_lines.where(
            (F.col("order_ts") >= _end_of(train_end)) & (F.col("order_ts") < _end_of(end)) & (F.col("quantity") > 0)
        )
        .select("persona_id", "product_id")
        .distinct()
    )
    if cfg.exclude_purchased:
        truth = truth.join(
            inter.where(F.col("bought")).select("persona_id", "product_id"), ["persona_id", "product_id"], "left_anti"
        )
    return truth


def _score_window(
    lake: Lake,
    inputs: _Inputs,
    cfg: RecommendConfig,
    split: str,
    train_end: dt.date,
    end: dt.date,
    k: int,
    compare: dict[str, RecommendModel] | None = None,
) -> tuple[dict[str, Any], DataFrame, RecommendModel]:
    """Fit ALS up to ``train_end`` and score ALS and both baselines on the purchases of (train_end, end].

    Every user with a purchase in the window (of an item not bought before, when
    ``exclude_purchased``) is scored: users ALS knows get ALS (filled from the segment
    list if short), users it does not know (cold start) get the popular-in-segment
    fallback, exactly as :func:`recommend` serves them. Segments come from
    :func:`segments_as_of` ``train_end``.

    Returns:
        (the window's result without intervals, the per-user table (cached: persona_id,
        group, ``<method>_precision|recall|ap``), the fitted model).
    """
    inter = interactions(inputs.order_lines, inputs.events, train_end, cfg, inputs.personas).cache()
    model = train_model(inter, cfg)
    truth = _window_truth(inputs.order_lines, inter, train_end, end, cfg).cache()
    segments, segmentation, seg_date = segments_as_of(lake, train_end)
    if segments is None:
        segments = inter.select("persona_id").distinct().withColumn("segment", F.lit("all"))
    known = model.users.select("persona_id", F.lit(True).alias("_known"))
    users = (
        truth.select("persona_id")
        .distinct()
        .join(segments, "persona_id", "left")
        .join(known, "persona_id", "left")
        .select(
            "persona_id",
            F.coalesce("segment", F.lit("unknown" if segmentation != SEGMENTATION_NONE else "all")).alias("segment"),
            F.when(F.col("_known"), F.lit(GROUP_KNOWN)).otherwise(F.lit(GROUP_COLD)).alias("group"),
        )
        .cache()
    )
    # Segment lists are ranked over the whole population of the partition; users the
    # partition does not have (personas created after it) are in "unknown", whose list is
    # the global one.
    members = segments.unionByName(users.where(F.col("segment") == "unknown").select("persona_id", "segment"))
    bought = inter.where(F.col("bought")).select("persona_id", "product_id") if cfg.exclude_purchased else None
    targets = users.select("persona_id", "segment")
    global_top, seg_list = fallback_lists(inter, inputs.products, members)
    recs = {
        "als": recommend(model, targets, inter, inputs.products, cfg, k=k, segments=members),
        "popularity": top_from_list(targets, global_top, bought, k, key=None),
        "popular_in_segment": top_from_list(targets, seg_list, bought, k, key="segment"),
    }
    per_user = users.select("persona_id", "group")
    for method, df in recs.items():
        m = per_user_metrics(df, truth, k)
        per_user = per_user.join(
            m.select(
                "persona_id",
                *[F.col(c).alias(f"{method}_{c}") for c in ("precision", "recall", "ap")],
            ),
            "persona_id",
            "left",
        )
    per_user = per_user.fillna(0.0).cache()
    sums = (
        per_user.groupBy("group")
        .agg(
            F.count(F.lit(1)).alias("n"),
            *[F.sum(f"{m}_{c}").alias(f"{m}_{c}") for m in METHODS for c in ("precision", "recall", "ap")],
        )
        .collect()
    )
    totals: dict[str, dict[str, float]] = {g: {"n": 0.0} for g in GROUPS}
    for row in sums:
        for g in (row["group"], GROUP_ALL):
            for name, value in row.asDict().items():
                if name != "group":
                    totals[g][name] = totals[g].get(name, 0.0) + float(value or 0)
    coverage: dict[str, dict[str, float]] = {}
    for method, df in recs.items():
        cov = (
            df.where(F.col("rank") <= k)
            .join(users.select("persona_id", "group"), "persona_id")
            .rollup("group")
            .agg(F.countDistinct("product_id").alias("c"))
            .collect()
        )
        coverage[method] = {(r["group"] or GROUP_ALL): r["c"] / float(inputs.catalog) for r in cov if inputs.catalog}
    metrics: dict[str, dict[str, dict[str, float]]] = {}
    lift: dict[str, dict[str, float]] = {}
    for g in GROUPS:
        n = totals[g]["n"]
        metrics[g] = {
            m: {
                "precision_at_k": totals[g].get(f"{m}_precision", 0.0) / n if n else float("nan"),
                "recall_at_k": totals[g].get(f"{m}_recall", 0.0) / n if n else float("nan"),
                "map_at_k": totals[g].get(f"{m}_ap", 0.0) / n if n else float("nan"),
                "coverage": coverage[m].get(g, float("nan")) if n else float("nan"),
                "users": n,
            }
            for m in METHODS
        }
        als_p = metrics[g]["als"]["precision_at_k"]
        lift[g] = {
            f"vs_{base}": als_p / metrics[g][base]["precision_at_k"]
            if n and metrics[g][base]["precision_at_k"] > 0
            else float("nan")
            for base in ("popularity", "popular_in_segment")
        }
    result: dict[str, Any] = {
        "split": split,
        "train_end": train_end.isoformat(),
        "window": [(train_end + dt.timedelta(days=1)).isoformat(), end.isoformat()],
        "segmentation": segmentation,
        "segments_as_of": seg_date.isoformat() if seg_date else None,
        "users": {
            "scored": int(totals[GROUP_ALL]["n"]),
            GROUP_KNOWN: int(totals[GROUP_KNOWN]["n"]),
            GROUP_COLD: int(totals[GROUP_COLD]["n"]),
        },
        "metrics": metrics,
        "lift": lift,
    }
    if compare:
        result["compare"] = {
            name: ranking_metrics(
                recommend(other, targets, inter, inputs.products, cfg, k=k, segments=members),
                truth,
                k,
                inputs.catalog,
            )
            for name, other in compare.items()
        }
    per_user.count()
    for df in (inter, truth, users):
        df.unpersist()
    return result, per_user, model


def _add_intervals(result: dict[str, Any], per_user: DataFrame, cfg: RecommendConfig) -> None:
    """Bootstrap intervals of precision@k and recall@k of each method and of ALS's lifts, per group."""
    values = [f"{m}_{c}" for m in METHODS for c in ("precision", "recall")]
    ratios = {
        "lift_vs_popularity": ("als_precision", "popularity_precision"),
        "lift_vs_popular_in_segment": ("als_precision", "popular_in_segment_precision"),
    }
    resamples = int(getattr(cfg, "eval_bootstrap_resamples", 200))
    seed = int(getattr(cfg, "eval_bootstrap_seed", 17))
    ci = bootstrap_intervals(per_user, values, ratios, resamples, seed) if resamples > 0 else {}
    nan = [float("nan")] * 2
    result["ci"] = {
        g: {
            **{
                m: {
                    "precision_at_k": ci.get(g, {}).get(f"{m}_precision", nan),
                    "recall_at_k": ci.get(g, {}).get(f"{m}_recall", nan),
                }
                for m in METHODS
            },
            "lift_vs_popularity": ci.get(g, {}).get("lift_vs_popularity", nan),
            "lift_vs_popular_in_segment": ci.get(g, {}).get("lift_vs_popular_in_segment", nan),
        }
        for g in GROUPS
    }
    result["bootstrap"] = {
        "resamples": resamples,
        "seed": seed,
        "level": CI_LEVEL,
        "method": "percentile over users, Poisson(1) weight per user and resample (hash of persona_id, resample, seed)",
    }


GRID_FIELDS = ("rank", "reg_param", "alpha", "max_iter", "view_weight", "cart_weight", "recency_half_life_days")


def parse_grid(spec: str, cfg: RecommendConfig) -> list[dict[str, Any]]:
    """``"rank=16,alpha=2;rank=32,alpha=2"`` as a list of ``config.recommend`` overrides.

    Raises:
        ModelError: a key that is not a tunable ``config.recommend`` field, or a bad value.
    """
    grid = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        over: dict[str, Any] = {}
        for item in filter(None, (i.strip() for i in part.split(","))):
            key, _, value = item.partition("=")
            key = key.strip()
            if key not in GRID_FIELDS:
                raise ModelError(f"grid setting {part!r}: {key!r} is not one of {', '.join(GRID_FIELDS)}")
            try:
                over[key] = type(getattr(cfg, key))(value.strip())
            except ValueError:
                raise ModelError(f"grid setting {part!r}: {key}={value!r} is not a number") from None
        grid.append(over)
    return grid


def _spec(over: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in over.items()) or "config"


def evaluate(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    test_days: int | None = None,
    compare: dict[str, RecommendModel] | None = None,
    on_model: Callable[[RecommendModel], None] | None = None,
    validation_days: int | None = None,
    grid: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Time-split evaluation of ALS vs popularity vs popular-in-segment: train / validation / test.

    Three windows carved by time, ending at ``snapshot_date``::

        train <= V  |  validation (V, T]  |  test (T, snapshot_date]
        T = snapshot_date - test_days, V = T - validation_days

    1. **Validation**: for each setting of ``grid`` (default: the configuration as is),
       ALS is fitted on the interactions up to V and scored on the validation window;
       the setting with the highest precision@k over all validation users is chosen
       (ties: the first). ``compare`` models (the champion's validation model) are
       scored on the same validation users; that is what the promotion gate compares.
    2. **Test**, once, with the chosen setting: ALS fitted up to T (train + validation)
       and scored on the test window. Nothing is chosen on it.

    In each window every user with a purchase of an item not bought before is scored:
    ALS-known users get ALS, cold-start users (no interaction before the cutoff) get the
    popular-in-segment fallback, as :func:`recommend` serves them; metrics are given
    for known users, cold-start users and all users. The baselines pick their top k from
    the whole catalogue minus the user's bought items. Segments come from the latest
    feature partition on or before the window's training cutoff (:func:`segments_as_of`).
    Each window has percentile bootstrap intervals (:func:`bootstrap_intervals`) on
    precision@k and recall@k of the three methods and on ALS's lifts.

    Args:
        spark: the session.
        lake: the Lake.
        config: configuration (``config.recommend``).
        snapshot_date: end of the test window.
        test_days: test window length (default ``recommend.eval_test_days``).
        compare: other fitted models scored like ALS on the validation users.
        on_model: receives the chosen ALS model fitted up to V (to log it as the
            validation model a later retrain's gate scores).
        validation_days: validation window length (default ``recommend.eval_validation_days``).
        grid: ``config.recommend`` overrides to choose from on validation (:func:`parse_grid`).

    Returns:
        ``{"validation": window, "test": window, "selected_on": "validation", "params",
        "grid", "k", "test_days", "validation_days", "cutoff" (T), "validation_cutoff" (V)}``
        plus the test split's all-user headline at the top level (``split: "test"``,
        ``test_users``, ``cold_start_users``, ``segmentation``, ``als``, ``popularity``,
        ``popular_in_segment``, ``precision_lift_vs_popularity``). A window is
        ``{"split", "train_end", "window", "segmentation", "segments_as_of", "users":
        {"scored", "known", "cold_start"}, "metrics": {group: {method: {...}}}, "lift":
        {group: {...}}, "ci": {group: {...}}, "bootstrap"}``.
    """
    cfg = config.recommend
    test_days = test_days or cfg.eval_test_days
    validation_days = validation_days or getattr(cfg, "eval_validation_days", test_days)
    if test_days <= 0 or validation_days <= 0:
        raise ModelError(
            f"evaluation windows must be at least one day (test {test_days}, validation {validation_days})"
        )
    cutoff = snapshot_date - dt.timedelta(days=test_days)
    val_cutoff = cutoff - dt.timedelta(days=validation_days)
    k = cfg.top_k
    order_lines, events, products, personas = _load_inputs(lake)
    catalog = products.select("product_id").distinct().count() if products is not None else None
    if catalog is None:
        catalog = order_lines.select("product_id").distinct().count()
    inputs = _Inputs(order_lines, events, products, personas, catalog)

    settings = grid or [{}]
    tried: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, Any], DataFrame, RecommendModel] | None = None
    for i, over in enumerate(settings):
        cfg_i = dataclasses.replace(cfg, **over)
        res, per_user, model = _score_window(lake, inputs, cfg_i, SPLIT_VALIDATION, val_cutoff, cutoff, k, compare)
        p = res["metrics"][GROUP_ALL]["als"]["precision_at_k"]
        tried.append(
            {
                "setting": _spec(over),
                "params": over,
                "split": SPLIT_VALIDATION,
                "precision_at_k": p,
                "lift_vs_popularity": res["lift"][GROUP_ALL]["vs_popularity"],
            }
        )
        score = p if p == p else float("-inf")
        if best is None or score > best[0]:
            if best is not None:
                best[3].unpersist()
            best = (score, i, res, per_user, model)
        else:
            per_user.unpersist()
    assert best is not None
    _, chosen_i, validation, val_users, val_model = best
    _add_intervals(validation, val_users, cfg)
    val_users.unpersist()
    if on_model is not None:
        on_model(val_model)
    chosen = settings[chosen_i]
    cfg_t = dataclasses.replace(cfg, **chosen)
    test, test_users, _ = _score_window(lake, inputs, cfg_t, SPLIT_TEST, cutoff, snapshot_date, k)
    _add_intervals(test, test_users, cfg)
    test_users.unpersist()
    headline = test["metrics"][GROUP_ALL]
    return {
        "k": k,
        "test_days": test_days,
        "validation_days": validation_days,
        "validation_cutoff": val_cutoff.isoformat(),
        "cutoff": cutoff.isoformat(),
        "selected_on": SPLIT_VALIDATION,
        "params": {f: getattr(cfg_t, f) for f in GRID_FIELDS},
        "setting": _spec(chosen),
        "grid": tried,
        "validation": validation,
        "test": test,
        # The headline: test split, all users (cold start included).
        "split": SPLIT_TEST,
        "test_users": test["users"]["scored"],
        "cold_start_users": test["users"][GROUP_COLD],
        "segmentation": test["segmentation"],
        "als": headline["als"],
        "popularity": headline["popularity"],
        "popular_in_segment": headline["popular_in_segment"],
        "precision_lift_vs_popularity": test["lift"][GROUP_ALL]["vs_popularity"],
    }


# ----------------------------------------------------------------- persistence and MLflow


def bundle_root(config: Config) -> str:
    """Where trained recommendation bundles live: ``<warehouse>/models/recommend``."""
    return config.warehouse_uri.rstrip("/") + "/models/recommend"


def save_model(model: RecommendModel, path: str) -> str:
    """Save the ALS model and both id mappings under ``path`` (any Hadoop URI).

    Args:
        model: the trained model.
        path: target directory (overwritten).

    Returns:
        ``path``.
    """
    model.als.write().overwrite().save(path + "/als")
    model.users.write.mode("overwrite").parquet(path + "/users")
    model.items.write.mode("overwrite").parquet(path + "/items")
    return path


def load_model(spark: SparkSession, path: str) -> RecommendModel:
    """Load a bundle written by :func:`save_model`.

    Args:
        spark: the session.
        path: bundle directory.

    Returns:
        The :class:`RecommendModel`.
    """
    from pyspark.ml.recommendation import ALSModel

    return RecommendModel(
        ALSModel.load(path + "/als"), spark.read.parquet(path + "/users"), spark.read.parquet(path + "/items")
    )


def _hadoop_fs(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


BUNDLE_TAG = "segengine.bundle"
VALIDATION_MODEL_TAG = "segengine.validation_model"
VALIDATION_METRIC = "precision_at_k"


def recommend_pipeline(model: RecommendModel) -> Any:
    """The model as one ``PipelineModel([IdMapping(users), IdMapping(items), ALSModel])``.

    Logged to MLflow as is, so a registered version holds its own id mappings.
    """
    from pyspark.ml import PipelineModel

    from segengine.models.idmap import IdMapping

    return PipelineModel(
        stages=[
            IdMapping.of(model.users, "persona_id", USER_IDX),
            IdMapping.of(model.items, "product_id", ITEM_IDX),
            model.als,
        ]
    )


def from_pipeline(pipeline: Any) -> RecommendModel | None:
    """The :class:`RecommendModel` of a :func:`recommend_pipeline` (None: no id mappings in it)."""
    from pyspark.ml import PipelineModel
    from pyspark.ml.recommendation import ALSModel

    from segengine.models.idmap import IdMapping

    stages = pipeline.stages if isinstance(pipeline, PipelineModel) else [pipeline]
    als = next((s for s in stages if isinstance(s, ALSModel)), None)
    maps = {s.getIdCol(): s.mapping for s in stages if isinstance(s, IdMapping)}
    if als is None or "persona_id" not in maps or "product_id" not in maps:
        return None
    return RecommendModel(als, maps["persona_id"], maps["product_id"])


def load_recommend_version(spark: SparkSession, config: Config, mv: Any, validation: bool = False) -> RecommendModel:
    """Load one registered version (its own id mappings), or with ``validation`` its validation model.

    Versions registered before the mappings were part of the model read them from the
    bundle their ``segengine.bundle`` tag names (of that same version).

    Raises:
        ModelError: no ALS in it, or its id mappings are missing.
    """
    import mlflow.spark

    from segengine.models.tracking import load_version

    name = mv.name
    tags = mv.tags or {}
    if validation:
        uri = tags.get(VALIDATION_MODEL_TAG)
        pipeline = mlflow.spark.load_model(uri) if uri else load_version(config, mv, check=False).model
    else:
        pipeline = load_version(config, mv, check=False).model
    model = from_pipeline(pipeline)
    if model is not None:
        return model
    path = tags.get(BUNDLE_TAG)
    if not path and mv.run_id:
        from mlflow import MlflowClient

        path = MlflowClient().get_run(mv.run_id).data.tags.get(BUNDLE_TAG)
    if not path:
        raise ModelError(
            f"model {name} version {mv.version} has no id mappings (neither in the model nor a {BUNDLE_TAG} tag): "
            "it was not trained by `segengine train recommendations`; retrain it"
        )
    for part in ("users", "items"):
        fs, hpath = _hadoop_fs(spark, f"{path}/{part}")
        if not fs.exists(hpath):
            raise ModelError(
                f"model {name} version {mv.version}: its id mappings are missing ({path}/{part}); retrain it"
            )
    from pyspark.ml import PipelineModel

    als = pipeline.stages[0] if isinstance(pipeline, PipelineModel) else pipeline
    return RecommendModel(als, spark.read.parquet(path + "/users"), spark.read.parquet(path + "/items"))


def load_champion_model(spark: SparkSession, config: Config) -> tuple[RecommendModel, str]:
    """Load the recommender the MLflow alias ``mlflow.champion_alias`` points to.

    The alias is resolved to a version once; the ALS factors and the id mappings both
    come from that version (:func:`recommend_pipeline`). Promoting another version
    (moving the alias) switches scoring to it, as for the segment and CLV models.

    Args:
        spark: the session.
        config: configuration (MLflow section, ``recommend.model_name``).

    Returns:
        (the :class:`RecommendModel`, its registered version).

    Raises:
        ModelError: no champion (says which command trains one), or its version has no
            id mappings.
    """
    from segengine.models.tracking import champion_version, configure_mlflow

    configure_mlflow(config)
    name, alias = config.recommend.model_name, config.mlflow.champion_alias
    mv = champion_version(config, name)
    if mv is None:
        raise ModelError(
            f"no registered recommendation model {name}@{alias}: run "
            "`segengine train recommendations --date YYYY-MM-DD` first (or point the alias at a version: "
            "segengine models promote NAME --version N)"
        )
    return load_recommend_version(spark, config, mv), str(mv.version)


def _flat_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """MLflow metric names that say the split and the group (NaN values skipped).

    ``<split>_<group>_<method>_precision_at_10`` (and ``recall``, ``map``, ``coverage``),
    ``..._ci_low`` / ``..._ci_high`` for the bootstrap interval bounds,
    ``<split>_<group>_lift_vs_popularity`` (and ``_vs_popular_in_segment``) with theirs,
    ``<split>_users_scored`` / ``_known`` / ``_cold_start``; split = validation | test,
    group = all | known | cold_start.
    """
    k = evaluation.get("k", 10)
    out: dict[str, float] = {}

    def put(name: str, value: Any) -> None:
        if value is not None and value == value:
            out[name] = float(value)

    for split in (SPLIT_VALIDATION, SPLIT_TEST):
        window = evaluation.get(split)
        if not window:
            continue
        for key, n in window["users"].items():
            put(f"{split}_users_{key}", n)
        for group in GROUPS:
            ci = window.get("ci", {}).get(group, {})
            for method in METHODS:
                for name, value in window["metrics"][group][method].items():
                    if name == "users":
                        continue
                    metric = f"{split}_{group}_{method}_{name.replace('_at_k', f'_at_{k}')}"
                    put(metric, value)
                    bounds = ci.get(method, {}).get(name)
                    if bounds:
                        put(metric + "_ci_low", bounds[0])
                        put(metric + "_ci_high", bounds[1])
            for base in ("popularity", "popular_in_segment"):
                metric = f"{split}_{group}_lift_vs_{base}"
                put(metric, window["lift"][group][f"vs_{base}"])
                bounds = ci.get(f"lift_vs_{base}")
                if bounds:
                    put(metric + "_ci_low", bounds[0])
                    put(metric + "_ci_high", bounds[1])
    return out


def train_recommendations(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    evaluate_first: bool = True,
    log_to_mlflow: bool = True,
    force_promote: bool = False,
) -> dict[str, Any]:
    """Evaluate on a time split, fit ALS on everything up to ``snapshot_date``, save, log, register.

    The bundle (ALS model + id mappings) goes to its own directory
    ``<warehouse>/models/recommend/snapshot_date=<d>/bundle=<id>`` (for notebooks; a
    retrain never overwrites it). MLflow gets the parameters, the evaluation metrics
    and the model with its id mappings (:func:`recommend_pipeline`), registered as a new
    version of ``config.recommend.model_name``. The version becomes the champion only if
    its precision@k on the **validation** window (all users, cold start included) is not
    lower than the current champion's validation model on the same users (or
    ``force_promote``); otherwise it is the challenger. The test window is reported,
    never used for that choice; training picks no hyperparameter (they are
    ``config.recommend``'s; choose them with ``segengine recommend evaluate --grid``,
    which decides on the validation window). Without
    an evaluation (``evaluate_first=False``) there is nothing to compare, so a new
    version becomes champion only when there is none yet or when forced.

    Args:
        spark: the session.
        lake: the Lake.
        config: configuration.
        snapshot_date: last day of training data.
        evaluate_first: run :func:`evaluate` (two more ALS fits: up to the validation
            and the test cutoffs) and log its metrics.
        log_to_mlflow: False skips MLflow (notebooks, quick runs): the bundle is saved
            but nothing is registered, so scoring keeps the current champion.
        force_promote: make the new version the champion whatever its metrics (logged, tagged).

    Returns:
        Summary: users, items, bundle path, evaluation, MLflow run id, model version and
        ``promotion`` (alias given, new vs champion precision).

    Raises:
        ModelError: nothing to train on, or MLflow could not log/register the model.
    """
    from segengine.models.tracking import champion_version, configure_mlflow, score_champion

    cfg = config.recommend
    champion: tuple[str | None, Any, str] = (None, None, "no champion")
    if log_to_mlflow:
        configure_mlflow(config)
        mv = champion_version(config, cfg.model_name)  # resolved once, before training
        champion = (str(mv.version), None, "no evaluation (--no-evaluate)") if mv is not None else champion
        if mv is not None and evaluate_first:
            champion = score_champion(mv, lambda v: load_recommend_version(spark, config, v, validation=True))
    fitted: dict[str, RecommendModel] = {}
    evaluation = None
    if evaluate_first:
        evaluation = evaluate(
            spark,
            lake,
            config,
            snapshot_date,
            compare={"champion": champion[1]} if champion[1] is not None else None,
            on_model=lambda m: fitted.__setitem__("validation", m),
        )
    order_lines, events, _, personas = _load_inputs(lake)
    inter = interactions(order_lines, events, snapshot_date, cfg, personas).cache()
    model = train_model(inter, cfg)
    path = f"{bundle_root(config)}/snapshot_date={snapshot_date.isoformat()}/bundle={uuid.uuid4().hex[:12]}"
    save_model(model, path)
    summary: dict[str, Any] = {
        "snapshot_date": snapshot_date.isoformat(),
        "users": model.users.count(),
        "items": model.items.count(),
        "bundle": path,
        "evaluation": _without_compare(evaluation) if evaluation else None,
    }
    inter.unpersist()
    if log_to_mlflow:
        summary.update(
            _log_mlflow(
                config, snapshot_date, model, summary, evaluation, fitted.get("validation"), champion, force_promote
            )
        )
    return summary


def _without_compare(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The evaluation without the champion's scores (they belong to the promotion record)."""
    out = dict(evaluation)
    out[SPLIT_VALIDATION] = {k: v for k, v in evaluation[SPLIT_VALIDATION].items() if k != "compare"}
    return out


def _log_mlflow(
    config: Config,
    snapshot_date: dt.date,
    model: RecommendModel,
    summary: dict[str, Any],
    evaluation: dict[str, Any] | None,
    validation_model: RecommendModel | None,
    champion: tuple[str | None, Any, str],
    force: bool,
) -> dict[str, Any]:
    import mlflow
    import mlflow.spark
    import pyspark

    from segengine.models.tracking import Validation, register_and_promote

    cfg = config.recommend
    pins = [f"pyspark=={pyspark.__version__}"]
    with mlflow.start_run(run_name=f"recommend-{snapshot_date.isoformat()}") as run:
        mlflow.set_tag("segengine.model", "recommend")
        mlflow.set_tag(BUNDLE_TAG, summary["bundle"])
        mlflow.log_params(
            {
                "rank": cfg.rank,
                "reg_param": cfg.reg_param,
                "alpha": cfg.alpha,
                "max_iter": cfg.max_iter,
                "block_size": cfg.block_size,
                "view_weight": cfg.view_weight,
                "cart_weight": cfg.cart_weight,
                "recency_half_life_days": cfg.recency_half_life_days,
                "exclude_purchased": cfg.exclude_purchased,
                "snapshot_date": snapshot_date.isoformat(),
                "users": summary["users"],
                "items": summary["items"],
                "seed": cfg.seed,
            }
        )
        if evaluation is not None:
            mlflow.log_metrics(_flat_metrics(evaluation))
            # Which segments popular_in_segment was scored on ("none": no feature partition).
            mlflow.set_tag("segengine.eval_segmentation", evaluation.get("segmentation", SEGMENTATION_NONE))
            # Which split each figure comes from: hyperparameters and the promotion gate
            # read the validation window only; the test window is scored once.
            mlflow.set_tags(
                {
                    "segengine.eval_selected_on": evaluation["selected_on"],
                    "segengine.eval_train_end": evaluation["validation_cutoff"],
                    "segengine.eval_validation_window": "..".join(evaluation[SPLIT_VALIDATION]["window"]),
                    "segengine.eval_test_window": "..".join(evaluation[SPLIT_TEST]["window"]),
                    "segengine.eval_segments_as_of": str(evaluation[SPLIT_TEST]["segments_as_of"]),
                }
            )
        try:
            # The spark flavour still takes the artifact path positionally. The id
            # mappings are stages of the logged model: one version, one artifact.
            info = mlflow.spark.log_model(recommend_pipeline(model), "model", pip_requirements=pins)
            tags = {BUNDLE_TAG: summary["bundle"]}
            if validation_model is not None:
                # The model fitted before the evaluation cutoff: what a later retrain compares against.
                val_info = mlflow.spark.log_model(
                    recommend_pipeline(validation_model), "validation_model", pip_requirements=pins
                )
                mlflow.set_tag(VALIDATION_MODEL_TAG, val_info.model_uri)
                tags[VALIDATION_MODEL_TAG] = val_info.model_uri
            champ_version, champ_value, note = champion
            if evaluation is not None:
                # The gate reads the validation window (all users, cold start included),
                # never the test window.
                gate = evaluation[SPLIT_VALIDATION]
                value = gate["metrics"][GROUP_ALL]["als"]["precision_at_k"]
                champ_value = (gate.get("compare") or {}).get("champion", {}).get("precision_at_k")
            else:
                value = float("nan")
            validation = Validation(
                metric=f"precision_at_{cfg.top_k}",
                value=value,
                higher_is_better=True,
                champion_version=champ_version,
                champion_value=champ_value,
                note=note,
            )
            # ALS reads no customer_features column: an empty feature list.
            promotion = register_and_promote(
                config, info.model_uri, cfg.model_name, [], validation, force=force, tags=tags
            )
        except Exception as exc:
            raise ModelError(
                f"the ALS bundle is saved at {summary['bundle']} but MLflow could not log/register it: {exc}"
            ) from exc
        return {
            "mlflow_run_id": run.info.run_id,
            "model_version": int(promotion.version),
            "promotion": promotion.as_dict(),
        }


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
    inter.unpersist()
    return {
        "snapshot_date": snapshot_date.isoformat(),
        "rows": int(stats["rows"]),
        "personas": int(stats["personas"]),
        "als_share": float(stats["als_share"] or 0.0),
        "model_version": model_version,
        "version": version,
    }


def run_train_job(ctx: Any) -> dict[str, Any]:
    """``jobs/train_recommendations.py``: train for ``--date``."""
    return train_recommendations(
        ctx.spark,
        ctx.lake,
        ctx.config,
        ctx.snapshot_date,
        force_promote=bool(getattr(ctx.args, "force_promote", False)),
    )


def run_score_job(ctx: Any) -> dict[str, Any]:
    """``jobs/recommend.py``: score for ``--date``."""
    return score_recommendations(ctx.spark, ctx.lake, ctx.config, ctx.snapshot_date)
