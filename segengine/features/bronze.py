"""Stage 1 of the features: bronze readers.

Each reader turns a bronze table into the rows of the snapshot: dated by their *local
date* in ``features.timezone`` (:func:`~segengine.features.windows.local_date`), cut to
the local days asked for (no rows after the snapshot date: no leakage from the future),
and attributed to a persona. The next stage (:mod:`~segengine.features.rfmt` for order
lines, :mod:`~segengine.features.behaviour` for events) sums them per persona and day.

Identity: an event belongs to its ``persona_id``; an event with only a ``cookie_id``
belongs to the persona with that cookie (if several personas share a cookie, the
smallest persona_id, so the result is deterministic). Events that resolve to no
persona are dropped.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segengine.contract import read_bronze
from segengine.features.money import to_micros
from segengine.features.windows import local_date

if TYPE_CHECKING:
    from segengine.lake import Lake


def read(lake: Lake, versions: dict[str, int | None], name: str, **kwargs: Any) -> DataFrame:
    """Bronze table ``name`` at the version in ``versions`` (the one the refresh planned with).

    A missing optional table (events) reads as an empty frame of its contract schema.
    ``kwargs`` go to the reader (``where=`` prunes partitions and files).
    """
    return read_bronze(lake, name, version=versions.get(name), **kwargs)


def event_date_range(first: dt.date | None, last: dt.date | None) -> tuple[dt.date | None, dt.date | None]:
    """The ``event_date`` partitions that can hold events of the local days ``first .. last``.

    ``event_date`` is the date of ``event_ts`` in the ingest zone, at most a day from the
    local date: one day of slack on each side (None: an open end). A reader given this
    range (``Lake.read(where={"event_date": ...})``) opens only those partitions.
    """
    day = dt.timedelta(days=1)
    return (None if first is None else first - day, None if last is None else last + day)


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


def events_until(
    events: DataFrame, snapshot_date: dt.date, tz: str, session_tz: str, since: dt.date | None = None
) -> DataFrame:
    """Events with their local ``event_day``, in ``since .. snapshot_date``.

    ``event_date`` (the partition column) is filtered first to :func:`event_date_range`
    so a partition-aware reader can prune files; the exact cut uses the local date.
    """
    low, high = event_date_range(since, snapshot_date)
    if low is not None:
        events = events.where(F.col("event_date") >= F.lit(low))
    events = events.where(F.col("event_date") <= F.lit(high))
    out = events.withColumn("event_day", local_date(F.col("event_ts"), tz, session_tz)).where(
        F.col("event_day") <= F.lit(snapshot_date)
    )
    if since is not None:
        out = out.where(F.col("event_day") >= F.lit(since))
    return out


def cookie_owners(personas: DataFrame) -> DataFrame:
    """cookie_id -> the persona its cookie-only events belong to (the smallest persona_id)."""
    return (
        personas.where(F.col("cookie_id").isNotNull())
        .groupBy("cookie_id")
        .agg(F.min("persona_id").alias("_cookie_persona"))
    )


def resolve_personas(events: DataFrame, personas: DataFrame) -> DataFrame:
    """Fill ``persona_id`` of cookie-only events from ``personas.cookie_id``.

    Args:
        events: bronze events.
        personas: bronze personas.

    Returns:
        events with ``persona_id`` resolved where possible (unresolved rows dropped).
    """
    cookies = cookie_owners(personas)
    known = events.where(F.col("persona_id").isNotNull())
    anonymous = (
        events.where(F.col("persona_id").isNull() & F.col("cookie_id").isNotNull())
        .join(cookies, "cookie_id", "inner")
        .withColumn("persona_id", F.col("_cookie_persona"))
        .drop("_cookie_persona")
    )
    return known.unionByName(anonymous.select(*known.columns))
