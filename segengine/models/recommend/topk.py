"""The ALS top k per user, bought items excluded: MLlib's ``recommendForUserSubset`` or NumPy over Arrow."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from pyspark.sql import Window
from pyspark.sql import functions as F

from segengine.models.recommend.als import RecommendModel
from segengine.models.recommend.schema import ITEM_IDX, USER_IDX

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import DataFrame

    from segengine.config import RecommendConfig


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


def _mllib_top_k(
    model: RecommendModel, targets: DataFrame, bought: DataFrame | None, k: int, cfg: RecommendConfig
) -> DataFrame:
    """``scorer: mllib``: ``recommendForUserSubset`` over-fetched, then bought items removed.

    Over-fetches by the most items any target bought, capped by ``max_overfetch``: a
    user who bought more than that can get fewer than ``k`` ALS rows.
    """
    n_fetch = k
    if bought is not None:
        row = (
            bought.join(targets.select("persona_id"), "persona_id")
            .groupBy("persona_id")
            .count()
            .agg(F.max("count"))
            .first()
        )
        assert row is not None  # a global aggregate has exactly one row
        most = row[0]
        n_fetch = k + min(int(most or 0), cfg.max_overfetch)
    cand = als_candidates(model, targets, n_fetch)
    if bought is not None:
        cand = cand.join(bought, ["persona_id", "product_id"], "left_anti")
    w = Window.partitionBy("persona_id").orderBy(F.desc("prediction"), "product_id")
    top = cand.withColumn("_r", F.row_number().over(w).cast("int")).where(F.col("_r") <= k)
    return top.withColumn("_n", F.count(F.lit(1)).over(Window.partitionBy("persona_id")).cast("int"))


def _top_k_arrow(
    item_factors: NDArray[Any], item_idx: NDArray[Any], product_ids: list[str], k: int, chunk_cells: int = 1 << 22
) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """The ``mapInArrow`` function of :func:`als_top_k` (see there), closed over the item factors.

    ``item_factors`` row i belongs to ALS item ``item_idx[i]`` and product ``product_ids[i]``.
    """

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        # Imported on the executor that runs the batches.
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
