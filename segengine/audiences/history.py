"""Membership history: who entered and left which audience when, and an audience's days.

Both read ``audience_changes`` (partitioned by ``snapshot_date``) through a date range,
so only the partitions of that range are opened (``Lake.files`` with the same range
lists them). Daily sizes come from ``audience_refreshes``, the size each refresh
recorded, so the history before the range is not replayed.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from segengine.audiences.registry import _rows, _workspace, get_audience

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.lake import Lake


def changes_between(lake: Lake, start: dt.date | None, end: dt.date | None) -> DataFrame:
    """``audience_changes`` rows with ``start <= snapshot_date <= end`` (None: open), pruned by partition."""
    from pyspark.sql import functions as F

    df = lake.read("audience_changes", where={"snapshot_date": (start, end)})
    if start is not None:
        df = df.where(F.col("snapshot_date") >= F.lit(start))
    if end is not None:
        df = df.where(F.col("snapshot_date") <= F.lit(end))
    return df


def persona_history(
    spark: SparkSession,
    lake: Lake,
    persona_id: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    user: str | None = None,
) -> list[dict[str, Any]]:
    """Every audience (``user`` may see) a persona entered or left in the range, oldest first.

    Returns:
        ``[{"date", "audience", "audience_id", "change": "entered" | "left"}]``.
    """
    from pyspark.sql import functions as F

    if not lake.exists("audience_changes"):
        return []
    visible = {
        a.audience_id: a.name
        for a in _rows(spark, lake, _workspace(lake, None))
        if user is None or a.visibility == "shared" or a.owner == user
    }
    rows = (
        changes_between(lake, start, end)
        .where(F.col("persona_id") == F.lit(persona_id))
        .select("snapshot_date", "audience_id", "change")
        .collect()  # one persona's changes
    )
    out = [
        {
            "date": r["snapshot_date"],
            "audience": visible[r["audience_id"]],
            "audience_id": r["audience_id"],
            "change": "entered" if r["change"] == "added" else "left",
        }
        for r in rows
        if r["audience_id"] in visible
    ]
    # Left before entered on one day: a member re-computed twice that day ends where it started.
    return sorted(out, key=lambda r: (r["date"], r["audience"], r["change"] != "left"))


def audience_history(
    spark: SparkSession,
    lake: Lake,
    audience: str,
    start: dt.date | None = None,
    end: dt.date | None = None,
    user: str | None = None,
) -> list[dict[str, Any]]:
    """Per day of the range with a refresh or a change: size, joins and leaves.

    Returns:
        ``[{"date", "size", "joins", "leaves"}]`` oldest first; ``size`` is None on a day
        with changes but no recorded refresh.
    """
    from pyspark.sql import functions as F

    aud = get_audience(spark, lake, audience, user)
    days: dict[dt.date, dict[str, Any]] = {}
    if lake.exists("audience_changes"):
        counts = (
            changes_between(lake, start, end)
            .where(F.col("audience_id") == F.lit(aud.audience_id))
            .groupBy("snapshot_date")
            .agg(
                F.sum((F.col("change") == "added").cast("long")).alias("joins"),
                F.sum((F.col("change") == "removed").cast("long")).alias("leaves"),
            )
            .collect()  # one row per day
        )
        for c in counts:
            days[c["snapshot_date"]] = {
                "date": c["snapshot_date"],
                "size": None,
                "joins": c["joins"],
                "leaves": c["leaves"],
            }
    if lake.exists("audience_refreshes"):
        for r in lake.read_rows("audience_refreshes"):
            day = r["snapshot_date"]
            if r["audience_id"] != aud.audience_id or (start and day < start) or (end and day > end):
                continue
            entry = days.setdefault(day, {"date": day, "size": None, "joins": 0, "leaves": 0})
            entry["size"] = r["size"]
    return [days[d] for d in sorted(days)]
