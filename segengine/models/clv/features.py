"""CLV training rows: the time windows, the labels and the customer value features at a cutoff.

Also the model's inputs (:data:`CLV_INPUTS`) and the catalog columns they read.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from segengine.errors import ConfigError, ModelError
from segengine.features.catalog import CATALOG
from segengine.features.windows import cycle_start, local_date
from segengine.models.cutoffs import (
    money,
    shift_months,
)
from segengine.models.segments import customers_only

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


# The model's inputs, in order: (input name, SQL expression over catalog columns, the
# catalog columns it reads). An input is used when the feature rows have all its columns.
CLV_INPUTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("monetary", "`monetary`", ("monetary",)),
    ("frequency", "`frequency`", ("frequency",)),
    ("recency_days", "`recency_days`", ("recency_days",)),
    ("days_since_last_purchase", "`days_since_last_purchase`", ("days_since_last_purchase",)),
    ("avg_basket_value", "`avg_basket_value`", ("avg_basket_value",)),
    ("items_cycle", "`items_cycle`", ("items_cycle",)),
    # Lifetime net spend per 30 days of tenure (at least one month): a rate, not a total.
    (
        "lifetime_spend_30d",
        "`revenue_lifetime` / greatest(`tenure_days` + 1, 30) * 30",
        ("revenue_lifetime", "tenure_days"),
    ),
    # Seasonality: the month the cutoff falls in (the label cycle starts the next day).
    ("cutoff_month", "month(`snapshot_date`)", ("snapshot_date",)),
)


def clv_windows(
    snapshot_date: dt.date, cycle_months: int, train_cycles: int = 1, step_months: int | None = None
) -> dict[str, Any]:
    """The (feature cutoff, label end) windows of each role; a label window is (cutoff, end].

    Args:
        snapshot_date: S.
        cycle_months: the cycle length c (every label window is one cycle long).
        train_cycles: K: the training cutoffs span K cycles.
        step_months: s, the months between two stacked cutoffs (default c: consecutive
            cycles). With s = 1 the n = K·c/s cutoffs fall in every calendar month.

    Returns:
        ``{"train": [(S-2c, S-c), (S-2c-s, S-c-s), …] (n windows), "holdout": (S-c, S),
        "final": [(S-c, S), (S-c-s, S-s), …] (n windows)}``, lists most recent first.
        Every date is computed from S (month ends clamp once). With s = c:
        ``train = [(S-2c, S-c), …, (S-(K+1)c, S-Kc)]``.
    """
    if cycle_months < 1:
        raise ConfigError(f"features.cycle_months: must be at least 1, got {cycle_months}")
    if train_cycles < 1:
        raise ConfigError(f"clv.train_cycles: must be at least 1, got {train_cycles}")
    step = cycle_months if step_months is None else step_months
    if step < 1:
        raise ConfigError(f"clv.cutoff_step_months: must be at least 1, got {step}")
    n = max(train_cycles * cycle_months // step, 1)

    def window(back: int) -> tuple[dt.date, dt.date]:
        # Features at S - back months, label up to one cycle later.
        return shift_months(snapshot_date, -back), shift_months(snapshot_date, -(back - cycle_months))

    return {
        "train": [window(2 * cycle_months + j * step) for j in range(n)],
        "holdout": window(cycle_months),
        "final": [window(cycle_months + j * step) for j in range(n)],
    }


def label_frame(orders: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """Net spend per persona with local order date in ``(start, end]``.

    Args:
        orders: :func:`order_facts` (local order dates, as the features use).
        start: exclusive: orders on this day belong to the features side.
        end: inclusive.

    Returns:
        DataFrame(persona_id, label double).
    """
    day = F.col("order_date")
    return (
        orders.filter((day > F.lit(start)) & (day <= F.lit(end)))
        .groupBy("persona_id")
        .agg(money(F.sum("net_micros")).alias("label"))
    )


def customer_value_features(
    orders: DataFrame, personas: DataFrame, cutoff: dt.date, cycle_months: int, tz: str, session_tz: str
) -> DataFrame:
    """The customers at ``cutoff`` with the value columns the CLV model reads.

    The feature catalog's definitions (``docs/features.md``) computed from the orders
    only, which is far cheaper than the whole feature table at every training cutoff.

    Args:
        orders: :func:`order_facts`.
        personas: bronze personas (a persona exists from its local creation date on;
            orders of unknown personas do not count).
        cutoff: the snapshot date the features describe (data up to the end of that day).
        cycle_months: the cycle length; the cycle is ``cutoff - cycle_months .. cutoff``.
        tz: ``features.timezone``.
        session_tz: the session time zone.

    Returns:
        persona_id, snapshot_date, persona_type (``customer``), recency_days, frequency,
        monetary, tenure_days, orders_lifetime, revenue_lifetime, avg_basket_value,
        days_since_last_purchase, items_cycle: one row per customer (at least one purchase).
    """
    day = F.lit(cutoff)
    past = orders.where(F.col("order_date") <= day)
    in_cycle = F.col("order_date") >= F.lit(cycle_start(cutoff, cycle_months))
    purchase = F.col("is_purchase")
    zero = F.lit(0).cast("long")
    agg = past.groupBy("persona_id").agg(
        F.count(F.when(purchase & in_cycle, 1)).cast("int").alias("frequency"),
        F.sum(F.when(in_cycle, F.col("net_micros")).otherwise(zero)).alias("_cycle_micros"),
        F.max(F.when(purchase & in_cycle, F.col("order_date"))).alias("_last_cycle_purchase"),
        F.count(F.when(purchase, 1)).cast("int").alias("orders_lifetime"),
        F.sum("net_micros").alias("_lifetime_micros"),
        F.min(F.when(purchase, F.col("order_date"))).alias("_first_purchase"),
        F.max(F.when(purchase, F.col("order_date"))).alias("_last_purchase"),
        F.sum(F.when(in_cycle, F.col("items")).otherwise(zero)).cast("int").alias("items_cycle"),
    )
    existing = personas.where(local_date(F.col("created_at"), tz, session_tz) <= day).select("persona_id")
    revenue = money(F.col("_lifetime_micros"))
    return (
        agg.where(F.col("orders_lifetime") > 0)
        .join(existing, "persona_id", "left_semi")
        .select(
            "persona_id",
            day.alias("snapshot_date"),
            F.lit("customer").alias("persona_type"),
            F.datediff(day, "_last_cycle_purchase").alias("recency_days"),
            "frequency",
            money(F.col("_cycle_micros")).alias("monetary"),
            F.datediff(day, "_first_purchase").alias("tenure_days"),
            "orders_lifetime",
            revenue.alias("revenue_lifetime"),
            F.round(revenue / F.col("orders_lifetime"), 2).alias("avg_basket_value"),
            F.datediff(day, "_last_purchase").alias("days_since_last_purchase"),
            "items_cycle",
        )
    )


def training_frame(features: DataFrame, orders: DataFrame, cutoff: dt.date, end: dt.date) -> DataFrame:
    """Customers at ``cutoff`` with their label: net spend in ``(cutoff, end]`` (0 if none).

    Args:
        features: feature rows built at ``cutoff`` (all persona types).
        orders: :func:`order_facts`.
        cutoff: the features' snapshot date.
        end: last day of the label window.

    Returns:
        The customer rows plus a ``label`` column.
    """
    labels = label_frame(orders, cutoff, end)
    return (
        customers_only(features)
        .join(labels, "persona_id", "left")
        .withColumn("label", F.coalesce(F.col("label"), F.lit(0.0)))
    )


def clv_inputs(available: Sequence[str] | None = None) -> list[tuple[str, str, tuple[str, ...]]]:
    """The :data:`CLV_INPUTS` whose catalog columns are all in the catalog and in ``available``."""
    inputs = [
        item for item in CLV_INPUTS if all(c in CATALOG and (available is None or c in available) for c in item[2])
    ]
    if not inputs:
        raise ModelError("CLV: none of the model inputs' columns is in the catalog and the feature rows")
    return inputs


def clv_feature_columns(available: Sequence[str] | None = None) -> list[str]:
    """The catalog columns the CLV model reads (of :func:`clv_inputs`), in input order."""
    cols: list[str] = []
    for _, _, sources in clv_inputs(available):
        cols.extend(c for c in sources if c not in cols)
    return cols
