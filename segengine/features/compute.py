"""Write one snapshot date's ``customer_features`` partition: the entry of the features flow.

:func:`compute_features` checks there is bronze data for the date, lets the planner
(:func:`segengine.features.refresh.plan_refresh`) decide once between an incremental
and a full refresh, then runs the stages in order (docs/features.md draws them):

1. bronze readers (:mod:`~segengine.features.bronze`),
2. per-persona daily facts (:mod:`~segengine.features.rfmt`, :mod:`~segengine.features.behaviour`),
3. the window state, advanced from the state of an earlier date (incremental) or
   rebuilt from the whole history (full) (:mod:`~segengine.features.state`),
4. the feature table (:mod:`~segengine.features.table` with
   :mod:`~segengine.features.profile` and :mod:`~segengine.features.support`),
5. tiers and scores (:mod:`~segengine.features.tiers`, :mod:`~segengine.features.scores`),
6. conform and write (:mod:`~segengine.features.output`).

It sits above all of them: no stage imports it, the planner or the runners back.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segengine.features import behaviour, bronze, output, profile, rfmt, state, support
from segengine.features.build import features_from_state, persisted
from segengine.features.refresh import Plan, plan_refresh
from segengine.features.snapshots import require_bronze_data
from segengine.features.windows import session_timezone

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config, FeaturesConfig
    from segengine.lake import Lake

log = logging.getLogger(__name__)


def compute_features(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """Write the ``customer_features`` partition of ``snapshot_date`` (idempotent).

    Args:
        spark: the SparkSession.
        lake: the Lake.
        config: the Config.
        snapshot_date: the snapshot date.

    The refresh is incremental from the feature state of an earlier date when that is
    exact, else a full recompute (see :mod:`segengine.features.refresh`). A refresh
    that wrote the state ends with its ``feature_state_log`` row, which commits it.

    Returns:
        A summary: snapshot_date, table version, rows, rows per persona type, and the
        refresh ``mode`` (incremental | full) with its ``reason``.

    Raises:
        MissingInput: ``snapshot_date`` is before the first order line or event (or
            there are none), unless ``features.allow_before_first_data``.
    """
    require_bronze_data(lake, config, snapshot_date)

    started = time.time()
    plan = plan_refresh(spark, lake, config, snapshot_date)
    log.info("features %s: %s refresh (%s)", snapshot_date, plan.mode, plan.reason)
    run = _incremental if plan.mode == "incremental" else _full
    out = run(spark, lake, config, snapshot_date, plan)
    daily_from, versions = out.pop("daily_from", None), out.pop("state_versions", None)
    if plan.write_state:
        seconds = round(time.time() - started, 2)
        output.write_log(
            lake, snapshot_date, plan.mode, plan.reason, plan.since, daily_from, {**plan.bronze, **versions}, seconds
        )
    version = out.pop("version")
    written = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    # One small aggregate over the written partition: three numbers.
    by_type = {
        r["persona_type"]: r["n"] for r in written.groupBy("persona_type").agg(F.count("*").alias("n")).collect()
    }
    summary = {
        "snapshot_date": snapshot_date.isoformat(),
        "table": "customer_features",
        "version": version,
        "rows": int(sum(by_type.values())),
        "persona_types": by_type,
        **out,
        "mode": plan.mode,
        "reason": plan.reason,
    }
    log.info("features written: %s", summary)
    return summary


def _read(lake: Lake, plan: Plan, name: str, read: str | None = None) -> DataFrame:
    """Bronze ``name`` at the planned version, sliced as the plan's ``reads[read]`` (None: whole)."""
    where = plan.reads.get(read) if read else None
    return bronze.read(lake, plan.bronze, name, **({"where": where} if where else {}))


def _extras(lake: Lake, plan: Plan, day: dt.date, tz: str, session_tz: str) -> support.Extras:
    """The support, survey and campaign attributes of ``day``: the same bounded reads in
    both modes (the two small tables whole, events and order lines of the campaign window)."""

    def optional(name: str, read: str | None = None) -> DataFrame | None:
        return None if plan.bronze.get(name) is None else _read(lake, plan, name, read)

    return support.extra_features(
        optional("support_tickets"),
        optional("survey_responses"),
        optional("events", "campaign_events"),
        _read(lake, plan, "order_lines", "campaign_order_lines"),
        day,
        tz,
        session_tz,
    )


def _features(
    lake: Lake,
    plan: Plan,
    personas: DataFrame,
    st: DataFrame,
    items: DataFrame,
    day: dt.date,
    fconf: FeaturesConfig,
    session_tz: str,
) -> DataFrame:
    """Stages 4-6 (up to the write) from the state and item rows of ``day``."""
    return features_from_state(
        profile.profile_features(personas, day, fconf.timezone, session_tz),
        st,
        items,
        lake.read("products"),
        day,
        fconf,
        has_events=plan.bronze["events"] is not None,
        extras=_extras(lake, plan, day, fconf.timezone, session_tz),
    )


def _full(spark: SparkSession, lake: Lake, config: Config, day: dt.date, plan: Plan) -> dict[str, Any]:
    """Rebuild the state from the whole history; write it (a date on or after the state's) and the features."""
    fconf = config.features
    session_tz = session_timezone(spark)
    personas = _read(lake, plan, "personas")
    # The events from the event history start on and those before it, each from its own files.
    frames = state.rebuild_state(
        personas,
        _read(lake, plan, "order_lines"),
        _read(lake, plan, "events", "events"),
        day,
        fconf,
        session_tz,
        earlier_events=_read(lake, plan, "events", "earlier_events"),
    )
    st, items = frames["state"], frames["items"]
    out: dict[str, Any] = {}
    with persisted(frames["cached"]):
        if plan.write_state:
            versions = {"customer_daily": output.write_daily(lake, frames["daily"], replace=True)}
            # The state's windows from the written daily rows (not a second aggregation).
            st = state.state_from_history(
                frames["order_rows"], lake.read("customer_daily"), frames["earlier_visits"], day, fconf
            )
            versions.update(output.write_state(lake, st, items))
            st, items = lake.read("feature_state"), lake.read("feature_state_items")
            out = {"state_versions": versions, "daily_from": state.history_start(day, fconf)}
        features = _features(lake, plan, personas, st, items, day, fconf, session_tz)
        out["version"] = output.write_features(lake, features, day)
    return out


def _incremental(spark: SparkSession, lake: Lake, config: Config, day: dt.date, plan: Plan) -> dict[str, Any]:
    """Advance the state from the plan's date by the new days' rows; write it and the features."""
    fconf = config.features
    tz = fconf.timezone
    session_tz = session_timezone(spark)
    since = plan.since
    assert since is not None
    first_new = since + dt.timedelta(days=1)
    # Only the files that can hold rows of the local days since+1 .. day are opened.
    files_read = {
        "order_lines": len(
            lake.files("order_lines", version=plan.bronze["order_lines"], where=plan.reads["order_lines"])
        ),
        "events": 0
        if plan.bronze["events"] is None
        else len(lake.files("events", version=plan.bronze["events"], where=plan.reads["events"])),
    }
    personas = _read(lake, plan, "personas")
    lines = bronze.order_lines_until(_read(lake, plan, "order_lines", "order_lines"), day, tz, session_tz).where(
        F.col("order_date") >= F.lit(first_new)
    )
    orders = rfmt.order_facts(lines)
    raw_events = bronze.events_until(_read(lake, plan, "events", "events"), day, tz, session_tz, first_new)
    evts = bronze.resolve_personas(raw_events, personas)
    new_days = state.days_between(first_new, day)
    with persisted([lines, orders, raw_events]):
        daily = state.daily_summary(rfmt.order_days(orders), behaviour.event_days(evts))
        versions = {"customer_daily": output.write_daily(lake, daily, replace=False)}
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
        versions.update(output.write_state(lake, new_state, new_items))
    st, items = lake.read("feature_state"), lake.read("feature_state_items")
    return {
        "version": output.write_features(lake, _features(lake, plan, personas, st, items, day, fconf, session_tz), day),
        "since": since.isoformat(),
        "files_read": files_read,
        "state_versions": versions,
        "daily_from": plan.daily_from,
    }
