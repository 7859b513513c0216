"""Stacked cutoffs: what the CLV and propensity models share to build training rows.

Both models learn from rows computed at several cutoffs u of the order history
(features describe data up to the end of day u), each labelled from orders whose local
order date is in a window ``(u, end]`` strictly after the cutoff, and judge the model on
a later holdout cutoff no training label reaches. The windows and the labels differ per
model (a cycle of net spend for CLV, a horizon in days with purchase or churn flags for
propensity); what is the same lives here:

* :func:`order_facts`: one row per order with its local date, the frame every cutoff's
  features and labels aggregate (built once, cached by the trainer);
* :func:`shift_months`: calendar-month steps between cutoffs;
* :func:`order_history_span`: the first and last order dates, to refuse a holdout
  cutoff before the history starts;
* :func:`stack_cutoffs`: the labelled rows of several cutoffs in one fixed layout, so a
  seeded learner gives the same model whatever the file layout;
* :func:`session_time_zone` and the texts of windows and history that
  the error messages use.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from pyspark.sql import functions as F

from segengine.features.windows import local_date
from segengine.frames import one_row

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

MICROS = 1_000_000

# A (cutoff, label end) pair: the label window is ``(cutoff, end]``.
LabelWindow = tuple[dt.date, dt.date]
# Builds the feature rows as of a cutoff (the trainers' default computes them from the
# cached order facts; tests pass their own).
FeatureBuilder = Callable[["SparkSession", "Lake", "Config", dt.date], "DataFrame"]


def shift_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months (clamped to the month's last day)."""
    total = day.year * 12 + (day.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def order_facts(order_lines: DataFrame, tz: str, session_tz: str) -> DataFrame:
    """One row per order: its local date, purchase flag, net value and bought units.

    Args:
        order_lines: bronze order lines (persona_id, order_id, order_ts, quantity, unit_price).
        tz: ``features.timezone``: order dates are local dates there, as in the features.
        session_tz: the session time zone.

    Returns:
        DataFrame(persona_id, order_id, order_date, is_purchase, net_micros long, items long).
        Money is in whole micro-units (exact sums, as the feature table's).
    """
    micros = F.col("quantity").cast("long") * F.round(F.col("unit_price").cast("double") * MICROS).cast("long")
    return order_lines.groupBy("persona_id", "order_id").agg(
        F.min(local_date(F.col("order_ts"), tz, session_tz)).alias("order_date"),
        F.max(F.col("quantity") > 0).alias("is_purchase"),
        F.sum(micros).alias("net_micros"),
        F.sum(F.when(F.col("quantity") > 0, F.col("quantity")).otherwise(0)).cast("long").alias("items"),
    )


def money(micros: Any) -> Any:
    """A column of whole micro-units as money, rounded to cents."""
    return F.round(micros.cast("double") / F.lit(float(MICROS)), 2)


def order_history_span(orders: DataFrame) -> tuple[dt.date | None, dt.date | None]:
    """The first and last local order dates of :func:`order_facts` (both None without orders)."""
    span = one_row(orders.agg(F.min("order_date").alias("first"), F.max("order_date").alias("last")))
    return span["first"], span["last"]


def session_time_zone(spark: SparkSession) -> str:
    """``spark.sql.session.timeZone`` (Spark always sets it: the JVM's zone by default)."""
    tz = spark.conf.get("spark.sql.session.timeZone")
    if tz is None:
        raise ValueError("spark.sql.session.timeZone is not set")
    return tz


def stack_cutoffs(frames: Sequence[DataFrame], partitions: int) -> DataFrame:
    """The training rows of several cutoffs in one layout that depends on the rows only.

    Tree learners draw samples and sum statistics per partition and in row order, so a
    seed pins the model only if the rows come in a fixed layout: hash-partitioned by
    (persona, cutoff) into ``partitions`` and sorted by that key within each partition.
    The ingest layout, the files and ``spark.sql.shuffle.partitions`` then no longer
    matter (a plain ``coalesce`` kept whatever order the upstream shuffles produced).

    Args:
        frames: labelled rows with ``persona_id`` and ``_cutoff`` (one row per pair).
        partitions: the number of partitions of the result.

    Returns:
        The union, repartitioned and sorted.
    """
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df)
    return out.repartition(max(int(partitions), 1), "persona_id", "_cutoff").sortWithinPartitions(
        "persona_id", "_cutoff"
    )


def window_text(window: LabelWindow) -> str:
    return f"({window[0].isoformat()}, {window[1].isoformat()}]"


def history_text(first_day: dt.date | None, last_day: dt.date | None) -> str:
    """The order history as ``first .. last`` for error messages, or ``no orders``."""
    return f"{first_day.isoformat()} .. {last_day.isoformat()}" if first_day and last_day else "no orders"
