"""Stage 5 of the features, tiers: value tier, behaviour state and lifecycle stage.

Columns derived from the feature table (:func:`segengine.features.table.feature_table`);
:func:`with_tiers` adds all three, the scores (:mod:`segengine.features.scores`) follow.

* **value_tier** ranks customers by ``revenue_cycle`` (ties broken by
  ``revenue_lifetime`` then ``persona_id``): the first ``value_tier_top`` share is
  ``top``, the next ``value_tier_next`` share ``middle``, the rest ``rest``.
  Non-customers get null. The ranking is exact (a row_number over customers) rather
  than approxQuantile thresholds: revenue_cycle has a large tie at 0 (customers who
  did not buy in the cycle), and thresholds would put every tied customer in one tier
  and break the 20/30/50 shares. Only persona_id and two numbers go through the
  single-partition sort; it yields the keys of the last top and last middle customer,
  and each row compares its own key to them (no join back).
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
from typing import TYPE_CHECKING

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from segengine.config import FeaturesConfig


def _ranks_at_or_before(last: Column) -> Column:
    """True where a customer ranks at or before ``last`` (a struct of the sort key), null if no ``last``."""
    rc, rl, pid = F.col("revenue_cycle"), F.col("revenue_lifetime"), F.col("persona_id")
    return (rc > last["rc"]) | ((rc == last["rc"]) & ((rl > last["rl"]) | ((rl == last["rl"]) & (pid <= last["pid"]))))


def with_value_tier(df: DataFrame, top_share: float, next_share: float) -> DataFrame:
    """Add ``value_tier`` (top / middle / rest among customers, null otherwise).

    The ranking's sort key is unique (it ends with persona_id), so a tier is every
    customer ranked at or before the tier's last customer: the two boundary keys are
    found by the ranking (one row cross-joined back) and each row compares its key to
    them. The feature frame itself is not shuffled.

    Args:
        df: features with persona_id, persona_type, revenue_cycle, revenue_lifetime.
        top_share: share of customers in ``top`` (0.2).
        next_share: share of customers in ``middle`` (0.3).

    Returns:
        ``df`` plus ``value_tier``.
    """
    customer = F.col("persona_type") == "customer"
    customers = df.where(customer).select("persona_id", "revenue_cycle", "revenue_lifetime")
    order = Window.orderBy(F.col("revenue_cycle").desc(), F.col("revenue_lifetime").desc(), F.col("persona_id").asc())
    count = customers.agg(F.count(F.lit(1)).alias("_n"))
    key = F.struct(
        F.col("revenue_cycle").alias("rc"), F.col("revenue_lifetime").alias("rl"), F.col("persona_id").alias("pid")
    )

    def last_of(share: float) -> Column:
        # the customer ranked round(n * share); none (null) when that tier is empty
        return F.max(F.when(F.col("_rank") == F.round(F.col("_n") * share), key))

    bounds = (
        customers.select("*", F.row_number().over(order).alias("_rank"))
        .crossJoin(F.broadcast(count))
        .agg(last_of(top_share).alias("_top_last"), last_of(top_share + next_share).alias("_middle_last"))
    )
    tier = (
        F.when(~customer, F.lit(None).cast("string"))
        .when(_ranks_at_or_before(F.col("_top_last")), "top")
        .when(_ranks_at_or_before(F.col("_middle_last")), "middle")
        .otherwise("rest")
    )
    return df.crossJoin(F.broadcast(bounds)).select(*df.columns, tier.alias("value_tier"))


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


def with_tiers(df: DataFrame, snapshot_date: dt.date, fconf: FeaturesConfig) -> DataFrame:
    """Add ``value_tier``, ``behaviour_state`` and ``lifecycle_stage`` with the ``features`` settings.

    Args:
        df: :func:`segengine.features.table.feature_table`.
        snapshot_date: the snapshot date.
        fconf: the ``features`` config section.

    Returns:
        ``df`` plus the three tier columns.
    """
    return (
        df.transform(lambda d: with_value_tier(d, fconf.value_tier_top, fconf.value_tier_next))
        .transform(lambda d: with_behaviour_state(d, snapshot_date, fconf.declining_ratio, fconf.dormant_days))
        .transform(
            lambda d: with_lifecycle_stage(d, snapshot_date, fconf.lifecycle_new_days, fconf.lifecycle_established_days)
        )
    )
