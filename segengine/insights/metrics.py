"""Per-group metrics over one ``customer_features`` snapshot: pure DataFrame functions.

A *group* is one value of one grouping dimension: an AI segment, a value tier, a
persona type, a behaviour state, a lifecycle stage, an audience, or ``all`` (every
persona). Each persona is fanned out to one row per dimension it belongs to
(:func:`explode_groups`), so every group's metrics come out of a single scan and one
aggregation instead of one job per dimension.

Definitions (documented here because the report and the README quote them):

* ``size``: personas in the group; ``share``: size / personas in the snapshot.
* ``revenue``: net revenue in the current cycle (``revenue_cycle``, refunds subtracted).
* ``avg_revenue_per_customer``: revenue / members that are customers.
* ``avg_basket_value``: cycle revenue / cycle orders (order-weighted, not a mean of means).
* ``avg_clv`` / ``total_clv``: mean and sum of ``clv_predicted`` (null until scored).
* ``retention_rate``: of the group's *customers at the reference snapshot* (the latest
  snapshot on or before ``snapshot_date - cycle_months``), the share whose
  ``last_purchase_date`` at this snapshot is after the reference date, i.e. who bought
  again. Null when no reference snapshot exists.
* ``size_change_30d``: size now minus size at the latest snapshot on or before
  ``snapshot_date - 30 days`` (null when there is none).
* Email engagement: opens and clicks per member over 90 days, the share of members with
  at least one open, and the click-to-open rate (clicks / opens).
* Support (null when the warehouse has no ``support_tickets``): ``tickets_90d`` (sum
  over members) and ``tickets_per_100`` (per 100 members).
* Satisfaction (null without ``survey_responses``): ``csat_avg`` (mean of the members'
  latest CSAT, 1-5) over ``csat_responses`` members who answered; ``nps`` = % promoters
  - % detractors (-100..100) of the members' latest NPS answers, over ``nps_responses``.
* ``expansion_revenue``: sum of ``expansion_revenue`` (this cycle's spend minus the
  previous cycle's) over the ``expansion_base`` members who were customers before the
  cycle; ``expanding_customers``: how many of them spent more.
* ``median_fit_score`` / ``median_engagement_score``: the group's medians (the
  statistics that follow the active segment on the scoring matrix).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

# The feature columns insights group by, in report order.
GROUP_DIMENSIONS: tuple[str, ...] = ("ai_segment", "value_tier", "persona_type", "behaviour_state", "lifecycle_stage")
ALL_DIMENSION = "all"
AUDIENCE_DIMENSION = "audience"

# Output columns of insights_segments, in table order.
METRIC_COLUMNS: tuple[str, ...] = (
    "snapshot_date",
    "dimension",
    "segment",
    "size",
    "share",
    "customers",
    "revenue",
    "revenue_lifetime",
    "avg_revenue_per_customer",
    "avg_basket_value",
    "avg_clv",
    "total_clv",
    "avg_recency_days",
    "avg_frequency",
    "avg_monetary",
    "avg_tenure_days",
    "email_opens_per_member",
    "email_clicks_per_member",
    "email_engaged_share",
    "click_to_open_rate",
    "retention_base",
    "retention_rate",
    "size_30d_ago",
    "size_change_30d",
    "tickets_90d",
    "tickets_per_100",
    "csat_avg",
    "csat_responses",
    "nps",
    "nps_responses",
    "expansion_revenue",
    "expansion_base",
    "expanding_customers",
    "median_fit_score",
    "median_engagement_score",
)
# Optional source tables and the metrics that are null without them.
SOURCE_METRICS: dict[str, tuple[str, ...]] = {
    "support_tickets": ("tickets_90d", "tickets_per_100"),
    "survey_responses": ("csat_avg", "csat_responses", "nps", "nps_responses"),
}


def explode_groups(features: DataFrame, dimensions: Sequence[str] = GROUP_DIMENSIONS) -> DataFrame:
    """Fan each persona out to one row per group it belongs to.

    Args:
        features: one ``customer_features`` snapshot (one row per persona).
        dimensions: the feature columns to group by. A persona whose value is null
            (e.g. no AI segment before scoring) is in no group of that dimension.

    Returns:
        ``features`` plus ``dimension`` and ``segment`` columns, with one extra row per
        persona for the ``all`` dimension.
    """
    pairs = [F.struct(F.lit(ALL_DIMENSION).alias("dimension"), F.lit(ALL_DIMENSION).alias("segment"))]
    pairs += [F.struct(F.lit(d).alias("dimension"), F.col(d).cast("string").alias("segment")) for d in dimensions]
    return (
        features.withColumn("__group", F.explode(F.array(*pairs)))
        .withColumn("dimension", F.col("__group.dimension"))
        .withColumn("segment", F.col("__group.segment"))
        .drop("__group")
        .where(F.col("segment").isNotNull())
    )


def audience_groups(features: DataFrame, members: DataFrame, audiences: DataFrame | None = None) -> DataFrame:
    """Rows of ``features`` for each audience membership, labelled like :func:`explode_groups`.

    Args:
        features: one ``customer_features`` snapshot.
        members: ``audience_members`` (at least ``audience_id``, ``persona_id``).
        audiences: the audience registry; when it has a ``name`` column the group is
            labelled with the name, otherwise with the audience_id; audiences flagged
            ``deleted`` are left out.

    Returns:
        ``features`` columns plus ``dimension`` (= ``audience``) and ``segment``.
    """
    label = F.col("audience_id").cast("string")
    m = members.select("audience_id", "persona_id").distinct()
    if audiences is not None and "deleted" in audiences.columns:
        # Members of a deleted audience may linger until the next refresh: leave them out.
        live = audiences.where(~F.coalesce(F.col("deleted"), F.lit(False))).select("audience_id").distinct()
        m = m.join(F.broadcast(live), "audience_id", "inner")
    if audiences is not None and "name" in audiences.columns:
        names = audiences.select("audience_id", F.col("name").alias("__name")).dropDuplicates(["audience_id"])
        m = m.join(F.broadcast(names), "audience_id", "left")
        label = F.coalesce(F.col("__name"), label)
    m = m.select("persona_id", F.lit(AUDIENCE_DIMENSION).alias("dimension"), label.alias("segment"))
    return features.join(m, "persona_id", "inner")


def _ratio(num: Column, den: Column) -> Column:
    return F.when(den > 0, num / den)


def _maybe(df: DataFrame, name: str, spark_type: str = "double") -> Column:
    """A feature column, or a typed null when the snapshot predates it (written before
    the attribute existed): its metrics are then null, as for an absent source."""
    return F.col(name) if name in df.columns else F.lit(None).cast(spark_type)


def aggregate_groups(
    groups: DataFrame, total_personas: int, sources: Sequence[str] = tuple(SOURCE_METRICS)
) -> DataFrame:
    """Size, revenue, CLV, RFMT, email, support, satisfaction and expansion metrics per group.

    Args:
        groups: output of :func:`explode_groups` and/or :func:`audience_groups`.
        total_personas: personas in the snapshot (the denominator of ``share``).
        sources: the optional tables (:data:`SOURCE_METRICS`) the warehouse has; the
            metrics of the others are null, not 0.

    Returns:
        One row per group with the metric columns (no retention or 30-day change yet).
    """
    tickets = _maybe(groups, "tickets_90d", "long")
    csat = _maybe(groups, "last_csat")
    nps_cat = _maybe(groups, "nps_category", "string")
    expansion = _maybe(groups, "expansion_revenue")
    nps_n = F.count(nps_cat)
    promoters = F.count(F.when(nps_cat == "promoter", 1))
    detractors = F.count(F.when(nps_cat == "detractor", 1))
    is_customer = (F.col("persona_type") == "customer").cast("long")
    opens = F.coalesce(F.col("email_opens_90d"), F.lit(0))
    clicks = F.coalesce(F.col("email_clicks_90d"), F.lit(0))
    agg = groups.groupBy("dimension", "segment").agg(
        F.count(F.lit(1)).alias("size"),
        F.sum(is_customer).alias("customers"),
        F.coalesce(F.sum("revenue_cycle"), F.lit(0.0)).cast("double").alias("revenue"),
        F.coalesce(F.sum("revenue_lifetime"), F.lit(0.0)).cast("double").alias("revenue_lifetime"),
        F.sum(F.coalesce(F.col("orders_cycle"), F.lit(0))).alias("__orders"),
        F.avg("clv_predicted").alias("avg_clv"),
        F.sum("clv_predicted").alias("total_clv"),
        F.avg("recency_days").alias("avg_recency_days"),
        F.avg("frequency").alias("avg_frequency"),
        F.avg("monetary").alias("avg_monetary"),
        F.avg("tenure_days").alias("avg_tenure_days"),
        F.avg(opens).alias("email_opens_per_member"),
        F.avg(clicks).alias("email_clicks_per_member"),
        F.avg((opens > 0).cast("double")).alias("email_engaged_share"),
        F.sum(opens).alias("__opens"),
        F.sum(clicks).alias("__clicks"),
        F.sum(tickets).alias("tickets_90d"),
        F.avg(csat).alias("csat_avg"),
        F.count(csat).alias("csat_responses"),
        F.when(nps_n > 0, (promoters - detractors) * F.lit(100.0) / nps_n).alias("nps"),
        nps_n.alias("nps_responses"),
        F.sum(expansion).alias("expansion_revenue"),
        F.count(expansion).alias("expansion_base"),
        F.count(F.when(expansion > 0, 1)).alias("expanding_customers"),
        F.median(_maybe(groups, "fit_score")).alias("median_fit_score"),
        F.median(_maybe(groups, "engagement_score")).alias("median_engagement_score"),
    )
    absent = [m for table, names in SOURCE_METRICS.items() if table not in sources for m in names]
    if "expansion_revenue" not in groups.columns:
        absent += ["expansion_revenue", "expansion_base", "expanding_customers"]
    agg = agg.withColumn("tickets_per_100", F.col("tickets_90d") * F.lit(100.0) / F.col("size"))
    agg = agg.withColumns({m: F.lit(None) for m in absent})
    return (
        agg.withColumn("share", F.col("size") / F.lit(max(total_personas, 1)))
        .withColumn("avg_revenue_per_customer", _ratio(F.col("revenue"), F.col("customers")))
        .withColumn("avg_basket_value", _ratio(F.col("revenue"), F.col("__orders")))
        .withColumn("click_to_open_rate", _ratio(F.col("__clicks").cast("double"), F.col("__opens")))
        .drop("__orders", "__opens", "__clicks")
    )


def retention(reference_groups: DataFrame, current: DataFrame, reference_date: dt.date) -> DataFrame:
    """Share of each group's customers at the reference snapshot who bought again since.

    Args:
        reference_groups: :func:`explode_groups` of the reference snapshot (group
            membership is taken *then*: "last cycle's members").
        current: the current snapshot (``persona_id``, ``last_purchase_date``).
        reference_date: the reference snapshot's date.

    Returns:
        ``dimension, segment, retention_base, retention_rate``.
    """
    base = reference_groups.where(F.col("persona_type") == "customer").select("persona_id", "dimension", "segment")
    now = current.select("persona_id", "last_purchase_date")
    bought_again = (F.col("last_purchase_date") > F.lit(reference_date)).cast("long")
    return (
        base.join(now, "persona_id", "left")
        .groupBy("dimension", "segment")
        .agg(F.count(F.lit(1)).alias("retention_base"), F.sum(F.coalesce(bought_again, F.lit(0))).alias("__kept"))
        .withColumn("retention_rate", F.col("__kept") / F.col("retention_base"))
        .drop("__kept")
    )


def group_sizes(groups: DataFrame) -> DataFrame:
    """``dimension, segment, size`` of exploded groups (for the 30-day change)."""
    return groups.groupBy("dimension", "segment").agg(F.count(F.lit(1)).alias("size"))


def finish_metrics(
    metrics: DataFrame,
    snapshot_date: dt.date,
    retention_df: DataFrame | None = None,
    sizes_30d_ago: DataFrame | None = None,
) -> DataFrame:
    """Attach retention and the 30-day size change, and order the columns as the table.

    Args:
        metrics: :func:`aggregate_groups` output.
        snapshot_date: the snapshot the metrics describe.
        retention_df: :func:`retention` output, or None when there is no reference snapshot.
        sizes_30d_ago: ``dimension, segment, size`` at the snapshot 30 days back, or None.

    Returns:
        Rows in the ``insights_segments`` schema (:data:`METRIC_COLUMNS`).
    """
    keys = ["dimension", "segment"]
    if retention_df is not None:
        metrics = metrics.join(retention_df, keys, "left")
    else:
        metrics = metrics.withColumn("retention_base", F.lit(None).cast("long")).withColumn(
            "retention_rate", F.lit(None).cast("double")
        )
    if sizes_30d_ago is not None:
        # A group that did not exist 30 days ago grew from 0 (but only if that snapshot exists).
        old = sizes_30d_ago.select(*keys, F.col("size").alias("size_30d_ago"))
        metrics = metrics.join(old, keys, "left").withColumn(
            "size_30d_ago", F.coalesce(F.col("size_30d_ago"), F.lit(0)).cast("long")
        )
        metrics = metrics.withColumn("size_change_30d", F.col("size") - F.col("size_30d_ago"))
    else:
        metrics = metrics.withColumn("size_30d_ago", F.lit(None).cast("long")).withColumn(
            "size_change_30d", F.lit(None).cast("long")
        )
    metrics = metrics.withColumn("snapshot_date", F.lit(snapshot_date).cast("date"))
    casts = {
        "size": "long",
        "customers": "long",
        "tickets_90d": "long",
        "csat_responses": "long",
        "nps_responses": "long",
        "expansion_base": "long",
        "expanding_customers": "long",
        "retention_base": "long",
        "size_30d_ago": "long",
        "size_change_30d": "long",
        "dimension": "string",
        "segment": "string",
        "snapshot_date": "date",
    }
    return metrics.select(*[F.col(c).cast(casts.get(c, "double")).alias(c) for c in METRIC_COLUMNS])


def industry_value_trends(
    order_lines: DataFrame, personas: DataFrame, snapshot_date: dt.date, months: int = 12
) -> DataFrame:
    """Average transaction value by industry and month, for the months up to the snapshot.

    A transaction is one order (``order_id``); its value is the net sum of its lines
    (refund lines are negative). Personas without an industry (consumers) are left out.

    Args:
        order_lines: bronze ``order_lines``.
        personas: bronze ``personas`` (``persona_id``, ``industry``).
        snapshot_date: last day included.
        months: how many calendar months back, including the snapshot's month.

    Returns:
        ``snapshot_date, industry, month (first day), orders, revenue, avg_transaction_value``.
    """
    start = F.add_months(F.trunc(F.lit(snapshot_date), "month"), -(months - 1))
    day = F.to_date("order_ts")
    orders = (
        order_lines.where((day >= start) & (day <= F.lit(snapshot_date)))
        .groupBy("order_id", "persona_id")
        .agg(
            F.sum(F.col("quantity") * F.col("unit_price")).alias("value"),
            F.min(F.trunc(day, "month")).alias("month"),
        )
    )
    industries = personas.where(F.col("industry").isNotNull()).select("persona_id", "industry")
    return (
        orders.join(industries, "persona_id", "inner")
        .groupBy("industry", "month")
        .agg(F.count(F.lit(1)).alias("orders"), F.sum("value").cast("double").alias("revenue"))
        .withColumn("avg_transaction_value", F.col("revenue") / F.col("orders"))
        .withColumn("snapshot_date", F.lit(snapshot_date).cast("date"))
        .select(
            "snapshot_date",
            "industry",
            F.col("month").cast("date").alias("month"),
            F.col("orders").cast("long").alias("orders"),
            "revenue",
            F.col("avg_transaction_value").cast("double").alias("avg_transaction_value"),
        )
    )
