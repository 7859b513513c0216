"""Value tier, behaviour state and lifecycle stage.

* **value_tier** ranks customers by ``revenue_cycle`` (ties broken by
  ``revenue_lifetime`` then ``persona_id``): the first ``value_tier_top`` share is
  ``top``, the next ``value_tier_next`` share ``middle``, the rest ``rest``.
  Non-customers get null. The ranking is exact (a row_number over customers) rather
  than approxQuantile thresholds: revenue_cycle has a large tie at 0 (customers who
  did not buy in the cycle), and thresholds would put every tied customer in one tier
  and break the 20/30/50 shares. Only persona_id and two numbers go through the
  single-partition sort, then the tier is joined back.
* **behaviour_state** compares active days (a purchase or a visit) in the last
  ``active_days`` with the ``active_days`` before: ``active`` if recently active and not
  below ``declining_ratio`` x the previous window; ``declining`` if recently active but
  below that ratio, or not recently active but active within ``dormant_days``;
  ``dormant`` otherwise (including never active).
* **lifecycle_stage** from days since first seen (the earlier of created date and first
  purchase): ``new`` <= ``lifecycle_new_days``, ``established`` <=
  ``lifecycle_established_days``, else ``long_term``.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F


def with_value_tier(df: DataFrame, top_share: float, next_share: float) -> DataFrame:
    """Add ``value_tier`` (top / middle / rest among customers, null otherwise).

    Args:
        df: features with persona_id, persona_type, revenue_cycle, revenue_lifetime.
        top_share: share of customers in ``top`` (0.2).
        next_share: share of customers in ``middle`` (0.3).

    Returns:
        ``df`` plus ``value_tier``.
    """
    customers = df.where(F.col("persona_type") == "customer").select("persona_id", "revenue_cycle", "revenue_lifetime")
    order = Window.orderBy(F.col("revenue_cycle").desc(), F.col("revenue_lifetime").desc(), F.col("persona_id").asc())
    count = customers.agg(F.count(F.lit(1)).alias("_n"))
    ranked = (
        customers.select("persona_id", F.row_number().over(order).alias("_rank"))
        .crossJoin(F.broadcast(count))
        .select(
            "persona_id",
            F.when(F.col("_rank") <= F.round(F.col("_n") * top_share), "top")
            .when(F.col("_rank") <= F.round(F.col("_n") * (top_share + next_share)), "middle")
            .otherwise("rest")
            .alias("value_tier"),
        )
    )
    return df.join(ranked, "persona_id", "left")


def with_behaviour_state(df: DataFrame, snapshot_date: dt.date, declining_ratio: float, dormant_days: int) -> DataFrame:
    """Add ``behaviour_state`` from active_days_90d, active_days_prev_90d and the last activity.

    Args:
        df: features with active_days_90d, active_days_prev_90d, last_purchase_date, last_visit_date.
        snapshot_date: the snapshot date.
        declining_ratio: recent/previous ratio below which a persona is declining.
        dormant_days: no activity for longer than this is dormant.

    Returns:
        ``df`` plus ``behaviour_state``.
    """
    recent = F.col("active_days_90d")
    previous = F.col("active_days_prev_90d")
    last_active = F.greatest(F.col("last_purchase_date"), F.col("last_visit_date"))
    idle = F.datediff(F.lit(snapshot_date), last_active)
    return df.withColumn(
        "behaviour_state",
        F.when((recent > 0) & (recent >= previous * declining_ratio), "active")
        .when(recent > 0, "declining")
        .when(last_active.isNotNull() & (idle <= dormant_days), "declining")
        .otherwise("dormant"),
    )


def with_lifecycle_stage(df: DataFrame, snapshot_date: dt.date, new_days: int, established_days: int) -> DataFrame:
    """Add ``lifecycle_stage`` from days since first seen (created date or first purchase).

    Args:
        df: features with created_date and first_purchase_date.
        snapshot_date: the snapshot date.
        new_days: at most this many days since first seen is ``new``.
        established_days: at most this many is ``established``; more is ``long_term``.

    Returns:
        ``df`` plus ``lifecycle_stage``.
    """
    first_seen = F.least(F.col("created_date"), F.col("first_purchase_date"))
    days = F.datediff(F.lit(snapshot_date), first_seen)
    return df.withColumn(
        "lifecycle_stage",
        F.when(days <= new_days, "new").when(days <= established_days, "established").otherwise("long_term"),
    )
