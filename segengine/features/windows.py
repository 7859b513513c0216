"""Dates and time windows of a snapshot, in the configured time zone.

All features describe "data up to the end of the snapshot date" in
``features.timezone``. Timestamps are instants; each one is turned into its *local
date* in that zone, and every window is a closed range of local dates.
"""

from __future__ import annotations

import calendar
import datetime as dt
import zoneinfo
from typing import TYPE_CHECKING

from pyspark.sql import Column
from pyspark.sql import functions as F

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Zone names Spark and the tz database read as UTC (offset 0, no transitions).
UTC_NAMES = frozenset(
    {"UTC", "Etc/UTC", "UCT", "Etc/UCT", "GMT", "Etc/GMT", "GMT0", "Etc/GMT0", "Universal", "Etc/Universal"}
    | {"Zulu", "Etc/Zulu", "Z", "+00:00"}
)
MICROS_PER_DAY = 86_400_000_000


def session_timezone(spark: SparkSession) -> str:
    """The session time zone (what ``to_date`` of a timestamp uses)."""
    return spark.conf.get("spark.sql.session.timeZone") or "UTC"


def local_date(ts: Column, tz: str, session_tz: str) -> Column:
    """The calendar date of instant ``ts`` in time zone ``tz``.

    In UTC (the default ``features.timezone``) that is the whole days since the epoch,
    rounded down, whatever the session zone: integer arithmetic. Spark's ``to_date``
    builds a zoned date-time per row: the latest date of the 20.4M order lines of 1M
    personas took 0.71-0.73 s with it, 0.31-0.39 s this way.

    Spark renders timestamps in the session time zone, so ``to_date`` alone is only
    right when ``tz`` is the session zone (``build_spark`` sets the session zone from
    ``features.timezone``). Otherwise the instant is shifted to ``tz`` wall-clock and
    back into the session zone before taking the date.

    Args:
        ts: a timestamp column.
        tz: the zone features are computed in (e.g. ``Europe/Berlin``).
        session_tz: ``spark.sql.session.timeZone`` of the running session.

    Returns:
        A date column.
    """
    if tz in UTC_NAMES:
        micros = F.unix_micros(ts)
        day = F.lit(MICROS_PER_DAY)
        # Floor division (pmod is never negative), so instants before 1970 too. The
        # numerator is a multiple of 2^13 (a day is 2^13 * 3^3 * 5^8 micros): exact as a
        # double, and so is the quotient.
        days = (micros - F.pmod(micros, day)) / day
        return F.date_from_unix_date(days.cast("int"))
    if tz == session_tz:
        return F.to_date(ts)
    return F.to_date(F.to_utc_timestamp(F.from_utc_timestamp(ts, tz), session_tz))


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months, clamped to the month's last day.

    Same result as Spark's ``add_months`` (2025-08-31 minus 6 months is 2025-02-28).
    """
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def cycle_start(snapshot_date: dt.date, cycle_months: int) -> dt.date:
    """First local date of the cycle: ``snapshot_date`` minus ``cycle_months`` months.

    The boundary day is *included*: with a 6-month cycle, snapshot 2025-06-30 covers
    2024-12-30 .. 2025-06-30 (both ends inclusive).
    """
    return add_months(snapshot_date, -cycle_months)


def last_days_start(snapshot_date: dt.date, days: int) -> dt.date:
    """First local date of the "last ``days`` days" window (which includes the snapshot day).

    ``last_days_start(2025-06-30, 30)`` is 2025-06-01: 30 dates, both ends inclusive.
    """
    return snapshot_date - dt.timedelta(days=days - 1)


def local_day_bounds(first: dt.date, last: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """The instants (UTC) from the start of local day ``first`` to the end of local day ``last``."""
    zone = zoneinfo.ZoneInfo(tz)
    start = dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    return start, end - dt.timedelta(microseconds=1)
