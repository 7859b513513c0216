"""The ALS model: :class:`RecommendModel` (factors plus id mappings), fitting and training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyspark.ml.recommendation import ALS, ALSModel

from segengine.errors import ModelError
from segengine.models.recommend.feedback import training_rows
from segengine.models.recommend.indexing import index_ids
from segengine.models.recommend.schema import ITEM_IDX, USER_IDX

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from segengine.config import RecommendConfig


def fit_als(train: DataFrame, cfg: RecommendConfig) -> ALSModel:
    """Fit implicit-feedback ALS on (user_idx, item_idx, strength).

    Args:
        train: indexed training rows.
        cfg: ``config.recommend`` (rank, reg_param, alpha, max_iter, block_size, seed).

    Returns:
        The fitted ``ALSModel`` (coldStartStrategy="drop": unknown ids give no rows, never NaN).
    """
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
