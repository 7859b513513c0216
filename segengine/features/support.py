"""Support, satisfaction and campaign features from the optional bronze tables.

These attributes come straight from small, bounded reads of bronze, not from the
feature state: ``support_tickets`` and ``survey_responses`` are small tables (a few
rows per customer), and the campaign attributes need only the events and order lines
of the last :data:`CAMPAIGN_DAYS` + :data:`ATTRIBUTION_DAYS` days. Both the full and
the incremental refresh call :func:`extra_features` with the same inputs, so they give
the same values by construction.

Definitions (local dates in ``features.timezone``, windows include the snapshot day):

* ``tickets_90d``: tickets opened in the last 90 days.
* ``open_tickets``: tickets opened on or before the snapshot day and not closed by its
  end (``closed_at`` null or later); ``status`` is not used, so a past snapshot
  describes the past.
* ``median_hours_to_close_90d``: median of ``closed_at - opened_at`` (hours) over the
  tickets closed in the last 90 days (null if none).
* ``last_csat`` / ``last_nps``: the score of the latest CSAT / NPS answer up to the
  snapshot day; ``nps_category`` from ``last_nps``: promoter 9-10, passive 7-8,
  detractor 0-6.
* ``campaign_clicks_30d``: ``email_click`` events with a ``campaign_id`` in the last
  30 days.
* ``campaign_conversions_30d``: orders (with at least one bought line) placed in the
  last 30 days within :data:`ATTRIBUTION_DAYS` days after a campaign click of the
  same persona (an order counts once, for the latest click before it).

A table the warehouse lacks makes its attributes null for everyone (unknown); when it
exists, a persona without rows has 0 tickets / clicks / conversions and null scores.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segengine.features.windows import last_days_start, local_date

SUPPORT_DAYS = 90
CAMPAIGN_DAYS = 30
ATTRIBUTION_DAYS = 7

TICKET_ATTRIBUTES = ("tickets_90d", "open_tickets", "median_hours_to_close_90d")
SURVEY_ATTRIBUTES = ("last_csat", "last_nps", "nps_category")
CAMPAIGN_ATTRIBUTES = ("campaign_clicks_30d", "campaign_conversions_30d")
# Counts: 0 for a persona without rows when the source table exists.
ZERO_WHEN_PRESENT = ("tickets_90d", "open_tickets", "campaign_clicks_30d", "campaign_conversions_30d")
NPS_CATEGORIES = ("promoter", "passive", "detractor")


@dataclass(frozen=True)
class Extras:
    """The extra attributes per persona and which of their sources exist.

    Attributes:
        frame: persona_id plus every attribute of a present source (one row per persona
            with any row).
        present: the attribute names whose source table exists.
    """

    frame: DataFrame | None
    present: frozenset[str]


def nps_category(score: Column) -> Column:
    """promoter (9-10), passive (7-8), detractor (0-6); null for a null score."""
    return F.when(score >= 9, "promoter").when(score >= 7, "passive").when(score.isNotNull(), "detractor")


def ticket_features(tickets: DataFrame, day: dt.date, tz: str, session_tz: str) -> DataFrame:
    """persona_id, tickets_90d, open_tickets, median_hours_to_close_90d (see the module doc)."""
    opened = local_date(F.col("opened_at"), tz, session_tz)
    closed = local_date(F.col("closed_at"), tz, session_tz)
    first = F.lit(last_days_start(day, SUPPORT_DAYS))
    snap = F.lit(day)
    hours = (F.unix_micros("closed_at") - F.unix_micros("opened_at")) / F.lit(3.6e9)
    closed_recent = F.col("closed_at").isNotNull() & (closed >= first) & (closed <= snap)
    return (
        tickets.where(opened <= snap)
        .groupBy("persona_id")
        .agg(
            F.count(F.when(opened >= first, 1)).alias("tickets_90d"),
            F.count(F.when(F.col("closed_at").isNull() | (closed > snap), 1)).alias("open_tickets"),
            F.median(F.when(closed_recent, hours)).alias("median_hours_to_close_90d"),
        )
    )


def survey_features(surveys: DataFrame, day: dt.date, tz: str, session_tz: str) -> DataFrame:
    """persona_id, last_csat, last_nps, nps_category (latest answer; ties by response_id)."""
    answered = local_date(F.col("answered_at"), tz, session_tz)
    order = F.struct("answered_at", "response_id")

    def last(kind: str) -> Column:
        return F.max_by(F.when(F.col("kind") == kind, F.col("score")), F.when(F.col("kind") == kind, order))

    return (
        surveys.where(answered <= F.lit(day))
        .groupBy("persona_id")
        .agg(last("csat").alias("last_csat"), last("nps").alias("last_nps"))
        .withColumn("nps_category", nps_category(F.col("last_nps")))
    )


def campaign_window(day: dt.date) -> tuple[dt.date, dt.date]:
    """The local days whose events the campaign attributes read (clicks before the first
    order day of the window count for its conversions)."""
    first = last_days_start(day, CAMPAIGN_DAYS)
    return first - dt.timedelta(days=ATTRIBUTION_DAYS), day


def campaign_touches(events: DataFrame, order_lines: DataFrame, day: dt.date, tz: str, session_tz: str) -> DataFrame:
    """Per persona and campaign over the last 30 days: sends, opens, clicks, conversions.

    Args:
        events: bronze events (``campaign_id``; may hold more days than needed).
        order_lines: bronze order lines (may hold more days than needed).
        day: the snapshot date.
        tz: ``features.timezone``.
        session_tz: the session time zone.

    Returns:
        persona_id, campaign_id, sends, opens, clicks, conversions (longs).
    """
    read_first, _ = campaign_window(day)
    first = F.lit(last_days_start(day, CAMPAIGN_DAYS))
    snap = F.lit(day)
    ev_day = local_date(F.col("event_ts"), tz, session_tz)
    mail = events.where(
        F.col("campaign_id").isNotNull()
        & F.col("persona_id").isNotNull()
        & (ev_day >= F.lit(read_first))
        & (ev_day <= snap)
    ).select("persona_id", "campaign_id", "event_type", "event_ts", "event_id", ev_day.alias("_day"))
    et = F.col("event_type")
    in_30 = F.col("_day") >= first

    def count(cond: Column) -> Column:
        return F.count(F.when(in_30 & cond, 1)).cast("long")

    touches = mail.groupBy("persona_id", "campaign_id").agg(
        count(et == "email_sent").alias("sends"),
        count(et == "email_open").alias("opens"),
        count(et == "email_click").alias("clicks"),
    )
    o_day = local_date(F.col("order_ts"), tz, session_tz)
    orders = (
        order_lines.where((o_day >= first) & (o_day <= snap) & (F.col("quantity") > 0))
        .groupBy("order_id", "persona_id")
        .agg(F.min("order_ts").alias("order_ts"))
    )
    clicks = mail.where(et == "email_click").select(
        F.col("persona_id").alias("_p"), "campaign_id", F.col("event_ts").alias("_click_ts"), "event_id"
    )
    horizon = F.expr(f"INTERVAL {ATTRIBUTION_DAYS} DAYS")
    attributed = (
        orders.join(
            clicks,
            (F.col("_p") == F.col("persona_id"))
            & (F.col("_click_ts") <= F.col("order_ts"))
            & (F.col("_click_ts") >= F.col("order_ts") - horizon),
            "inner",
        )
        .groupBy("order_id", "persona_id")
        # The latest click before the order (ties by event id) gets the conversion.
        .agg(F.max_by("campaign_id", F.struct("_click_ts", "event_id")).alias("campaign_id"))
        .groupBy("persona_id", "campaign_id")
        .agg(F.count(F.lit(1)).cast("long").alias("conversions"))
    )
    return (
        touches.join(attributed, ["persona_id", "campaign_id"], "full")
        .fillna(0, subset=["sends", "opens", "clicks", "conversions"])
        .select("persona_id", "campaign_id", "sends", "opens", "clicks", "conversions")
    )


def campaign_features(touches: DataFrame) -> DataFrame:
    """persona_id, campaign_clicks_30d, campaign_conversions_30d from :func:`campaign_touches`."""
    return touches.groupBy("persona_id").agg(
        F.sum("clicks").alias("campaign_clicks_30d"), F.sum("conversions").alias("campaign_conversions_30d")
    )


def has_campaigns(events: DataFrame | None) -> bool:
    """Whether campaign attributes can be computed: events exist and carry ``campaign_id``."""
    return events is not None and "campaign_id" in events.columns


def extra_features(
    tickets: DataFrame | None,
    surveys: DataFrame | None,
    events: DataFrame | None,
    order_lines: DataFrame,
    day: dt.date,
    tz: str,
    session_tz: str,
) -> Extras:
    """The support, survey and campaign attributes of ``day`` from what the warehouse has.

    Args:
        tickets: bronze support_tickets, or None when the warehouse has none.
        surveys: bronze survey_responses, or None.
        events: bronze events, or None (campaign attributes need ``campaign_id``).
        order_lines: bronze order lines (only the last 30 days are used).
        day: the snapshot date.
        tz: ``features.timezone``.
        session_tz: the session time zone.

    Returns:
        :class:`Extras`.
    """
    parts: list[DataFrame] = []
    present: set[str] = set()
    if tickets is not None:
        parts.append(ticket_features(tickets, day, tz, session_tz))
        present.update(TICKET_ATTRIBUTES)
    if surveys is not None:
        parts.append(survey_features(surveys, day, tz, session_tz))
        present.update(SURVEY_ATTRIBUTES)
    if has_campaigns(events):
        assert events is not None
        parts.append(campaign_features(campaign_touches(events, order_lines, day, tz, session_tz)))
        present.update(CAMPAIGN_ATTRIBUTES)
    frame = None
    for part in parts:
        frame = part if frame is None else frame.join(part, "persona_id", "full")
    return Extras(frame, frozenset(present))


def with_extras(df: DataFrame, extras: Extras | None) -> DataFrame:
    """Join the extra attributes onto the feature rows: 0 counts for personas without
    rows in a present table, null for every attribute of an absent one."""
    names = TICKET_ATTRIBUTES + SURVEY_ATTRIBUTES + CAMPAIGN_ATTRIBUTES
    if extras is None or extras.frame is None:
        return df.withColumns({n: F.lit(None) for n in names})
    out = df.join(extras.frame, "persona_id", "left")
    out = out.fillna(0, subset=[n for n in ZERO_WHEN_PRESENT if n in extras.present])
    return out.withColumns({n: F.lit(None) for n in names if n not in extras.present})
