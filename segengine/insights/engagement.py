"""Campaign engagement per group and the fit x engagement scoring matrix: pure DataFrame functions.

* :func:`campaign_engagement`: per group and campaign over the last 30 days, the
  members reached, sends, opens, clicks and conversions (the campaign touches of
  :func:`segengine.features.support.campaign_touches`), with open rate (opens /
  sends), click rate (clicks / sends) and conversion rate (conversions / clicks).
* :func:`scoring_matrix`: personas placed on a grid of fit score (rows) x engagement
  score (columns), ``bins`` x ``bins`` equal-width bands of 0-100 (a score of 100 is
  in the top band); per group and cell, the personas, customers and cycle revenue.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

CAMPAIGN_COLUMNS = (
    "snapshot_date",
    "dimension",
    "segment",
    "campaign_id",
    "members_reached",
    "sends",
    "opens",
    "clicks",
    "conversions",
    "open_rate",
    "click_rate",
    "conversion_rate",
)
MATRIX_COLUMNS = (
    "snapshot_date",
    "dimension",
    "segment",
    "fit_bin",
    "engagement_bin",
    "personas",
    "customers",
    "revenue",
)


def _ratio(num: Column, den: Column) -> Column:
    return F.when(den > 0, num.cast("double") / den)


def campaign_engagement(groups: DataFrame, touches: DataFrame, snapshot_date: dt.date) -> DataFrame:
    """Sends, opens, clicks and conversions per group and campaign.

    Args:
        groups: persona_id, dimension, segment (:func:`~segengine.insights.metrics.explode_groups`
            and/or audience groups).
        touches: :func:`segengine.features.support.campaign_touches` of the snapshot.
        snapshot_date: the snapshot the rows describe.

    Returns:
        Rows of :data:`CAMPAIGN_COLUMNS`; a group no campaign reached has no row.
    """
    joined = groups.select("persona_id", "dimension", "segment").join(touches, "persona_id", "inner")
    agg = joined.groupBy("dimension", "segment", "campaign_id").agg(
        F.countDistinct("persona_id").alias("members_reached"),
        *[F.sum(c).alias(c) for c in ("sends", "opens", "clicks", "conversions")],
    )
    return agg.select(
        F.lit(snapshot_date).cast("date").alias("snapshot_date"),
        "dimension",
        "segment",
        "campaign_id",
        *[F.col(c).cast("long").alias(c) for c in ("members_reached", "sends", "opens", "clicks", "conversions")],
        _ratio(F.col("opens"), F.col("sends")).alias("open_rate"),
        _ratio(F.col("clicks"), F.col("sends")).alias("click_rate"),
        _ratio(F.col("conversions"), F.col("clicks")).alias("conversion_rate"),
    )


def score_bin(score: Column, bins: int) -> Column:
    """0 .. bins-1: equal-width bands of 0-100; 100 falls in the top band; null stays null."""
    width = 100.0 / bins
    return F.least(F.greatest(F.floor(score / F.lit(width)), F.lit(0)), F.lit(bins - 1)).cast("int")


def scoring_matrix(groups: DataFrame, snapshot_date: dt.date, bins: int = 5) -> DataFrame:
    """Personas per fit x engagement cell, per group.

    Args:
        groups: exploded groups with ``fit_score``, ``engagement_score``, ``persona_type``
            and ``revenue_cycle``. Personas without both scores are left out.
        snapshot_date: the snapshot.
        bins: bands per axis (``insights.matrix_bins``, default 5).

    Returns:
        Rows of :data:`MATRIX_COLUMNS` (only non-empty cells).
    """
    scored = groups.where(F.col("fit_score").isNotNull() & F.col("engagement_score").isNotNull())
    return (
        scored.groupBy(
            "dimension",
            "segment",
            score_bin(F.col("fit_score"), bins).alias("fit_bin"),
            score_bin(F.col("engagement_score"), bins).alias("engagement_bin"),
        )
        .agg(
            F.count(F.lit(1)).cast("long").alias("personas"),
            F.count(F.when(F.col("persona_type") == "customer", 1)).cast("long").alias("customers"),
            F.coalesce(F.sum("revenue_cycle"), F.lit(0.0)).cast("double").alias("revenue"),
        )
        .select(F.lit(snapshot_date).cast("date").alias("snapshot_date"), *MATRIX_COLUMNS[1:])
    )
