"""Stage 2 of the features, orders: per-persona order facts and daily rows.

From the dated order lines of :func:`segengine.features.bronze.order_lines_until`:

* a *purchase* is an order with at least one line of positive quantity;
* a *refund* is a line with negative quantity: its value (quantity * unit_price, so
  negative) is subtracted from monetary / revenue on the local date of the refund, and
  it never counts as a purchase. A refund-only persona therefore has frequency 0,
  monetary <= 0 and is not a customer.

The per-order facts (:func:`order_facts`) are grouped per persona and *local day*
(:func:`order_days`): those additive daily rows are what the window state sums
(:mod:`segengine.features.state`) into the RFMT and value columns. The item rows
(:func:`line_items`: bought products, purchases per channel) feed the assortment
columns. Money is in micro-units (:mod:`segengine.features.money`). An order's lines
carry the order's timestamp (see :mod:`segengine.contract`), so an order falls on one
local day.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segengine.codes import code_name
from segengine.contract import CHANNELS

# The contract's channels in alphabetical order: a channel's code is its place here
# (1-based), so the smallest code of an order is its alphabetically first channel.
CHANNEL_ORDER = tuple(sorted(CHANNELS))


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
        lines: output of :func:`segengine.features.bronze.order_lines_until`.

    Returns:
        persona_id, order_id, order_date, channel, is_purchase, has_refund (a line of
        negative quantity), net_micros, refund_micros (refunded value, positive), items
        (bought units).
    """
    names = F.array(*[F.lit(c) for c in CHANNEL_ORDER])
    code = F.array_position(names, F.col("channel"))  # 0 outside the contract, null for null
    return (
        # The channel is coded before the shuffle: the lines travel with an int.
        lines.select(
            "persona_id",
            "order_id",
            "order_date",
            F.when(code > 0, code.cast("int")).alias("channel"),
            "quantity",
            "line_micros",
        )
        .repartition("persona_id")
        .groupBy("persona_id", "order_id")
        .agg(
            F.min("order_date").alias("order_date"),
            F.min("channel").alias("channel"),
            F.max(F.col("quantity") > 0).alias("is_purchase"),
            # An order with a refunded line, whatever its value: a refund of a free item
            # (price 0) refunds nothing but is still a refund (catalog: refunds_lifetime).
            F.max(F.col("quantity") < 0).alias("has_refund"),
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
        F.col("has_refund").cast("long").alias("refund_orders"),
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
    days, so the state carries their sums (read by
    :func:`segengine.features.table.assortment_features`).

    Args:
        lines: :func:`segengine.features.bronze.order_lines_until` (any date range).
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
