"""Segment stability and migrations between two snapshot dates.

The transition matrix counts personas by (segment on ``from_date``, segment on
``to_date``). A persona absent on one date, or not yet scored, is in the ``(none)``
row/column, so new customers and churned ones are visible rather than silently
dropped. ``share`` is the row share: of the personas in ``from_segment``, the
fraction that moved to ``to_segment``. Stability counts only personas with a real
segment on both dates.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.lake import Lake

NONE_LABEL = "(none)"
MIGRATION_COLUMNS = ("from_date", "to_date", "dimension", "from_segment", "to_segment", "count", "share")


def transition_matrix(before: DataFrame, after: DataFrame, column: str = "ai_segment") -> DataFrame:
    """Counts and row shares of personas moving between groups of ``column``.

    Args:
        before: snapshot on the earlier date (``persona_id``, ``column``).
        after: snapshot on the later date (same columns).
        column: the grouping column (default the AI segment).

    Returns:
        ``from_segment, to_segment, count, share`` (one row per non-empty cell).
    """
    b = before.select("persona_id", F.col(column).cast("string").alias("from_segment"))
    a = after.select("persona_id", F.col(column).cast("string").alias("to_segment"))
    cells = (
        b.join(a, "persona_id", "full_outer")
        .select(
            F.coalesce("from_segment", F.lit(NONE_LABEL)).alias("from_segment"),
            F.coalesce("to_segment", F.lit(NONE_LABEL)).alias("to_segment"),
        )
        .groupBy("from_segment", "to_segment")
        .agg(F.count(F.lit(1)).alias("count"))
    )
    # The matrix has at most (k+1)^2 rows, so a window over the whole of it is cheap.
    row_total = F.sum("count").over(Window.partitionBy("from_segment"))
    return cells.withColumn("share", F.col("count") / row_total).select(
        "from_segment", "to_segment", F.col("count").cast("long").alias("count"), F.col("share").cast("double")
    )


def stability(matrix: DataFrame) -> dict[str, Any]:
    """How consistently personas stay in their segment, from a transition matrix.

    Args:
        matrix: :func:`transition_matrix` output (small: collected here).

    Returns:
        ``{"stability": share staying (or None), "stayed": n, "compared": n,
        "per_segment": {segment: share of its members staying}}``; personas without a
        segment on either date are not compared.
    """
    rows = [r.asDict() for r in matrix.collect()]
    real = [r for r in rows if NONE_LABEL not in (r["from_segment"], r["to_segment"])]
    compared = sum(r["count"] for r in real)
    stayed = sum(r["count"] for r in real if r["from_segment"] == r["to_segment"])
    per_segment: dict[str, float] = {}
    for seg in sorted({r["from_segment"] for r in real}):
        total = sum(r["count"] for r in real if r["from_segment"] == seg)
        same = sum(r["count"] for r in real if r["from_segment"] == seg and r["to_segment"] == seg)
        per_segment[seg] = same / total if total else 0.0
    return {
        "stability": (stayed / compared) if compared else None,
        "stayed": stayed,
        "compared": compared,
        "per_segment": per_segment,
    }


def snapshot_dates(lake: Lake, table: str = "customer_features") -> list[dt.date]:
    """The snapshot dates present in a table partitioned by ``snapshot_date``, ascending.

    Only the partition column is selected, so Spark reads no data columns.
    """
    if not lake.exists(table):
        return []
    rows = lake.read(table).select("snapshot_date").distinct().collect()
    return sorted(r["snapshot_date"] for r in rows if r["snapshot_date"] is not None)


def migrations(
    spark: SparkSession, lake: Lake, from_date: dt.date, to_date: dt.date, column: str = "ai_segment"
) -> DataFrame:
    """Transition matrix between two ``customer_features`` snapshots, for any two dates.

    Args:
        spark: the session (unused; kept for a uniform signature).
        lake: the Lake.
        from_date: earlier snapshot date.
        to_date: later snapshot date.
        column: grouping column (default ``ai_segment``).

    Returns:
        Rows in the ``insights_migrations`` schema (:data:`MIGRATION_COLUMNS`).
    """
    from segengine.errors import SegengineError

    available = set(snapshot_dates(lake))
    for d in (from_date, to_date):
        if d not in available:
            shown = ", ".join(str(x) for x in sorted(available)[-5:]) or "none"
            raise SegengineError(f"customer_features: no snapshot for {d} (latest: {shown})")
    before = lake.read("customer_features", partitions={"snapshot_date": from_date})
    after = lake.read("customer_features", partitions={"snapshot_date": to_date})
    return (
        transition_matrix(before, after, column)
        .withColumn("from_date", F.lit(from_date).cast("date"))
        .withColumn("to_date", F.lit(to_date).cast("date"))
        .withColumn("dimension", F.lit(column))
        .select(*MIGRATION_COLUMNS)
    )
