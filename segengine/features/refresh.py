"""Daily refresh of ``customer_features``: incremental from the state when exact, else full.

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
import logging
import time
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segengine.contract import contract, read_bronze
from segengine.features import behaviour, profile, rfmt, state, support
from segengine.features.build import features_from_state, history_frames, persisted, session_timezone

log = logging.getLogger(__name__)

# A longer gap is recomputed in full (the state would add many days at once).
MAX_GAP_DAYS = 14
BRONZE_INPUTS = ("order_lines", "events", "personas", "support_tickets", "survey_responses")
STATE_TABLES = ("customer_daily", "feature_state", "feature_state_items")
LOG_SCHEMA = (
    "snapshot_date date, mode string, reason string, since date, daily_from date, versions string, "
    "written_at timestamp, seconds double"
)
# The column whose statistics date a changed bronze file.
TIME_COLUMNS = {"order_lines": "order_ts", "events": "event_ts"}


@dataclass
class Plan:
    """How a refresh runs: ``mode`` (incremental | full), why, and what it reads."""

    mode: str
    reason: str
    bronze: dict[str, int | None]  # None: an optional table (events) the warehouse lacks
    since: dt.date | None = None
    write_state: bool = True
    daily_from: dt.date | None = None
    last: dict[str, Any] = field(default_factory=dict)


def last_refresh(lake: Any) -> dict[str, Any] | None:
    """The latest ``feature_state_log`` row (the state's date and versions), or None."""
    if not lake.exists("feature_state_log"):
        return None
    rows = lake.read("feature_state_log").orderBy(F.col("written_at").desc()).limit(1).collect()
    if not rows:
        return None
    row = rows[0].asDict()
    row["versions"] = json.loads(row["versions"])
    return row


def plan_refresh(spark: Any, lake: Any, config: Any, day: dt.date) -> Plan:
    """Decide between an incremental and a full refresh of ``day`` (cheap: logs and small tables)."""
    fconf = config.features
    bronze = {t: bronze_version(lake, t) for t in BRONZE_INPUTS}
    last = last_refresh(lake)
    since = last["snapshot_date"] if last else None

    def full(reason: str) -> Plan:
        return Plan("full", reason, bronze, since, write_state=since is None or day >= since, last=last or {})

    if not getattr(fconf, "incremental", True):
        return full("features.incremental is off")
    if last is None:
        return full("no feature state yet")
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
    late = late_rows(lake, recorded, bronze, since, fconf.timezone)
    if late:
        return full(late)
    moved = moved_cookies(lake, recorded.get("personas"), bronze["personas"])
    if moved:
        return full(moved)
    return Plan("incremental", f"from the state of {since}", bronze, since, True, last["daily_from"], last)


def bronze_version(lake: Any, table: str) -> int | None:
    """The table's version, or None for an optional table the warehouse lacks (events)."""
    if contract(table).optional and not lake.exists(table):
        return None
    return lake.version(table)


def rows_changed(lake: Any, table: str, recorded: int | None) -> bool:
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


def late_rows(lake: Any, recorded: dict[str, int], now: dict[str, int], since: dt.date, tz: str) -> str | None:
    """Why bronze changes since the state invalidate it (rows dated <= ``since``), or None.

    Compares the data files of the recorded and current versions of order_lines and
    events: every added or removed file must hold only rows dated after ``since``
    (by its minimum timestamp statistic). A file without statistics counts as late.
    """
    for table in TIME_COLUMNS:
        if recorded.get(table) == now[table]:
            continue
        if now[table] is None:
            return f"the {table} table is gone since the state of {since}"
        if recorded.get(table) is None:
            return f"the {table} table was created after the state of {since}"
        try:
            changes = lake.changed_files(table, recorded[table], now[table])
        except Exception as exc:  # noqa: BLE001 - a recreated/vacuumed table: recompute
            return f"cannot compare {table} with version {recorded.get(table)} ({type(exc).__name__})"
        for info in changes["added"] + changes["removed"]:
            first = first_local_day(table, info, tz)
            if first is None:
                return f"{table} has a changed file without timestamp statistics"
            if first <= since:
                return f"late {table} rows: a file with rows of {first} changed after the state of {since}"
    return None


def moved_cookies(lake: Any, recorded: int | None, now: int) -> str | None:
    """Why a change of cookie owners invalidates the state, or None.

    A cookie-only event belongs to the persona owning its cookie when features are
    computed. If a cookie that had such events before the state's date now belongs to
    another persona (or to one for the first time), those past events move.
    """
    if recorded == now:
        return None
    if recorded is None:
        return "personas version unknown"
    if not rows_changed(lake, "personas", recorded):
        return None

    def owners(version: int, alias: str) -> DataFrame:
        return behaviour.cookie_owners(lake.read("personas", version=version)).withColumnRenamed(
            "_cookie_persona", alias
        )

    changed = (
        owners(recorded, "_old")
        .join(owners(now, "_new"), "cookie_id", "full")
        .where(~F.col("_old").eqNullSafe(F.col("_new")))
    )
    seen = lake.read("feature_state_items").where(F.col("kind") == "cookie").select(F.col("key").alias("cookie_id"))
    if changed.join(seen, "cookie_id", "left_semi").limit(1).count():
        return "a cookie with past cookie-only events changed persona"
    return None


def local_day_bounds(first: dt.date, last: dt.date, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """The instants (UTC) from the start of local day ``first`` to the end of local day ``last``."""
    zone = zoneinfo.ZoneInfo(tz)
    start = dt.datetime.combine(first, dt.time(), zone).astimezone(dt.UTC)
    end = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(), zone).astimezone(dt.UTC)
    return start, end - dt.timedelta(microseconds=1)


def refresh_features(spark: Any, lake: Any, config: Any, day: dt.date) -> dict[str, Any]:
    """Write the ``customer_features`` partition of ``day``; keep the state up to date.

    Returns:
        ``{"version", "mode", "reason", ...}``: the features table version and how the
        refresh ran (``files_read`` per bronze table for an incremental one).
    """
    started = time.time()
    plan = plan_refresh(spark, lake, config, day)
    log.info("features %s: %s refresh (%s)", day, plan.mode, plan.reason)
    if plan.mode == "incremental":
        out = _incremental(spark, lake, config, day, plan)
    else:
        out = _full(spark, lake, config, day, plan)
    if plan.write_state:
        row = (
            day,
            plan.mode,
            plan.reason,
            plan.since,
            out.pop("daily_from"),
            json.dumps({**plan.bronze, **out.pop("state_versions")}),
            dt.datetime.now(dt.UTC).replace(tzinfo=None),
            round(time.time() - started, 2),
        )
        lake.write_rows([row], LOG_SCHEMA, "feature_state_log", operation="REFRESH")
    out.pop("daily_from", None)
    out.pop("state_versions", None)
    return {**out, "mode": plan.mode, "reason": plan.reason}


def _bronze(lake: Any, plan: Plan, name: str, **kwargs: Any) -> DataFrame:
    # A missing optional table (events) reads as an empty frame of its contract schema.
    return read_bronze(lake, name, version=plan.bronze.get(name), **kwargs)


def _extras(lake: Any, plan: Plan, day: dt.date, tz: str, session_tz: str) -> support.Extras:
    """The support, survey and campaign attributes of ``day``: the same bounded reads in
    both modes (the two small tables whole, events and order lines of the campaign window)."""
    first, last = support.campaign_window(day)

    def optional(name: str, **kwargs: Any) -> DataFrame | None:
        return None if plan.bronze.get(name) is None else _bronze(lake, plan, name, **kwargs)

    return support.extra_features(
        optional("support_tickets"),
        optional("survey_responses"),
        optional("events", where={"event_date": behaviour.event_date_range(first, last)}),
        _bronze(lake, plan, "order_lines", where={"order_ts": local_day_bounds(first, last, tz)}),
        day,
        tz,
        session_tz,
    )


def _write_features(lake: Any, features: DataFrame, day: dt.date) -> int:
    """Replace the partition of ``day``; attributes added to the catalog since the table was
    created become new nullable columns (older partitions read them as null)."""
    return lake.write(
        features,
        "customer_features",
        mode="overwrite",
        replace_partitions={"snapshot_date": day},
        evolve_schema=True,
    )


def _write_state(lake: Any, st: DataFrame, items: DataFrame) -> dict[str, int]:
    return {
        "feature_state": lake.write(st, "feature_state", mode="overwrite", operation="FEATURE STATE"),
        "feature_state_items": lake.write(items, "feature_state_items", mode="overwrite", operation="FEATURE STATE"),
    }


def _full(spark: Any, lake: Any, config: Any, day: dt.date, plan: Plan) -> dict[str, Any]:
    fconf = config.features
    session_tz = session_timezone(spark)
    personas = _bronze(lake, plan, "personas")
    products = lake.read("products")
    # The events from the event history start on and those before it, each from its own files.
    first = state.event_history_start(day, fconf)
    frames = history_frames(
        personas,
        _bronze(lake, plan, "order_lines"),
        _bronze(lake, plan, "events", where={"event_date": behaviour.event_date_range(first, day)}),
        day,
        fconf,
        session_tz,
        earlier_events=_bronze(
            lake, plan, "events", where={"event_date": behaviour.event_date_range(None, first - dt.timedelta(days=1))}
        ),
    )
    st, items = frames["state"], frames["items"]
    out: dict[str, Any] = {}
    with persisted(frames["cached"]):
        if plan.write_state:
            daily = frames["daily"].repartition("day")  # one file per day
            versions = {"customer_daily": lake.write(daily, "customer_daily", mode="overwrite", operation="DAILY")}
            # The state's windows from the written daily rows (not a second aggregation).
            st = state.state_from_history(
                frames["order_rows"], lake.read("customer_daily"), frames["earlier_visits"], day, fconf
            )
            versions.update(_write_state(lake, st, items))
            st, items = lake.read("feature_state"), lake.read("feature_state_items")
            out = {"state_versions": versions, "daily_from": state.history_start(day, fconf)}
        features = features_from_state(
            profile.profile_features(personas, day, fconf.timezone, session_tz),
            st,
            items,
            products,
            day,
            fconf,
            has_events=plan.bronze["events"] is not None,
            extras=_extras(lake, plan, day, fconf.timezone, session_tz),
        )
        out["version"] = _write_features(lake, features, day)
    return out


def _incremental(spark: Any, lake: Any, config: Any, day: dt.date, plan: Plan) -> dict[str, Any]:
    fconf = config.features
    tz = fconf.timezone
    session_tz = session_timezone(spark)
    since = plan.since
    assert since is not None
    first_new = since + dt.timedelta(days=1)
    # Only the files that can hold rows of the local days since+1 .. day are opened.
    bounds = local_day_bounds(first_new, day, tz)
    line_where = {"order_ts": bounds}
    event_where = {"event_date": behaviour.event_date_range(first_new, day), "event_ts": bounds}
    files_read = {
        "order_lines": len(lake.files("order_lines", version=plan.bronze["order_lines"], where=line_where)),
        "events": 0
        if plan.bronze["events"] is None
        else len(lake.files("events", version=plan.bronze["events"], where=event_where)),
    }
    personas = _bronze(lake, plan, "personas")
    lines = rfmt.order_lines_until(_bronze(lake, plan, "order_lines", where=line_where), day, tz, session_tz).where(
        F.col("order_date") >= F.lit(first_new)
    )
    orders = rfmt.order_facts(lines)
    raw_events = behaviour.events_until(
        _bronze(lake, plan, "events", where=event_where), day, tz, session_tz, first_new
    )
    evts = behaviour.resolve_personas(raw_events, personas)
    new_days = state.days_between(first_new, day)
    with persisted([lines, orders, raw_events]):
        daily = state.daily_summary(rfmt.order_days(orders), behaviour.event_days(evts))
        versions = {"customer_daily": lake.write(daily, "customer_daily", mode="append", operation="DAILY")}
        needed = state.stored_days_needed(since, day, fconf)
        stored = lake.read("customer_daily", partitions={"day": needed})
        new_state = state.advance_state(
            lake.read("feature_state"),
            lake.read("customer_daily", partitions={"day": new_days}),
            stored,
            behaviour.last_visit(evts),
            since,
            day,
            fconf,
        )
        new_items = state.merge_items(
            lake.read("feature_state_items"),
            rfmt.line_items(lines, orders),
            behaviour.anonymous_cookies(raw_events),
        )
        versions.update(_write_state(lake, new_state, new_items))
    features = features_from_state(
        profile.profile_features(personas, day, tz, session_tz),
        lake.read("feature_state"),
        lake.read("feature_state_items"),
        lake.read("products"),
        day,
        fconf,
        has_events=plan.bronze["events"] is not None,
        extras=_extras(lake, plan, day, tz, session_tz),
    )
    return {
        "version": _write_features(lake, features, day),
        "since": since.isoformat(),
        "files_read": files_read,
        "state_versions": versions,
        "daily_from": plan.daily_from,
    }
