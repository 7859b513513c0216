"""Implicit feedback per (persona, product): purchases and product events, recency-decayed; the bronze inputs."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pyspark.sql import Column
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from segengine.config import RecommendConfig
    from segengine.lake import Lake


def _end_of(as_of: dt.date) -> Column:
    """Exclusive upper bound: data up to the end of ``as_of``."""
    return F.lit(as_of + dt.timedelta(days=1)).cast("timestamp")


def _decay(ts_col: str, as_of: dt.date, half_life_days: int) -> Column:
    """0.5 ** (age in days / half-life): yesterday's signal outweighs last year's."""
    age = F.greatest(F.lit(0), F.datediff(F.lit(as_of), F.to_date(F.col(ts_col))))
    return F.pow(F.lit(0.5), age / F.lit(float(max(half_life_days, 1))))


def purchase_interactions(order_lines: DataFrame, as_of: dt.date, half_life_days: int) -> DataFrame:
    """Purchase signal per order line up to ``as_of``.

    Args:
        order_lines: bronze ``order_lines`` (persona_id, product_id, order_ts, quantity).
        as_of: last day included.
        half_life_days: recency half-life of the decay.

    Returns:
        DataFrame(persona_id, product_id, weight double, bought int): ``weight`` is
        quantity x decay (negative for refunds), ``bought`` is 1 for a positive quantity.
    """
    return order_lines.where(F.col("order_ts") < _end_of(as_of)).select(
        "persona_id",
        "product_id",
        (F.col("quantity").cast("double") * _decay("order_ts", as_of, half_life_days)).alias("weight"),
        (F.col("quantity") > 0).cast("int").alias("bought"),
    )


def event_interactions(
    events: DataFrame,
    as_of: dt.date,
    cfg: RecommendConfig,
    personas: DataFrame | None = None,
) -> DataFrame:
    """Product views and add-to-cart events up to ``as_of`` as weighted signal.

    Args:
        events: bronze ``events``.
        as_of: last day included.
        cfg: ``config.recommend`` (view_weight, cart_weight, recency_half_life_days).
        personas: optional bronze ``personas``: resolves cookie-only events to a persona.

    Returns:
        DataFrame(persona_id, product_id, weight double, bought int = 0).
    """
    ev = events.where(
        F.col("event_type").isin("product_view", "add_to_cart")
        & F.col("product_id").isNotNull()
        & (F.col("event_ts") < _end_of(as_of))
    )
    if personas is not None:
        cookies = personas.where(F.col("cookie_id").isNotNull()).select(
            F.col("cookie_id").alias("_cookie"), F.col("persona_id").alias("_cookie_persona")
        )
        ev = ev.join(cookies, ev["cookie_id"] == cookies["_cookie"], "left").withColumn(
            "persona_id", F.coalesce("persona_id", "_cookie_persona")
        )
    kind_weight = F.when(F.col("event_type") == "add_to_cart", F.lit(cfg.cart_weight)).otherwise(F.lit(cfg.view_weight))
    return ev.where(F.col("persona_id").isNotNull()).select(
        "persona_id",
        "product_id",
        (kind_weight * _decay("event_ts", as_of, cfg.recency_half_life_days)).alias("weight"),
        F.lit(0).alias("bought"),
    )


def interactions(
    order_lines: DataFrame,
    events: DataFrame | None,
    as_of: dt.date,
    cfg: RecommendConfig,
    personas: DataFrame | None = None,
) -> DataFrame:
    """Implicit feedback per (persona, product) up to the end of ``as_of``.

    Args:
        order_lines: bronze ``order_lines``.
        events: bronze ``events`` (or None: purchases only).
        as_of: last day included.
        cfg: ``config.recommend``.
        personas: optional, to attribute cookie-only events.

    Returns:
        DataFrame(persona_id, product_id, strength double, bought boolean): ``strength`` is
        the summed weight (it can be <= 0 after refunds; :func:`training_rows` drops those);
        ``bought`` is true when the persona ever bought the product (refunded or not).
    """
    parts = purchase_interactions(order_lines, as_of, cfg.recency_half_life_days)
    if events is not None:
        parts = parts.unionByName(event_interactions(events, as_of, cfg, personas))
    return parts.groupBy("persona_id", "product_id").agg(
        F.sum("weight").alias("strength"), (F.max("bought") > 0).alias("bought")
    )


def training_rows(inter: DataFrame) -> DataFrame:
    """Rows ALS learns from: positive strength only (refunded-away purchases carry no preference)."""
    return inter.where(F.col("strength") > 0)


def _load_inputs(lake: Lake) -> tuple[DataFrame, DataFrame | None, DataFrame | None, DataFrame | None]:
    order_lines = lake.read("order_lines")
    events = lake.read("events") if lake.exists("events") else None
    products = lake.read("products") if lake.exists("products") else None
    personas = lake.read("personas") if lake.exists("personas") else None
    return order_lines, events, products, personas
