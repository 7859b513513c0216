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

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segengine.codes import code_name
from segengine.contract import CHANNELS
from segengine.features.windows import local_date

MICROS = 1_000_000
# The contract's channels in alphabetical order: a channel's code is its place here
# (1-based), so the smallest code of an order is its alphabetically first channel.
CHANNEL_ORDER = tuple(sorted(CHANNELS))


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

    An order's lines repeat its channel (see :mod:`segengine.contract`); should they
    differ, the alphabetically first one is the order's. The channel is grouped as
    its code in :data:`CHANNEL_ORDER`: with only fixed-width aggregates Spark groups
    by hashing, where a string minimum makes it sort all the order lines. Ingest
    accepts no other channel; a value outside the contract counts as no channel.

    The lines are shuffled by persona alone, so the orders come out partitioned by
    persona and every later grouping of them by persona (days, lifetime sums,
    channels) needs no shuffle of its own. At 1M personas that one shuffle of the
    lines takes less than the two it replaces (lines by order, then orders by persona).

    Args:
        lines: output of :func:`order_lines_until`.

    Returns:
        persona_id, order_id, order_date, channel, is_purchase, net_micros,
        refund_micros (refunded value, positive), items (bought units).
    """
    names = F.array(*[F.lit(c) for c in CHANNEL_ORDER])
    code = F.array_position(names, F.col("channel"))  # 0 outside the contract, null for null
    return (
        lines.repartition("persona_id")
        .groupBy("persona_id", "order_id")
        .agg(
            F.min("order_date").alias("order_date"),
            F.min(F.when(code > 0, code.cast("int"))).alias("channel"),
            F.max(F.col("quantity") > 0).alias("is_purchase"),
            F.sum("line_micros").alias("net_micros"),
            F.sum(F.when(F.col("quantity") < 0, -F.col("line_micros")).otherwise(F.lit(0).cast("long"))).alias(
                "refund_micros"
            ),
            F.sum(F.when(F.col("quantity") > 0, F.col("quantity")).otherwise(0)).cast("long").alias("items"),
        )
        .withColumn("channel", code_name(CHANNEL_ORDER, F.col("channel")))
    )


# The order columns of a daily summary row (all additive).
ORDER_DAY_COLUMNS = ("purchases", "net_micros", "refund_orders", "refund_micros", "items")


def orders_as_days(orders: DataFrame) -> DataFrame:
    """Each order as an order day row of its own: sums over them equal sums over :func:`order_days`.

    Lifetime sums and first/last dates need no grouping by day, so they are taken
    over these rows (one shuffle less than over :func:`order_days`).

    Args:
        orders: :func:`order_facts`.

    Returns:
        persona_id, day, purchases, net_micros, refund_orders, refund_micros, items.
    """
    return orders.select(
        "persona_id",
        F.col("order_date").alias("day"),
        F.col("is_purchase").cast("long").alias("purchases"),
        "net_micros",
        (F.col("refund_micros") > 0).cast("long").alias("refund_orders"),
        "refund_micros",
        "items",
    )


def order_days(orders: DataFrame) -> DataFrame:
    """Per persona and local day: purchases, net value, refunds, bought units.

    Args:
        orders: :func:`order_facts`.

    Returns:
        persona_id, day, purchases, net_micros, refund_orders, refund_micros, items.
    """
    rows = orders_as_days(orders)
    return rows.groupBy("persona_id", "day").agg(*[F.sum(c).alias(c) for c in ORDER_DAY_COLUMNS])


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


def _first_by_score(kind: str) -> Column:
    """Aggregate: the key of ``kind`` with the highest score (ties: alphabetical first)."""
    # min of (-score, key): the largest score first, then the smallest key.
    best = F.min(F.when(F.col("kind") == kind, F.struct((-F.col("score")).alias("s"), F.col("key").alias("k"))))
    return best["k"]


def assortment_features(items: DataFrame, products: DataFrame) -> DataFrame:
    """Distinct products/categories, favourite category/brand, preferred channel.

    Category and brand come from the *current* product catalogue (small, broadcast),
    as a full recompute would join them. Each bought product row also gives a
    (category, spend) and a (brand, spend) row, summed per persona and key; one
    aggregation per persona then counts and ranks those with the product and channel
    rows (no window sorts, no joins). Item rows are unique per (persona, kind, key), so
    the distinct products are a count.

    Args:
        items: item rows (:func:`line_items`, summed over the persona's history).
        products: bronze products.

    Returns:
        persona_id, distinct_products, distinct_categories, favourite_category,
        favourite_brand, preferred_channel (personas with a bought line).
    """
    catalogue = F.broadcast(products.select(F.col("product_id").alias("key"), "category", "brand"))
    bought = items.where(F.col("kind") == "product").join(catalogue, "key", "left")

    def spend(kind: str, key: Column) -> Column:
        return F.struct(F.lit(kind).alias("kind"), key.alias("key"), F.col("micros").alias("score"))

    per_group = (
        bought.select(
            "persona_id", F.explode(F.array(spend("category", F.col("category")), spend("brand", F.col("brand"))))
        )
        .select("persona_id", "col.*")
        .where(F.col("key").isNotNull())
        .groupBy("persona_id", "kind", "key")
        .agg(F.sum("score").alias("score"))
    )
    rows = per_group.unionByName(
        items.where(F.col("kind").isin("product", "channel")).select(
            "persona_id",
            "kind",
            "key",
            F.when(F.col("kind") == "channel", F.col("n")).otherwise(F.col("micros")).alias("score"),
        )
    )
    return (
        rows.groupBy("persona_id")
        .agg(
            F.count(F.when(F.col("kind") == "product", 1)).cast("int").alias("distinct_products"),
            F.count(F.when(F.col("kind") == "category", 1)).cast("int").alias("distinct_categories"),
            _first_by_score("category").alias("favourite_category"),
            _first_by_score("brand").alias("favourite_brand"),
            _first_by_score("channel").alias("preferred_channel"),
        )
        .where(F.col("distinct_products") > 0)
    )
