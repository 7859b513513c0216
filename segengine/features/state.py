"""Stage 3 of the features: the window state, rebuilt from history or advanced a few days.

The state holds per persona lifetime and window sums, from daily summaries.

Every history-dependent feature is a function of additive per persona per local day
aggregates (:func:`daily_summary`, the ``customer_daily`` table):

* **lifetime** columns are sums of all days (orders, revenue, refunds) or the
  first/last day with a purchase or a visit;
* **window** columns are sums over the days of one window of the snapshot
  (:data:`WINDOWS`: the cycle, the last 30 and 90 days, the active-days windows).

So the state of date D (``feature_state``) follows from the state of an earlier date
S without the history before S: lifetime sums add the days S+1..D, each window adds
the days that entered it and subtracts the days that left it (read back from
``customer_daily``). All sums are integers (money in micro-units), so the result is
exactly what summing the whole history gives. :func:`state_from_history` is that
whole-history computation (the full recompute, from bronze: :func:`rebuild_state`);
:func:`advance_state` the step. The feature columns are read from the state by the
next stage (:func:`segengine.features.table.state_features`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segengine.features import behaviour, bronze, rfmt
from segengine.features.behaviour import EVENT_DAY_COLUMNS
from segengine.features.rfmt import ORDER_DAY_COLUMNS
from segengine.features.windows import cycle_start, last_days_start

if TYPE_CHECKING:
    from segengine.config import FeaturesConfig

DAILY_COLUMNS = ORDER_DAY_COLUMNS + EVENT_DAY_COLUMNS + ("active",)
LONG = "long"


@dataclass(frozen=True)
class SumWindow:
    """A window of local days and the daily columns summed over it into state columns."""

    name: str
    bounds: Callable[[dt.date, Any], tuple[dt.date, dt.date]]  # (snapshot, fconf) -> (first, last) day
    columns: tuple[tuple[str, str], ...]  # (daily column, state column)
    # Sums only order columns: the events before the other windows need not be read.
    orders_only: bool = False


def _cycle(day: dt.date, fconf: FeaturesConfig) -> tuple[dt.date, dt.date]:
    return cycle_start(day, fconf.cycle_months), day


def _last(days: int) -> Callable[[dt.date, Any], tuple[dt.date, dt.date]]:
    return lambda day, fconf: (last_days_start(day, days), day)


def _previous_cycle(day: dt.date, fconf: FeaturesConfig) -> tuple[dt.date, dt.date]:
    start = cycle_start(day, fconf.cycle_months)
    return cycle_start(start, fconf.cycle_months), start - dt.timedelta(days=1)


def _active(day: dt.date, fconf: FeaturesConfig) -> tuple[dt.date, dt.date]:
    return last_days_start(day, fconf.active_days), day


def _active_prev(day: dt.date, fconf: FeaturesConfig) -> tuple[dt.date, dt.date]:
    start = last_days_start(day, fconf.active_days)
    return start - dt.timedelta(days=fconf.active_days), start - dt.timedelta(days=1)


WINDOWS: tuple[SumWindow, ...] = (
    SumWindow(
        "cycle",
        _cycle,
        (("purchases", "frequency"), ("net_micros", "monetary_micros"), ("items", "items_cycle")),
    ),
    # The cycle before the current one (for expansion revenue).
    SumWindow("previous_cycle", _previous_cycle, (("net_micros", "prev_monetary_micros"),), orders_only=True),
    SumWindow(
        "last_30_days",
        _last(30),
        (
            ("visits", "visits_30d"),
            ("visit_micros", "visit_micros_30d"),
            ("product_views", "product_views_30d"),
            ("add_to_cart", "add_to_cart_30d"),
            ("logins", "logins_30d"),
            ("feature_uses", "feature_uses_30d"),
        ),
    ),
    SumWindow(
        "last_90_days",
        _last(90),
        (("email_opens", "email_opens_90d"), ("email_clicks", "email_clicks_90d"), ("email_sent", "email_sent_90d")),
    ),
    SumWindow("active_days", _active, (("active", "active_days_90d"),)),
    SumWindow("active_days_prev", _active_prev, (("active", "active_days_prev_90d"),)),
)
# Lifetime sums: (daily column, state column).
LIFETIME_SUMS = (
    ("purchases", "orders_lifetime"),
    ("net_micros", "revenue_micros"),
    ("refund_orders", "refunds_lifetime"),
    ("refund_micros", "refund_micros"),
)
LIFETIME_DATES = ("first_purchase_date", "last_purchase_date", "last_visit_date")
WINDOW_COLUMNS = tuple(state for w in WINDOWS for _, state in w.columns)
SUM_COLUMNS = tuple(s for _, s in LIFETIME_SUMS) + WINDOW_COLUMNS
STATE_COLUMNS = ("persona_id",) + SUM_COLUMNS + LIFETIME_DATES


def history_start(day: dt.date, fconf: FeaturesConfig) -> dt.date:
    """The first day any window of ``day`` covers: daily rows from here on are kept."""
    return min(w.bounds(day, fconf)[0] for w in WINDOWS)


def event_history_start(day: dt.date, fconf: FeaturesConfig) -> dt.date:
    """The first day a window with event columns covers: events from here on make daily rows.

    The daily rows before it (only the order-only previous cycle reaches back there)
    carry 0 in their event columns in a full recompute; no window sums those.
    """
    return min(w.bounds(day, fconf)[0] for w in WINDOWS if not w.orders_only)


def daily_summary(order_days: DataFrame, event_days: DataFrame) -> DataFrame:
    """Join the order and event day rows into ``customer_daily`` rows.

    Args:
        order_days: :func:`segengine.features.rfmt.order_days`.
        event_days: :func:`segengine.features.behaviour.event_days`.

    Returns:
        persona_id, day, every :data:`DAILY_COLUMNS` column (0 where a side is missing);
        ``active`` is 1 on a day with a purchase or a visit event.
    """
    joined = order_days.join(event_days, ["persona_id", "day"], "full")
    cols = [F.coalesce(F.col(c), F.lit(0).cast(LONG)).alias(c) for c in ORDER_DAY_COLUMNS + EVENT_DAY_COLUMNS]
    out = joined.select("persona_id", "day", *cols)
    active = ((F.col("purchases") > 0) | (F.col("visit_events") > 0)).cast(LONG)
    return out.withColumn("active", active)


def _in(day: Column, first: dt.date, last: dt.date) -> Column:
    return (day >= F.lit(first)) & (day <= F.lit(last))


def _zero_long() -> Column:
    return F.lit(0).cast(LONG)


def window_sums(daily: DataFrame, day: dt.date, fconf: FeaturesConfig) -> list[Column]:
    """Aggregate expressions: every window column of ``day`` summed over ``daily`` rows."""
    exprs = []
    for w in WINDOWS:
        first, last = w.bounds(day, fconf)
        inside = _in(F.col("day"), first, last)
        for daily_col, state_col in w.columns:
            exprs.append(F.sum(F.when(inside, F.col(daily_col)).otherwise(_zero_long())).alias(state_col))
    return exprs


def lifetime_aggregates(order_days: DataFrame) -> list[Column]:
    """Aggregate expressions: the order lifetime sums and purchase dates of day rows."""
    bought = F.col("purchases") > 0
    return [F.sum(F.col(d)).alias(s) for d, s in LIFETIME_SUMS] + [
        F.min(F.when(bought, F.col("day"))).alias("first_purchase_date"),
        F.max(F.when(bought, F.col("day"))).alias("last_purchase_date"),
    ]


def state_from_history(
    order_days_all: DataFrame, recent_daily: DataFrame, earlier_visits: DataFrame, day: dt.date, fconf: FeaturesConfig
) -> DataFrame:
    """The state of ``day`` from the whole history (the full recompute).

    The last visit is the latest day of ``recent_daily`` with a visit event, else the
    persona's last visit before those days (``earlier_visits``): the events of the
    recent days are only aggregated once, into the daily rows.

    Args:
        order_days_all: order day rows of every day up to ``day`` (one row per persona
            and day, or per order: only their sums and dates are used).
        recent_daily: :func:`daily_summary` rows of the days from :func:`history_start`.
        earlier_visits: persona_id, last_visit_date over the days before :func:`history_start`
            (any later day it holds is still a visit: the result takes the latest).
        day: the snapshot date.
        fconf: the ``features`` config section.

    Returns:
        One row per persona with any order or event: :data:`STATE_COLUMNS`.
    """
    lifetime = order_days_all.groupBy("persona_id").agg(*lifetime_aggregates(order_days_all))
    windows = recent_daily.groupBy("persona_id").agg(
        *window_sums(recent_daily, day, fconf),
        F.max(F.when(F.col("visit_events") > 0, F.col("day"))).alias("_recent_visit"),
    )
    earlier = earlier_visits.select("persona_id", F.col("last_visit_date").alias("_earlier_visit"))
    joined = (
        lifetime.join(windows, "persona_id", "full")
        .join(earlier, "persona_id", "full")
        # greatest skips nulls: the date one side lacks is the other side's.
        .withColumn("last_visit_date", F.greatest("_recent_visit", "_earlier_visit"))
    )
    return _conform_state(joined)


def _conform_state(df: DataFrame) -> DataFrame:
    sums = [F.coalesce(F.col(c).cast(LONG), _zero_long()).alias(c) for c in SUM_COLUMNS]
    return df.select("persona_id", *sums, *[F.col(c).cast("date").alias(c) for c in LIFETIME_DATES])


class RebuiltState(TypedDict):
    """What :func:`rebuild_state` gives: the frames the full recompute reads afterwards."""

    state: DataFrame
    order_rows: DataFrame
    earlier_visits: DataFrame
    items: DataFrame
    daily: DataFrame
    cached: list[DataFrame]  # persisted by the caller while the frames above are read


def rebuild_state(
    personas: DataFrame,
    order_lines: DataFrame,
    events: DataFrame,
    snapshot_date: dt.date,
    fconf: FeaturesConfig,
    session_tz: str,
    earlier_events: DataFrame | None = None,
) -> RebuiltState:
    """The state, item and recent daily rows of ``snapshot_date`` from the whole history.

    The full recompute's path through stages 1-3: the bronze readers, the daily facts,
    then :func:`state_from_history`. Each event is aggregated once: the events from
    :func:`event_history_start` on into the daily rows (which also give their last
    visit), the earlier ones only into each persona's last visit before that day.

    Args:
        personas: bronze personas (for the cookie owners).
        order_lines: bronze order_lines (any dates: later ones are ignored).
        events: bronze events (with the ``event_date`` partition column).
        snapshot_date: features describe data up to the end of this local date.
        fconf: the ``features`` config section.
        session_tz: the session time zone (:func:`segengine.features.windows.session_timezone`).
        earlier_events: bronze events for the days before the history start. When
            given, ``events`` need only hold the rows with ``event_date`` >= event history
            start - 1 day and this one those with ``event_date`` <= event history start
            (:func:`event_history_start`), so a reader can prune the files of each; by
            default both come from ``events``.

    Returns:
        ``state`` (:data:`STATE_COLUMNS`), ``items`` (item rows), ``daily``
        (``customer_daily`` rows from :func:`history_start`), the ``order_rows`` (one
        per order, :func:`segengine.features.rfmt.orders_as_days`) and
        ``earlier_visits`` the state is built from (see :func:`state_from_history`),
        and ``cached``: the frames that feed several of them (persist while they are used).

    Only the per-order facts are cached: they cost a shuffle of every order line and
    feed three aggregates. The order lines and events are read again from Parquet by
    each aggregate that needs them; at 1M personas building their in-memory columnar
    cache took longer (about 30 s for 20M lines, 45 s for 11M events on 2 cores) than
    the scans it saved.
    """
    tz = fconf.timezone
    day = snapshot_date
    lines = bronze.order_lines_until(order_lines, day, tz, session_tz)
    orders = rfmt.order_facts(lines)
    odays = rfmt.order_days(orders)
    order_rows = rfmt.orders_as_days(orders)  # the lifetime columns need no day grouping
    first = history_start(day, fconf)
    # Events only from the first day an event window covers (the previous cycle, for
    # expansion revenue, sums orders only).
    event_first = event_history_start(day, fconf)
    recent_raw = bronze.events_until(events, day, tz, session_tz, since=event_first)
    earlier = events if earlier_events is None else earlier_events
    earlier_raw = bronze.events_until(earlier, event_first - dt.timedelta(days=1), tz, session_tz)
    recent_events = bronze.resolve_personas(recent_raw, personas)
    daily = daily_summary(odays.where(F.col("day") >= F.lit(first)), behaviour.event_days(recent_events))
    earlier_visits = behaviour.last_visit(bronze.resolve_personas(earlier_raw, personas))
    cookies = behaviour.anonymous_cookies(recent_raw.unionByName(earlier_raw))
    return {
        "state": state_from_history(order_rows, daily, earlier_visits, day, fconf),
        "order_rows": order_rows,
        "earlier_visits": earlier_visits,
        "items": rfmt.line_items(lines, orders).unionByName(cookies),
        "daily": daily,
        "cached": [orders],
    }


def _range(first: dt.date, last: dt.date) -> list[dt.date]:
    return [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]


def window_moves(since: dt.date, day: dt.date, fconf: FeaturesConfig) -> dict[str, tuple[tuple[dt.date, dt.date], ...]]:
    """Per window: the day ranges that enter and leave it from ``since`` to ``day``.

    Windows only move forward, so window(day) = window(since) + entering - leaving with
    entering = [max(first_day, last_since + 1), last_day] and
    leaving = [first_since, min(last_since, first_day - 1)] (either may be empty).

    Returns:
        {window name: ((enter_first, enter_last), (leave_first, leave_last))}.
    """
    moves: dict[str, tuple[tuple[dt.date, dt.date], ...]] = {}
    for w in WINDOWS:
        a_s, b_s = w.bounds(since, fconf)
        a_d, b_d = w.bounds(day, fconf)
        enter = (max(a_d, b_s + dt.timedelta(days=1)), b_d)
        leave = (a_s, min(b_s, a_d - dt.timedelta(days=1)))
        moves[w.name] = (enter, leave)
    return moves


def stored_days_needed(since: dt.date, day: dt.date, fconf: FeaturesConfig) -> list[dt.date]:
    """Days up to ``since`` whose daily rows :func:`advance_state` reads back."""
    needed: set[dt.date] = set()
    for enter, leave in window_moves(since, day, fconf).values():
        for first, last in (enter, leave):
            if first <= last:
                needed.update(d for d in _range(first, min(last, since)))
    return sorted(needed)


def advance_state(
    state: DataFrame,
    new_daily: DataFrame,
    stored_daily: DataFrame,
    new_last_visits: DataFrame,
    since: dt.date,
    day: dt.date,
    fconf: FeaturesConfig,
) -> DataFrame:
    """The state of ``day`` from the state of ``since`` and the days in between.

    Args:
        state: the state of ``since`` (:data:`STATE_COLUMNS`).
        new_daily: daily rows of the days ``since + 1 .. day``.
        stored_daily: daily rows of (at least) :func:`stored_days_needed` days.
        new_last_visits: persona_id, last_visit_date over the new days.
        since: the date of ``state``.
        day: the new snapshot date.
        fconf: the ``features`` config section.

    Returns:
        The state of ``day``: identical to :func:`state_from_history` of ``day``.
    """
    rows = new_daily.select("persona_id", "day", *DAILY_COLUMNS).unionByName(
        stored_daily.where(F.col("day") <= F.lit(since)).select("persona_id", "day", *DAILY_COLUMNS)
    )
    new = F.col("day") > F.lit(since)
    bought = new & (F.col("purchases") > 0)
    exprs = [F.sum(F.when(new, F.col(d)).otherwise(_zero_long())).alias(s) for d, s in LIFETIME_SUMS] + [
        F.min(F.when(bought, F.col("day"))).alias("first_purchase_date"),
        F.max(F.when(bought, F.col("day"))).alias("last_purchase_date"),
    ]
    moves = window_moves(since, day, fconf)
    for w in WINDOWS:
        (e1, e2), (l1, l2) = moves[w.name]
        sign = (
            F.when(_in(F.col("day"), e1, e2), F.lit(1).cast(LONG))
            .when(_in(F.col("day"), l1, l2), F.lit(-1).cast(LONG))
            .otherwise(_zero_long())
        )
        for daily_col, state_col in w.columns:
            exprs.append(F.sum(sign * F.col(daily_col)).alias(state_col))
    delta = rows.groupBy("persona_id").agg(*exprs).join(new_last_visits, "persona_id", "full")
    old = state.alias("o")
    d = delta.alias("d")
    joined = old.join(d, F.col("o.persona_id") == F.col("d.persona_id"), "full")
    cols = [F.coalesce(F.col("o.persona_id"), F.col("d.persona_id")).alias("persona_id")]
    for c in SUM_COLUMNS:
        cols.append((F.coalesce(F.col(f"o.{c}"), _zero_long()) + F.coalesce(F.col(f"d.{c}"), _zero_long())).alias(c))
    # least/greatest skip nulls: a date that one side lacks is the other side's.
    cols.append(F.least(F.col("o.first_purchase_date"), F.col("d.first_purchase_date")).alias("first_purchase_date"))
    cols.append(F.greatest(F.col("o.last_purchase_date"), F.col("d.last_purchase_date")).alias("last_purchase_date"))
    cols.append(F.greatest(F.col("o.last_visit_date"), F.col("d.last_visit_date")).alias("last_visit_date"))
    return _conform_state(joined.select(*cols))


def merge_items(*parts: DataFrame) -> DataFrame:
    """Sum item rows (persona_id, kind, key, n, micros) of several periods."""
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    return union.groupBy("persona_id", "kind", "key").agg(
        F.sum("n").cast(LONG).alias("n"), F.sum("micros").cast(LONG).alias("micros")
    )


def days_between(first: dt.date, last: dt.date) -> Iterable[dt.date]:
    """Every date from ``first`` to ``last`` inclusive."""
    return _range(first, last)
