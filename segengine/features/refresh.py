"""The refresh planner: incremental from the state when exact, else full, decided up front.

:func:`plan_refresh` reads only logs and small tables and returns a :class:`Plan`: the
mode, why, the bronze versions and the slices of them the run reads. The run itself
(:mod:`segengine.features.compute`) then goes through the stages in order; no stage
looks at the plan or calls back here.

Tables (see docs/features.md, "Refresh: what is recomputed"):

* ``customer_daily`` (partitioned by ``day``): additive per persona per local day rows
  (:func:`segengine.features.state.daily_summary`);
* ``feature_state``: per persona lifetime and window sums as of one date;
* ``feature_state_items``: per persona bought products (units, spend) and purchases
  per channel, plus the cookies of cookie-only events;
* ``feature_state_log``: one row per refresh that wrote the state: its date, mode,
  the bronze and state table versions it saw.

**Incremental** (date D after the state's date S, at most :data:`MAX_GAP_DAYS` later):
only the bronze rows of the local days S+1..D are read (events by their
``event_date`` partitions and ``event_ts`` statistics, order lines through file
skipping on the ``order_ts`` min/max statistics of the Delta log), summarised per
persona and day and appended to ``customer_daily``; the state moves from S to D by
adding those days and the days entering each window and subtracting the days leaving
it (read back from ``customer_daily``); the item rows add the new days. Then the
per-snapshot parts are recomputed from the state: profiles (one row per persona),
the value tier ranking and the scores.

**Full** otherwise, with the reason logged and returned: ``features.incremental`` is
off; no state yet; D is not after S (a rerun); the gap is larger than
:data:`MAX_GAP_DAYS`; a state table changed outside a refresh; bronze rows dated on
or before S were added, rewritten or removed since the state was built (late data);
a cookie with past cookie-only events changed persona. A full run of a date on or
after S rewrites the state; a full run of an older date leaves it alone.
"""

from __future__ import annotations

import datetime as dt
import json
import zoneinfo
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segengine.contract import contract
from segengine.features import bronze, state, support
from segengine.features.windows import local_day_bounds

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config, FeaturesConfig
    from segengine.lake import Lake

# A longer gap is recomputed in full (the state would add many days at once).
MAX_GAP_DAYS = 14
BRONZE_INPUTS = ("order_lines", "events", "personas", "support_tickets", "survey_responses")
STATE_TABLES = ("customer_daily", "feature_state", "feature_state_items")
# The column whose statistics date a changed bronze file.
TIME_COLUMNS = {"order_lines": "order_ts", "events": "event_ts"}


@dataclass
class Plan:
    """How a refresh runs, decided once before anything is read: ``mode`` (incremental |
    full), why, which bronze versions and which slices of them (``reads``) it reads."""

    mode: str
    reason: str
    bronze: dict[str, int | None]  # None: an optional table (events) the warehouse lacks
    since: dt.date | None = None
    write_state: bool = True
    daily_from: dt.date | None = None
    last: dict[str, Any] = field(default_factory=dict)
    # read name -> the ``where`` of its bronze read (see :func:`bronze_reads`)
    reads: dict[str, dict[str, Any]] = field(default_factory=dict)


def last_refresh(lake: Lake) -> dict[str, Any] | None:
    """The latest ``feature_state_log`` row (the state's date and versions), or None."""
    if not lake.exists("feature_state_log"):
        return None
    rows = lake.read("feature_state_log").orderBy(F.col("written_at").desc()).limit(1).collect()
    if not rows:
        return None
    row = rows[0].asDict()
    row["versions"] = json.loads(row["versions"])
    return row


def bronze_reads(mode: str, day: dt.date, since: dt.date | None, fconf: FeaturesConfig) -> dict[str, dict[str, Any]]:
    """The slices of bronze a refresh of ``day`` reads, as ``where`` filters of the lake's reader.

    Both modes read the campaign window (``campaign_events``, ``campaign_order_lines``)
    for the extra attributes. An incremental refresh reads the local days
    ``since + 1 .. day`` of ``order_lines`` and ``events`` (partitions and file
    statistics); a full one reads every order line, and the events from the event
    history start on (``events``) and those before it (``earlier_events``), each from
    its own partitions.
    """
    tz = fconf.timezone
    first, last = support.campaign_window(day)
    reads: dict[str, dict[str, Any]] = {
        "campaign_events": {"event_date": bronze.event_date_range(first, last)},
        "campaign_order_lines": {"order_ts": local_day_bounds(first, last, tz)},
    }
    if mode == "incremental":
        assert since is not None
        first_new = since + dt.timedelta(days=1)
        bounds = local_day_bounds(first_new, day, tz)
        reads["order_lines"] = {"order_ts": bounds}
        reads["events"] = {"event_date": bronze.event_date_range(first_new, day), "event_ts": bounds}
    else:
        start = state.event_history_start(day, fconf)
        reads["events"] = {"event_date": bronze.event_date_range(start, day)}
        reads["earlier_events"] = {"event_date": bronze.event_date_range(None, start - dt.timedelta(days=1))}
    return reads


def plan_refresh(spark: SparkSession, lake: Lake, config: Config, day: dt.date) -> Plan:
    """Decide between an incremental and a full refresh of ``day`` (cheap: logs and small tables)."""
    fconf = config.features
    versions = {t: bronze_version(lake, t) for t in BRONZE_INPUTS}
    last = last_refresh(lake)
    since = last["snapshot_date"] if last else None

    def full(reason: str) -> Plan:
        return Plan(
            "full",
            reason,
            versions,
            since,
            write_state=since is None or day >= since,
            last=last or {},
            reads=bronze_reads("full", day, since, fconf),
        )

    if not getattr(fconf, "incremental", True):
        return full("features.incremental is off")
    if last is None:
        return full("no feature state yet")
    assert since is not None  # read from ``last``: a refresh always records its date
    if day <= since:
        return full(f"the state is of {since}, not before {day}")
    if (day - since).days > MAX_GAP_DAYS:
        return full(f"{(day - since).days} days after the state of {since} (more than {MAX_GAP_DAYS})")
    recorded = last["versions"]
    for table in STATE_TABLES:
        if not lake.exists(table) or rows_changed(lake, table, recorded.get(table)):
            return full(f"{table} changed since the refresh of {since}")
    have = set(lake.read("feature_state").columns)
    if not set(state.STATE_COLUMNS) <= have:
        return full("feature_state was written by an older version (it lacks new state columns)")
    needed = state.stored_days_needed(since, day, fconf)
    if needed and (last["daily_from"] is None or needed[0] < last["daily_from"]):
        return full(f"customer_daily does not reach back to {needed[0]}")
    late = late_rows(lake, recorded, versions, since, fconf.timezone)
    if late:
        return full(late)
    moved = moved_cookies(lake, recorded.get("personas"), versions["personas"])
    if moved:
        return full(moved)
    reads = bronze_reads("incremental", day, since, fconf)
    return Plan("incremental", f"from the state of {since}", versions, since, True, last["daily_from"], last, reads)


def bronze_version(lake: Lake, table: str) -> int | None:
    """The table's version, or None for an optional table the warehouse lacks (events)."""
    if contract(table).optional and not lake.exists(table):
        return None
    return lake.version(table)


def rows_changed(lake: Lake, table: str, recorded: int | None) -> bool:
    """Whether commits after version ``recorded`` changed the rows of ``table``.

    A maintenance commit (OPTIMIZE: files rewritten with ``dataChange=false``; VACUUM)
    changes the version, not the rows, and keeps the state valid. A table older than
    the recorded version was recreated; a log that cannot be read counts as changed.
    """
    if recorded is None:
        return True
    now = lake.version(table)
    if now == recorded:
        return False
    if now < recorded:
        return True
    try:
        changes = lake.changed_files(table, recorded, now)
    except Exception:  # noqa: BLE001 - a vacuumed or cleaned-up log: recompute
        return True
    return bool(changes["added"] or changes["removed"])


def first_local_day(table: str, info: dict[str, Any], tz: str) -> dt.date | None:
    """The earliest local date a data file can hold rows of (None: unknown)."""
    low = info["min"].get(TIME_COLUMNS[table])
    if isinstance(low, dt.datetime):
        aware = low if low.tzinfo else low.replace(tzinfo=dt.UTC)
        return aware.astimezone(zoneinfo.ZoneInfo(tz)).date()
    if table == "events" and info["partition"].get("event_date"):
        # event_date is a date of event_ts in some zone: the local date is at most a day earlier.
        return dt.date.fromisoformat(info["partition"]["event_date"]) - dt.timedelta(days=1)
    return None


def late_rows(
    lake: Lake, recorded: dict[str, int | None], now: dict[str, int | None], since: dt.date, tz: str
) -> str | None:
    """Why bronze changes since the state invalidate it (rows dated <= ``since``), or None.

    Compares the data files of the recorded and current versions of order_lines and
    events: every added or removed file must hold only rows dated after ``since``
    (by its minimum timestamp statistic). A file without statistics counts as late.
    """
    for table in TIME_COLUMNS:
        old, new = recorded.get(table), now[table]
        if old == new:
            continue
        if new is None:
            return f"the {table} table is gone since the state of {since}"
        if old is None:
            return f"the {table} table was created after the state of {since}"
        try:
            changes = lake.changed_files(table, old, new)
        except Exception as exc:  # noqa: BLE001 - a recreated/vacuumed table: recompute
            return f"cannot compare {table} with version {old} ({type(exc).__name__})"
        for info in changes["added"] + changes["removed"]:
            first = first_local_day(table, info, tz)
            if first is None:
                return f"{table} has a changed file without timestamp statistics"
            if first <= since:
                return f"late {table} rows: a file with rows of {first} changed after the state of {since}"
    return None


def moved_cookies(lake: Lake, recorded: int | None, now: int | None) -> str | None:
    """Why a change of cookie owners invalidates the state, or None.

    A cookie-only event belongs to the persona owning its cookie when features are
    computed. If a cookie that had such events before the state's date now belongs to
    another persona (or to one for the first time), those past events move.
    """
    if recorded == now:
        return None
    if recorded is None or now is None:
        return "personas version unknown"
    if not rows_changed(lake, "personas", recorded):
        return None

    def owners(version: int, alias: str) -> DataFrame:
        return bronze.cookie_owners(lake.read("personas", version=version)).withColumnRenamed("_cookie_persona", alias)

    changed = (
        owners(recorded, "_old")
        .join(owners(now, "_new"), "cookie_id", "full")
        .where(~F.col("_old").eqNullSafe(F.col("_new")))
    )
    seen = lake.read("feature_state_items").where(F.col("kind") == "cookie").select(F.col("key").alias("cookie_id"))
    if changed.join(seen, "cookie_id", "left_semi").limit(1).count():
        return "a cookie with past cookie-only events changed persona"
    return None
