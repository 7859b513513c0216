"""Which inputs exist for a date: the feature snapshots, and the first day of bronze data.

Every job that reads ``customer_features`` for a date calls
:func:`require_feature_partition` first: a missing partition read as an empty one
would empty every dynamic audience and log each member as having left, which a
synced destination then acts on. ``compute_features`` calls :func:`require_bronze_data`
so a snapshot is not written for a date before any order line or event.

Both read only the Delta log (partition values and per-file statistics), never the
rows, so the cost is the number of files, not of customers.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from typing import TYPE_CHECKING, Any

from segengine.dates import parse_date
from segengine.errors import FeatureSnapshotMissing, MissingInput, TableFeatureUnsupported

if TYPE_CHECKING:
    from segengine.config import Config
    from segengine.lake import Lake

FEATURES_TABLE = "customer_features"
PARTITION = "snapshot_date"
# Bronze tables and the timestamp that places a row on a day.
ACTIVITY = (("order_lines", "order_ts"), ("events", "event_ts"))


def _day(value: Any, field: str = "snapshot date") -> dt.date:
    """A date given by a caller, or a partition value from the log (its first 10 characters)."""
    if isinstance(value, str) and len(value) > 10 and value[10] in " T":
        value = value[:10]
    return parse_date(value, field)


def feature_snapshot_dates(lake: Lake) -> list[dt.date]:
    """The dates that have a ``customer_features`` partition, ascending.

    Read from the partition values of the table's files in the Delta log. A table the
    log reader cannot list (deletion vectors written by delta-spark) falls back to a
    distinct of the partition column, which Spark answers from the partition values too.

    Args:
        lake: the :class:`~segengine.lake.Lake`.

    Returns:
        The snapshot dates; empty when the table does not exist.
    """
    if not lake.exists(FEATURES_TABLE):
        return []
    try:
        values = {(f.get("partition") or {}).get(PARTITION) for f in lake.files(FEATURES_TABLE)}
    except TableFeatureUnsupported:
        rows = lake.read(FEATURES_TABLE).select(PARTITION).distinct().collect()  # one row per snapshot
        values = {r[PARTITION] for r in rows}
    return sorted(_day(v) for v in values if v is not None)


def require_feature_partition(lake: Lake, snapshot_date: dt.date | str) -> dt.date:
    """Refuse to go on when ``customer_features`` has no partition for ``snapshot_date``.

    Args:
        lake: the Lake.
        snapshot_date: the date a job is about to read features for.

    Returns:
        The date (as a ``datetime.date``).

    Raises:
        FeatureSnapshotMissing: naming the date asked for and the latest date that has
            features, or saying that there is no feature table yet.
    """
    day = _day(snapshot_date)
    dates = feature_snapshot_dates(lake)
    if day in dates:
        return day
    fix = f"run `segengine features --date {day}` first"
    if dates:
        latest = dates[-1]
        message = f"no {FEATURES_TABLE} partition for {day} (latest is {latest}); {fix}"
    elif lake.exists(FEATURES_TABLE):
        latest = None
        message = f"no {FEATURES_TABLE} partition for {day}: the feature table has no snapshots yet; {fix}"
    else:
        latest = None
        message = f"no {FEATURES_TABLE} partition for {day}: there is no feature table yet; {fix}"
    raise FeatureSnapshotMissing(message, day, latest)


def _first_instant(lake: Lake, table: str, column: str) -> dt.datetime | None:
    """The earliest ``column`` of ``table`` as an aware datetime, from the files' statistics.

    A file without a minimum in the log (a writer that recorded no statistics) makes it
    one aggregate over that column instead.
    """
    if not lake.exists(table):
        return None
    try:
        files = lake.files(table)
        lows = [(f.get("min") or {}).get(column) for f in files]
    except TableFeatureUnsupported:
        lows = [None]
    stamps = [v for v in lows if isinstance(v, dt.datetime)]
    if lows and len(stamps) == len(lows):
        return min(v if v.tzinfo else v.replace(tzinfo=dt.UTC) for v in stamps)
    if not lows:
        return None
    from pyspark.sql import functions as F

    row = lake.read(table).agg(F.min(column).alias("first")).first()
    value = row["first"] if row is not None else None
    if value is None:
        return None
    # collect() gives the instant as a naive datetime in the session time zone.
    session_tz = lake.spark.conf.get("spark.sql.session.timeZone") or "UTC"
    return value.replace(tzinfo=zoneinfo.ZoneInfo(session_tz)) if value.tzinfo is None else value


def first_bronze_day(lake: Lake, timezone: str) -> dt.date | None:
    """The first local day (in ``timezone``) with an order line or an event.

    Args:
        lake: the Lake.
        timezone: the feature time zone (``features.timezone``) that days are counted in.

    Returns:
        That day, or None when neither table has a row.
    """
    firsts = [t for t in (_first_instant(lake, table, col) for table, col in ACTIVITY) if t is not None]
    if not firsts:
        return None
    return min(firsts).astimezone(zoneinfo.ZoneInfo(timezone)).date()


def require_bronze_data(lake: Lake, config: Config, snapshot_date: dt.date) -> None:
    """Refuse a feature snapshot for a date before the first order line or event.

    Skipped when ``features.allow_before_first_data`` is true (``segengine features --force``).

    Raises:
        MissingInput: naming the first day of data, or saying there is none yet.
    """
    if config.features.allow_before_first_data:
        return
    day = _day(snapshot_date)
    first = first_bronze_day(lake, config.features.timezone)
    if first is None:
        raise MissingInput(
            f"features for {day}: there are no order lines or events yet; run `segengine ingest` first "
            "(or --force to write profile-only features)"
        )
    if day < first:
        raise MissingInput(
            f"features for {day}: the first order line or event is on {first}, so the snapshot would describe "
            f"no activity; choose a date from {first} on (or --force)"
        )
