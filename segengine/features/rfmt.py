"""RFMT and value features from order lines.

Definitions (see docs/features.md):

* a *purchase* is an order with at least one line of positive quantity;
* a *refund* is a line with negative quantity: its value (quantity * unit_price, so
  negative) is subtracted from monetary / revenue on the local date of the refund, and
  it never counts as a purchase. A refund-only persona therefore has frequency 0,
  monetary <= 0 and is not a customer;
* the cycle is ``cycle_start(snapshot, cycle_months) .. snapshot`` (local dates, both
  ends inclusive).

Money is summed as whole micro-units (``unit_price`` rounded to 1e-6, times the
quantity, as a long): integer sums are exact and do not depend on the order Spark
adds them in, so the incremental refresh (sums of daily sums) and a full recompute
give the same cents. Amounts are rounded to 2 decimals only when a feature is shown.

The per-order facts are grouped per persona and *local day* (:func:`order_days`):
those daily rows are what the feature state adds up (:mod:`segengine.features.state`).
An order's lines carry the order's timestamp (see :mod:`segengine.contract`), so an
order falls on one local day.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F

from segengine.features.windows import local_date

MICROS = 1_000_000


def to_micros(col: Column) -> Column:
    """An amount as whole micro-units (long), rounded half up."""
    return F.round(col.cast("double") * F.lit(float(MICROS))).cast("long")


def from_micros(col: Column) -> Column:
    """Micro-units back to a currency amount rounded to 2 decimals."""
    return F.round(col.cast("double") / F.lit(float(MICROS)), 2)


def order_lines_until(order_lines: DataFrame, snapshot_date: dt.date, tz: str, session_tz: str) -> DataFrame:
    """Order lines with their local ``order_date``, up to the end of ``snapshot_date``.

    Args:
        order_lines: bronze ``order_lines``.
        snapshot_date: last local date included (later lines are future data: dropped).
        tz: ``features.timezone``.
        session_tz: the session time zone.

    Returns:
        order_lines plus ``order_date`` and ``line_micros`` (quantity * unit_price in micro-units).
    """
    return (
        order_lines.withColumn("order_date", local_date(F.col("order_ts"), tz, session_tz))
        .where(F.col("order_date") <= F.lit(snapshot_date))
        .withColumn("line_micros", F.col("quantity").cast("long") * to_micros(F.col("unit_price")))
    )


def order_facts(lines: DataFrame) -> DataFrame:
    """One row per (persona_id, order_id): date, channel, purchase flag, values, items.

    Args:
        lines: output of :func:`order_lines_until`.

    Returns:
        persona_id, order_id, order_date, channel, is_purchase, net_micros,
        refund_micros (refunded value, positive), items (bought units).
    """
    return lines.groupBy("persona_id", "order_id").agg(
        F.min("order_date").alias("order_date"),
        F.min("channel").alias("channel"),
        F.max(F.col("quantity") > 0).alias("is_purchase"),
        F.sum("line_micros").alias("net_micros"),
        F.sum(F.when(F.col("quantity") < 0, -F.col("line_micros")).otherwise(F.lit(0).cast("long"))).alias(
            "refund_micros"
        ),
        F.sum(F.when(F.col("quantity") > 0, F.col("quantity")).otherwise(0)).cast("long").alias("items"),
    )


# The order columns of a daily summary row (all additive).
ORDER_DAY_COLUMNS = ("purchases", "net_micros", "refund_orders", "refund_micros", "items")


def order_days(orders: DataFrame) -> DataFrame:
    """Per persona and local day: purchases, net value, refunds, bought units.

    Args:
        orders: :func:`order_facts`.

    Returns:
        persona_id, day, purchases, net_micros, refund_orders, refund_micros, items.
    """
    return orders.groupBy("persona_id", F.col("order_date").alias("day")).agg(
        F.count(F.when(F.col("is_purchase"), 1)).cast("long").alias("purchases"),
        F.sum("net_micros").alias("net_micros"),
        F.count(F.when(F.col("refund_micros") > 0, 1)).cast("long").alias("refund_orders"),
        F.sum("refund_micros").alias("refund_micros"),
        F.sum("items").alias("items"),
    )


def line_items(lines: DataFrame, orders: DataFrame) -> DataFrame:
    """Per persona item rows: bought products (units, spend) and purchases per channel.

    These are the lifetime inputs of the assortment features; they add up across
    days, so the state carries their sums (:func:`assortment_features` reads them).

    Args:
        lines: :func:`order_lines_until` (any date range).
        orders: :func:`order_facts` of the same lines.

    Returns:
        persona_id, kind (``product`` | ``channel``), key, n (units or purchases), micros (bought spend).
    """
    products = (
        lines.where(F.col("quantity") > 0)
        .groupBy("persona_id", F.col("product_id").alias("key"))
        .agg(F.sum(F.col("quantity").cast("long")).alias("n"), F.sum("line_micros").alias("micros"))
        .select("persona_id", F.lit("product").alias("kind"), "key", "n", "micros")
    )
    channels = (
        orders.where(F.col("is_purchase") & F.col("channel").isNotNull())
        .groupBy("persona_id", F.col("channel").alias("key"))
        .agg(F.count(F.lit(1)).cast("long").alias("n"))
        .select("persona_id", F.lit("channel").alias("kind"), "key", "n", F.lit(0).cast("long").alias("micros"))
    )
    return products.unionByName(channels)


def _top(values: DataFrame, column: str, score: str, alias: str) -> DataFrame:
    """The value of ``column`` with the highest ``score`` per persona (ties: alphabetical)."""
    # A window partitioned by persona: each persona's few values are ranked locally.
    w = Window.partitionBy("persona_id").orderBy(F.col(score).desc(), F.col(column).asc())
    return (
        values.withColumn("_rn", F.row_number().over(w))
        .where("_rn = 1")
        .select("persona_id", F.col(column).alias(alias))
    )


def assortment_features(items: DataFrame, products: DataFrame) -> DataFrame:
    """Distinct products/categories, favourite category/brand, preferred channel.

    Category and brand come from the *current* product catalogue (small, broadcast),
    as a full recompute would join them.

    Args:
        items: item rows (:func:`line_items`, summed over the persona's history).
        products: bronze products.

    Returns:
        persona_id, distinct_products, distinct_categories, favourite_category,
        favourite_brand, preferred_channel (personas with a bought line).
    """
    bought = (
        items.where(F.col("kind") == "product")
        .select("persona_id", F.col("key").alias("product_id"), "micros")
        .join(F.broadcast(products.select("product_id", "category", "brand")), "product_id", "left")
    )
    distinct = bought.groupBy("persona_id").agg(
        F.countDistinct("product_id").cast("int").alias("distinct_products"),
        F.countDistinct("category").cast("int").alias("distinct_categories"),
    )

    def spend_by(column: str) -> DataFrame:
        return bought.where(F.col(column).isNotNull()).groupBy("persona_id", column).agg(F.sum("micros").alias("_s"))

    channels = items.where(F.col("kind") == "channel").select("persona_id", F.col("key").alias("channel"), "n")
    return (
        distinct.join(_top(spend_by("category"), "category", "_s", "favourite_category"), "persona_id", "left")
        .join(_top(spend_by("brand"), "brand", "_s", "favourite_brand"), "persona_id", "left")
        .join(_top(channels, "channel", "n", "preferred_channel"), "persona_id", "left")
    )
