"""Names shared by the recommender's stages: the recommender labels, the ALS id columns, the output table."""

from __future__ import annotations

from typing import get_args

from pyspark.sql import types as T

from segengine.config import RecommendScorer

RECOMMENDER_ALS = "als"
RECOMMENDER_SEGMENT = "popular_in_segment"
SCORERS: tuple[str, ...] = get_args(RecommendScorer)  # config.recommend.scorer
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
