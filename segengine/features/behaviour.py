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

from segengine.features.windows import last_days_start, local_date

VISIT_EVENTS = ("page_view", "product_view", "add_to_cart", "search", "login", "feature_use", "app_open")


def resolve_personas(events: DataFrame, personas: DataFrame) -> DataFrame:
    """Fill ``persona_id`` of cookie-only events from ``personas.cookie_id``.

    Args:
        events: bronze events.
        personas: bronze personas.

    Returns:
        events with ``persona_id`` resolved where possible (unresolved rows dropped).
    """
    cookies = (
        personas.where(F.col("cookie_id").isNotNull())
        .groupBy("cookie_id")
        .agg(F.min("persona_id").alias("_cookie_persona"))
    )
    known = events.where(F.col("persona_id").isNotNull())
    anonymous = (
        events.where(F.col("persona_id").isNull() & F.col("cookie_id").isNotNull())
        .join(cookies, "cookie_id", "inner")
        .withColumn("persona_id", F.col("_cookie_persona"))
        .drop("_cookie_persona")
    )
    return known.unionByName(anonymous.select(*known.columns))


def events_until(
    events: DataFrame, snapshot_date: dt.date, tz: str, session_tz: str, since: dt.date | None = None
) -> DataFrame:
    """Events with their local ``event_day``, in ``since .. snapshot_date``.

    ``event_date`` (the partition column, a UTC/ingest-zone date) is filtered first with
    one day of slack on each side so a partition-aware reader can prune files; the exact
    cut uses the local date.
    """
    if since is not None:
        events = events.where(F.col("event_date") >= F.lit(since - dt.timedelta(days=1)))
    events = events.where(F.col("event_date") <= F.lit(snapshot_date + dt.timedelta(days=1)))
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


def window_counts(events: DataFrame, snapshot_date: dt.date) -> DataFrame:
    """30- and 90-day behaviour counts per persona.

    Windows are "the last N days including the snapshot day". A visit is a session
    (``session_id``; an event without one is its own session) with a visit event.

    Returns:
        persona_id, visits_30d, time_on_site_30d (minutes), product_views_30d,
        add_to_cart_30d, logins_30d, feature_uses_30d, email_opens_90d,
        email_clicks_90d, email_open_rate_90d.
    """
    in30 = F.col("event_day") >= F.lit(last_days_start(snapshot_date, 30))
    in90 = F.col("event_day") >= F.lit(last_days_start(snapshot_date, 90))
    et = F.col("event_type")
    visit30 = in30 & et.isin(*VISIT_EVENTS)

    def count(cond: F.Column) -> F.Column:
        return F.count(F.when(cond, 1)).cast("int")

    agg = (
        events.where(in90)
        .groupBy("persona_id")
        .agg(
            F.countDistinct(F.when(visit30, F.coalesce("session_id", "event_id"))).cast("int").alias("visits_30d"),
            F.sum(F.when(visit30, F.col("duration_s"))).alias("_seconds_30d"),
            count(in30 & (et == "product_view")).alias("product_views_30d"),
            count(in30 & (et == "add_to_cart")).alias("add_to_cart_30d"),
            count(in30 & (et == "login")).alias("logins_30d"),
            count(in30 & (et == "feature_use")).alias("feature_uses_30d"),
            count(et == "email_open").alias("email_opens_90d"),
            count(et == "email_click").alias("email_clicks_90d"),
            count(et == "email_sent").alias("_sent_90d"),
        )
    )
    return agg.select(
        "persona_id",
        "visits_30d",
        F.round(F.coalesce(F.col("_seconds_30d"), F.lit(0.0)) / 60.0, 2).alias("time_on_site_30d"),
        "product_views_30d",
        "add_to_cart_30d",
        "logins_30d",
        "feature_uses_30d",
        "email_opens_90d",
        "email_clicks_90d",
        F.when(
            F.col("_sent_90d") > 0, F.round(F.least(F.col("email_opens_90d") / F.col("_sent_90d"), F.lit(1.0)), 4)
        ).alias("email_open_rate_90d"),
    )


def activity_days(order_dates: DataFrame, visit_days: DataFrame, snapshot_date: dt.date, window_days: int) -> DataFrame:
    """Active days (a purchase or a visit) in the last ``window_days`` and the ``window_days`` before.

    Args:
        order_dates: persona_id, day (local dates of purchases).
        visit_days: persona_id, day (local dates of visit events).
        snapshot_date: the snapshot date.
        window_days: length of each window (``features.active_days``).

    Returns:
        persona_id, active_days_90d, active_days_prev_90d.
    """
    recent_start = last_days_start(snapshot_date, window_days)
    prev_start = recent_start - dt.timedelta(days=window_days)
    days = order_dates.unionByName(visit_days).where(
        (F.col("day") >= F.lit(prev_start)) & (F.col("day") <= F.lit(snapshot_date))
    )
    recent = F.col("day") >= F.lit(recent_start)
    return days.groupBy("persona_id").agg(
        F.countDistinct(F.when(recent, F.col("day"))).cast("int").alias("active_days_90d"),
        F.countDistinct(F.when(~recent, F.col("day"))).cast("int").alias("active_days_prev_90d"),
    )
