"""Stage 6 of the features: conform the table to the catalog and write what a refresh produces.

* :func:`conform_features`: the model columns (null until a model scores them), the
  event attributes null when the warehouse has no ``events`` table, and exactly the
  catalog's columns in order and types;
* :func:`write_features`: replace the snapshot date's ``customer_features`` partition;
* :func:`write_daily`, :func:`write_state`: the ``customer_daily`` rows and the
  ``feature_state`` / ``feature_state_items`` tables of the window state;
* :func:`write_log`: the ``feature_state_log`` row that commits a refresh (written
  last: a run that fails before it leaves versions that no longer match the log, and
  the next run recomputes in full).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segengine.features.catalog import ATTRIBUTES, EVENT_ATTRIBUTES, MODEL_COLUMNS

if TYPE_CHECKING:
    from segengine.lake import Lake

LOG_SCHEMA = (
    "snapshot_date date, mode string, reason string, since date, daily_from date, versions string, "
    "written_at timestamp, seconds double"
)


def conform(df: DataFrame) -> DataFrame:
    """Select exactly the catalog's columns, in order, cast to the catalog's types."""
    return df.select(*[F.col(a.name).cast(a.spark_type).alias(a.name) for a in ATTRIBUTES])


def conform_features(df: DataFrame, has_events: bool = True) -> DataFrame:
    """The feature table as the catalog stores it.

    Args:
        df: the features with tiers and scores (:func:`segengine.features.scores.with_scores`).
        has_events: False when the warehouse has no ``events`` table: the
            :data:`~segengine.features.catalog.EVENT_ATTRIBUTES` are null (unknown) rather than 0.

    Returns:
        The catalog's columns and types, model columns null.
    """
    for name in MODEL_COLUMNS:
        df = df.withColumn(name, F.lit(None))
    if not has_events:
        # Unknown, not zero: the scores count a missing visit column as none.
        df = df.withColumns({name: F.lit(None) for name in EVENT_ATTRIBUTES})
    return conform(df)


def write_features(lake: Lake, features: DataFrame, day: dt.date) -> int:
    """Replace the partition of ``day``; attributes added to the catalog since the table was
    created become new nullable columns (older partitions read them as null)."""
    return lake.write(
        features,
        "customer_features",
        mode="overwrite",
        replace_partitions={"snapshot_date": day},
        evolve_schema=True,
    )


def write_daily(lake: Lake, daily: DataFrame, replace: bool) -> int:
    """Write ``customer_daily`` rows: all of them (``replace``, one file per day) or append new days."""
    if replace:
        return lake.write(daily.repartition("day"), "customer_daily", mode="overwrite", operation="DAILY")
    return lake.write(daily, "customer_daily", mode="append", operation="DAILY")


def write_state(lake: Lake, st: DataFrame, items: DataFrame) -> dict[str, int]:
    """Overwrite ``feature_state`` and ``feature_state_items``; their new versions."""
    return {
        "feature_state": lake.write(st, "feature_state", mode="overwrite", operation="FEATURE STATE"),
        "feature_state_items": lake.write(items, "feature_state_items", mode="overwrite", operation="FEATURE STATE"),
    }


def write_log(
    lake: Lake,
    day: dt.date,
    mode: str,
    reason: str,
    since: dt.date | None,
    daily_from: dt.date | None,
    versions: dict[str, int | None],
    seconds: float,
) -> None:
    """Append the ``feature_state_log`` row of a refresh that wrote the state (it commits it).

    Args:
        lake: the Lake.
        day: the snapshot date.
        mode: ``incremental`` or ``full``.
        reason: why the planner chose that mode.
        since: the date of the state the refresh started from (None: none).
        daily_from: the first day ``customer_daily`` holds.
        versions: the bronze versions read and the state table versions written.
        seconds: how long the refresh took.
    """
    row = (
        day,
        mode,
        reason,
        since,
        daily_from,
        json.dumps(versions),
        dt.datetime.now(dt.UTC).replace(tzinfo=None),
        seconds,
    )
    lake.write_rows([row], LOG_SCHEMA, "feature_state_log", operation="REFRESH")
