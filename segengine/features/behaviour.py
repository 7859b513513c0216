"""Stage 2 of the features, events: per-persona daily rows of visits and email engagement.

From the dated events of :func:`segengine.features.bronze.events_until`, attributed
to their persona by :func:`segengine.features.bronze.resolve_personas`:
:func:`event_days` sums them per persona and local day (the additive rows the window
state sums, :mod:`segengine.features.state`), :func:`last_visit` finds the latest
visit, :func:`anonymous_cookies` keeps the cookies of cookie-only events.

A *visit event* is any event a person triggers on site or in the app
(:data:`VISIT_EVENTS`); email events only count as email engagement.
"""

from __future__ import annotations

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

# Read by segengine.insights from here, which is being changed alongside: it moves to
# bronze (stage 1, with the other readers) once insights imports it from there.
from segengine.features.bronze import event_date_range as event_date_range
from segengine.features.money import to_micros

VISIT_EVENTS = ("page_view", "product_view", "add_to_cart", "search", "login", "feature_use", "app_open")


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
        events: :func:`segengine.features.bronze.events_until` output (resolved, with ``event_day``).

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
        events: raw events with ``event_day`` (before
            :func:`segengine.features.bronze.resolve_personas`).

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
