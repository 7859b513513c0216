"""RFMT and value features from order lines.

Definitions (see docs/features.md):

* a *purchase* is an order with at least one line of positive quantity;
* a *refund* is a line with negative quantity: its value (quantity * unit_price, so
  negative) is subtracted from monetary / revenue on the local date of the refund, and
  it never counts as a purchase. A refund-only persona therefore has frequency 0,
  monetary <= 0 and is not a customer;
* the cycle is ``cycle_start(snapshot, cycle_months) .. snapshot`` (local dates, both
  ends inclusive).
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from segengine.features.windows import cycle_start, local_date


def order_lines_until(order_lines: DataFrame, snapshot_date: dt.date, tz: str, session_tz: str) -> DataFrame:
    """Order lines with their local ``order_date``, up to the end of ``snapshot_date``.

    Args:
        order_lines: bronze ``order_lines``.
        snapshot_date: last local date included (later lines are future data: dropped).
        tz: ``features.timezone``.
        session_tz: the session time zone.

    Returns:
        order_lines plus ``order_date`` and ``line_value`` (quantity * unit_price).
    """
    return (
        order_lines.withColumn("order_date", local_date(F.col("order_ts"), tz, session_tz))
        .where(F.col("order_date") <= F.lit(snapshot_date))
        .withColumn("line_value", F.col("quantity").cast("double") * F.col("unit_price"))
    )


def with_product_attributes(lines: DataFrame, products: DataFrame) -> DataFrame:
    """Add ``category`` and ``brand`` (null for products missing from the catalogue).

    The product catalogue is small, so it is broadcast.
    """
    return lines.join(F.broadcast(products.select("product_id", "category", "brand")), "product_id", "left")


def order_facts(lines: DataFrame, snapshot_date: dt.date, cycle_months: int) -> DataFrame:
    """One row per (persona_id, order_id): date, purchase flag, net/refund value, cycle flag.

    Args:
        lines: output of :func:`order_lines_until`.
        snapshot_date: the snapshot date.
        cycle_months: cycle length.

    Returns:
        persona_id, order_id, order_date, channel, is_purchase, net_value, refund_value,
        items (bought units), in_cycle.
    """
    start = cycle_start(snapshot_date, cycle_months)
    return (
        lines.groupBy("persona_id", "order_id")
        .agg(
            F.min("order_date").alias("order_date"),
            F.min("channel").alias("channel"),
            F.max(F.col("quantity") > 0).alias("is_purchase"),
            F.sum("line_value").alias("net_value"),
            F.sum(F.when(F.col("quantity") < 0, -F.col("line_value")).otherwise(0.0)).alias("refund_value"),
            F.sum(F.when(F.col("quantity") > 0, F.col("quantity")).otherwise(0)).alias("items"),
        )
        .withColumn("in_cycle", F.col("order_date") >= F.lit(start))
    )


def rfmt_features(orders: DataFrame, snapshot_date: dt.date, cycle_months: int) -> DataFrame:
    """Per persona RFMT and value aggregates from :func:`order_facts`.

    Returns:
        persona_id, recency_days, frequency, monetary, tenure_days, orders_lifetime,
        revenue_lifetime, first_purchase_date, last_purchase_date, items_cycle,
        refunds_lifetime, refund_amount_lifetime (personas with no orders are absent).
    """
    day = F.lit(snapshot_date)
    purchase = F.col("is_purchase")
    cycle_purchase = purchase & F.col("in_cycle")
    agg = orders.groupBy("persona_id").agg(
        F.count(F.when(cycle_purchase, 1)).cast("int").alias("frequency"),
        F.sum(F.when(F.col("in_cycle"), F.col("net_value")).otherwise(0.0)).alias("monetary"),
        F.max(F.when(cycle_purchase, F.col("order_date"))).alias("_last_cycle_purchase"),
        F.count(F.when(purchase, 1)).cast("int").alias("orders_lifetime"),
        F.sum("net_value").alias("revenue_lifetime"),
        F.min(F.when(purchase, F.col("order_date"))).alias("first_purchase_date"),
        F.max(F.when(purchase, F.col("order_date"))).alias("last_purchase_date"),
        F.sum(F.when(F.col("in_cycle"), F.col("items")).otherwise(0)).cast("int").alias("items_cycle"),
        F.count(F.when(F.col("refund_value") > 0, 1)).cast("int").alias("refunds_lifetime"),
        F.sum("refund_value").alias("refund_amount_lifetime"),
    )
    return agg.select(
        "persona_id",
        F.datediff(day, "_last_cycle_purchase").alias("recency_days"),
        "frequency",
        F.round("monetary", 2).alias("monetary"),
        F.datediff(day, "first_purchase_date").alias("tenure_days"),
        "orders_lifetime",
        F.round("revenue_lifetime", 2).alias("revenue_lifetime"),
        "first_purchase_date",
        "last_purchase_date",
        "items_cycle",
        "refunds_lifetime",
        F.round("refund_amount_lifetime", 2).alias("refund_amount_lifetime"),
    )


def _favourite(lines: DataFrame, column: str, alias: str) -> DataFrame:
    """The value of ``column`` with the highest bought spend per persona (ties: alphabetical)."""
    spend = (
        lines.where((F.col("quantity") > 0) & F.col(column).isNotNull())
        .groupBy("persona_id", column)
        .agg(F.sum("line_value").alias("_spend"))
    )
    # A window partitioned by persona: each persona's few categories are ranked locally.
    w = Window.partitionBy("persona_id").orderBy(F.col("_spend").desc(), F.col(column).asc())
    return (
        spend.withColumn("_rn", F.row_number().over(w))
        .where("_rn = 1")
        .select("persona_id", F.col(column).alias(alias))
    )


def assortment_features(lines: DataFrame, orders: DataFrame) -> DataFrame:
    """Distinct products/categories, favourite category/brand, preferred channel.

    Args:
        lines: order lines with product attributes (:func:`with_product_attributes`).
        orders: :func:`order_facts` (for the preferred channel, by purchases).

    Returns:
        persona_id, distinct_products, distinct_categories, favourite_category,
        favourite_brand, preferred_channel.
    """
    bought = lines.where(F.col("quantity") > 0)
    distinct = bought.groupBy("persona_id").agg(
        F.countDistinct("product_id").cast("int").alias("distinct_products"),
        F.countDistinct("category").cast("int").alias("distinct_categories"),
    )
    channel_counts = (
        orders.where(F.col("is_purchase") & F.col("channel").isNotNull())
        .groupBy("persona_id", "channel")
        .agg(F.count(F.lit(1)).alias("_n"))
    )
    w = Window.partitionBy("persona_id").orderBy(F.col("_n").desc(), F.col("channel").asc())
    channel = (
        channel_counts.withColumn("_rn", F.row_number().over(w))
        .where("_rn = 1")
        .select("persona_id", F.col("channel").alias("preferred_channel"))
    )
    return (
        distinct.join(_favourite(lines, "category", "favourite_category"), "persona_id", "left")
        .join(_favourite(lines, "brand", "favourite_brand"), "persona_id", "left")
        .join(channel, "persona_id", "left")
    )
