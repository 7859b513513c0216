"""Behaviour features from events: visits, time on site, email engagement.

Identity: an event belongs to its ``persona_id``; an event with only a ``cookie_id``
belongs to the persona with that cookie (if several personas share a cookie, the
smallest persona_id, so the result is deterministic). Events that resolve to no
persona are ignored by the feature table.

A *visit event* is any event a person triggers on site or in the app
(:data:`VISIT_EVENTS`); email events only count as email engagement.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segengine.features.rfmt import to_micros
from segengine.features.windows import local_date

VISIT_EVENTS = ("page_view", "product_view", "add_to_cart", "search", "login", "feature_use", "app_open")


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


def event_date_range(first: dt.date | None, last: dt.date | None) -> tuple[dt.date | None, dt.date | None]:
    """The ``event_date`` partitions that can hold events of the local days ``first .. last``.

    ``event_date`` is the date of ``event_ts`` in the ingest zone, at most a day from the
    local date: one day of slack on each side (None: an open end). A reader given this
    range (``Lake.read(where={"event_date": ...})``) opens only those partitions.
    """
    day = dt.timedelta(days=1)
    return (None if first is None else first - day, None if last is None else last + day)


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


def last_visit(events: DataFrame) -> DataFrame:
    """persona_id, last_visit_date: the latest local date of a visit event."""
    return (
        events.where(F.col("event_type").isin(*VISIT_EVENTS))
        .groupBy("persona_id")
        .agg(F.max("event_day").alias("last_visit_date"))
    )


# The event columns of a daily summary row (all additive).
EVENT_DAY_COLUMNS = (
    "visit_events",
    "visits",
    "visit_micros",
    "product_views",
    "add_to_cart",
    "logins",
    "feature_uses",
    "email_opens",
    "email_clicks",
    "email_sent",
)


def event_days(events: DataFrame) -> DataFrame:
    """Per persona and local day: visits, time on site and event counts.

    A *visit* is a session (``session_id``; an event without one is its own session)
    with a visit event, counted once per local day it has visit events on: a session
    crossing midnight is a visit on each day, as web analytics that end sessions at
    midnight count it. That makes visits additive over days.

    Args:
        events: :func:`events_until` output (resolved, with ``event_day``).

    Returns:
        persona_id, day, visit_events, visits, visit_micros (duration of visit events
        in micro-seconds), product_views, add_to_cart, logins, feature_uses,
        email_opens, email_clicks, email_sent.
    """
    et = F.col("event_type")
    visit = et.isin(*VISIT_EVENTS)

    def count(cond: F.Column) -> F.Column:
        return F.count(F.when(cond, 1)).cast("long")

    return events.groupBy("persona_id", F.col("event_day").alias("day")).agg(
        count(visit).alias("visit_events"),
        F.countDistinct(F.when(visit, F.coalesce("session_id", "event_id"))).cast("long").alias("visits"),
        F.coalesce(F.sum(F.when(visit, to_micros(F.col("duration_s")))), F.lit(0).cast("long")).alias("visit_micros"),
        count(et == "product_view").alias("product_views"),
        count(et == "add_to_cart").alias("add_to_cart"),
        count(et == "login").alias("logins"),
        count(et == "feature_use").alias("feature_uses"),
        count(et == "email_open").alias("email_opens"),
        count(et == "email_click").alias("email_clicks"),
        count(et == "email_sent").alias("email_sent"),
    )


def anonymous_cookies(events: DataFrame) -> DataFrame:
    """Item rows for the cookies of cookie-only events (resolved or not).

    The state keeps them so a later change of a cookie's persona (which moves the
    cookie's past events to another persona) is detected.

    Args:
        events: raw events with ``event_day`` (before :func:`resolve_personas`).

    Returns:
        persona_id (null), kind (``cookie``), key (cookie_id), n (events), micros (0).
    """
    return (
        events.where(F.col("persona_id").isNull() & F.col("cookie_id").isNotNull())
        .groupBy(F.col("cookie_id").alias("key"))
        .agg(F.count(F.lit(1)).cast("long").alias("n"))
        .select(
            F.lit(None).cast("string").alias("persona_id"),
            F.lit("cookie").alias("kind"),
            "key",
            "n",
            F.lit(0).cast("long").alias("micros"),
        )
    )


def cookie_owners(personas: DataFrame) -> DataFrame:
    """cookie_id -> the persona its cookie-only events belong to (the smallest persona_id)."""
    return (
        personas.where(F.col("cookie_id").isNotNull())
        .groupBy("cookie_id")
        .agg(F.min("persona_id").alias("_cookie_persona"))
    )
