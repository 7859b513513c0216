"""Assemble ``customer_features`` for one snapshot date and write its partition.

``assemble_features`` is the pure core (bronze DataFrames in, features out);
``build_features`` reads the bronze tables from the lake. Writing the snapshot's
partition is :func:`segengine.features.compute.compute_features` (through the refresh).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from pyspark import StorageLevel
from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from segengine.contract import empty_bronze
from segengine.features import behaviour, profile, rfmt, scores, state, support, tiers
from segengine.features.catalog import ATTRIBUTES, EVENT_ATTRIBUTES, MODEL_COLUMNS

log = logging.getLogger(__name__)

# Columns whose absence means "none": 0 for counts and money after the left joins.
ZERO_INT = (
    "frequency",
    "orders_lifetime",
    "distinct_products",
    "distinct_categories",
    "visits_30d",
    "email_opens_90d",
    "email_clicks_90d",
    "items_cycle",
    "refunds_lifetime",
    "product_views_30d",
    "add_to_cart_30d",
    "logins_30d",
    "feature_uses_30d",
    "active_days_90d",
    "active_days_prev_90d",
)
ZERO_DOUBLE = ("monetary", "revenue_lifetime", "time_on_site_30d", "refund_amount_lifetime", "revenue_prev_cycle")


def session_timezone(spark: Any) -> str:
    """The session time zone (what ``to_date`` of a timestamp uses)."""
    return spark.conf.get("spark.sql.session.timeZone")


def history_frames(
    personas: DataFrame,
    order_lines: DataFrame,
    events: DataFrame,
    snapshot_date: dt.date,
    fconf: Any,
    session_tz: str,
    earlier_events: DataFrame | None = None,
) -> dict[str, DataFrame]:
    """The state, item and recent daily rows of ``snapshot_date`` from the whole history.

    Each event is aggregated once: the events from :func:`~segengine.features.state.history_start`
    on into the daily rows (which also give their last visit), the earlier ones only
    into each persona's last visit before that day.

    Args:
        personas: bronze personas (for the cookie owners).
        order_lines: bronze order_lines (any dates: later ones are ignored).
        events: bronze events (with the ``event_date`` partition column).
        snapshot_date: features describe data up to the end of this local date.
        fconf: the ``features`` config section.
        session_tz: the session time zone (see :func:`session_timezone`).
        earlier_events: bronze events for the days before the history start. When
            given, ``events`` need only hold the rows with ``event_date`` >= event history
            start - 1 day and this one those with ``event_date`` <= event history start
            (:func:`~segengine.features.state.event_history_start`), so a
            reader can prune the files of each; by default both come from ``events``.

    Returns:
        ``state`` (:data:`~segengine.features.state.STATE_COLUMNS`), ``items`` (item
        rows), ``daily`` (``customer_daily`` rows from
        :func:`~segengine.features.state.history_start`), the ``order_rows`` (one
        per order, :func:`~segengine.features.rfmt.orders_as_days`) and
        ``earlier_visits`` the state is built from (see
        :func:`~segengine.features.state.state_from_history`), and ``cached``: the
        frames that feed several of them (persist while they are used).

    Only the per-order facts are cached: they cost a shuffle of every order line and
    feed three aggregates. The order lines and events are read again from Parquet by
    each aggregate that needs them; at 1M personas building their in-memory columnar
    cache took longer (about 30 s for 20M lines, 45 s for 11M events on 2 cores) than
    the scans it saved.
    """
    tz = fconf.timezone
    day = snapshot_date
    lines = rfmt.order_lines_until(order_lines, day, tz, session_tz)
    orders = rfmt.order_facts(lines)
    odays = rfmt.order_days(orders)
    order_rows = rfmt.orders_as_days(orders)  # the lifetime columns need no day grouping
    first = state.history_start(day, fconf)
    # Events only from the first day an event window covers (the previous cycle, for
    # expansion revenue, sums orders only).
    event_first = state.event_history_start(day, fconf)
    recent_raw = behaviour.events_until(events, day, tz, session_tz, since=event_first)
    earlier = events if earlier_events is None else earlier_events
    earlier_raw = behaviour.events_until(earlier, event_first - dt.timedelta(days=1), tz, session_tz)
    recent_events = behaviour.resolve_personas(recent_raw, personas)
    daily = state.daily_summary(odays.where(F.col("day") >= F.lit(first)), behaviour.event_days(recent_events))
    earlier_visits = behaviour.last_visit(behaviour.resolve_personas(earlier_raw, personas))
    cookies = behaviour.anonymous_cookies(recent_raw.unionByName(earlier_raw))
    return {
        "state": state.state_from_history(order_rows, daily, earlier_visits, day, fconf),
        "order_rows": order_rows,
        "earlier_visits": earlier_visits,
        "items": rfmt.line_items(lines, orders).unionByName(cookies),
        "daily": daily,
        "cached": [orders],
    }


# Spark builds a cache when an action first reads it, with this setting as it is then.
CACHE_COMPRESSED = "spark.sql.inMemoryColumnarStorage.compressed"


@contextlib.contextmanager
def persisted(frames: list[DataFrame]) -> Iterator[None]:
    """Persist ``frames`` (memory, spilling to disk) while the block runs.

    The caches live for one job and are read a few times, so they are kept as they
    are built: deserialized and without column compression (the session's setting
    is restored after). Serializing, compressing and decoding cost more than the
    memory saves: at 1M personas, caching the 9.6M per-order rows and reading them
    twice took 24.8 s serialized and compressed (pyspark's MEMORY_AND_DISK), 15.0 s
    this way, where computing them once without a cache took 16.8 s.
    """
    if not frames:
        yield
        return
    conf = frames[0].sparkSession.conf
    before = conf.get(CACHE_COMPRESSED)
    conf.set(CACHE_COMPRESSED, "false")
    for df in frames:
        df.persist(StorageLevel.MEMORY_AND_DISK_DESER)
    try:
        yield
    finally:
        for df in frames:
            df.unpersist()
        conf.set(CACHE_COMPRESSED, before)


def features_from_state(
    profiles: DataFrame,
    st: DataFrame,
    items: DataFrame,
    products: DataFrame,
    snapshot_date: dt.date,
    fconf: Any,
    has_events: bool = True,
    extras: support.Extras | None = None,
) -> DataFrame:
    """The feature table from the profiles, the state and the item rows of ``snapshot_date``.

    ``has_events=False`` (the warehouse has no ``events`` table): the
    :data:`~segengine.features.catalog.EVENT_ATTRIBUTES` are null. ``extras``: the
    support, survey and campaign attributes (:func:`~segengine.features.support.extra_features`;
    None: all null).
    """
    return finish_features(
        profiles,
        state.state_features(st, snapshot_date, fconf),
        rfmt.assortment_features(items, products),
        snapshot_date,
        fconf,
        has_events=has_events,
        extras=extras,
    )


def assemble_features(
    personas: DataFrame,
    order_lines: DataFrame,
    products: DataFrame,
    events: DataFrame | None,
    snapshot_date: dt.date,
    fconf: Any,
    session_tz: str,
    support_tickets: DataFrame | None = None,
    survey_responses: DataFrame | None = None,
) -> DataFrame:
    """Compute the feature table from bronze DataFrames (pure; nothing is written).

    The full recompute: the state of ``snapshot_date`` from the whole history, then
    the features from it (the incremental refresh derives the same state from the
    previous one, see :mod:`segengine.features.refresh`).

    Args:
        personas: bronze personas.
        order_lines: bronze order_lines (any dates: later ones are ignored).
        products: bronze products.
        events: bronze events (with the ``event_date`` partition column), or None when
            the warehouse has none: the event attributes are then null.
        snapshot_date: features describe data up to the end of this local date.
        fconf: the ``features`` config section.
        session_tz: the session time zone (see :func:`session_timezone`).
        support_tickets: bronze support_tickets, or None when the warehouse has none
            (the ticket attributes are then null).
        survey_responses: bronze survey_responses, or None (survey attributes null).

    Returns:
        One row per persona existing on ``snapshot_date``, columns exactly as the catalog.
    """
    has_events = events is not None
    if events is None:
        events = empty_bronze(personas.sparkSession, "events")
    frames = history_frames(personas, order_lines, events, snapshot_date, fconf, session_tz)
    extras = support.extra_features(
        support_tickets,
        survey_responses,
        events if has_events else None,
        order_lines,
        snapshot_date,
        fconf.timezone,
        session_tz,
    )
    # The per-order facts feed several aggregates: computed once (see history_frames).
    with persisted(frames["cached"]):
        return features_from_state(
            profile.profile_features(personas, snapshot_date, fconf.timezone, session_tz),
            frames["state"],
            frames["items"],
            products,
            snapshot_date,
            fconf,
            has_events=has_events,
            extras=extras,
        )


def finish_features(
    profiles: DataFrame,
    per_persona: DataFrame,
    assortment: DataFrame,
    snapshot_date: dt.date,
    fconf: Any,
    has_events: bool = True,
    extras: support.Extras | None = None,
) -> DataFrame:
    """Join the per-persona parts, derive tiers and scores, conform to the catalog.

    Args:
        profiles: :func:`profile.profile_features` (defines the rows).
        per_persona: :func:`state.state_features` (value, visit, count and activity columns).
        assortment: :func:`rfmt.assortment_features`.
        snapshot_date: the snapshot date.
        fconf: the ``features`` config section.
        has_events: False when the warehouse has no ``events`` table: the event
            attributes are null (unknown) rather than 0.
        extras: the support, survey and campaign attributes (None: all null).

    Returns:
        The feature table (catalog columns and types, model columns null).
    """
    day = F.lit(snapshot_date)
    df = (
        profiles.join(per_persona, "persona_id", "left")
        .join(assortment, "persona_id", "left")
        .fillna(0, subset=list(ZERO_INT))
        .fillna(0.0, subset=list(ZERO_DOUBLE))
        .withColumn("snapshot_date", day)
        .withColumn("orders_cycle", F.col("frequency"))
        .withColumn("revenue_cycle", F.col("monetary"))
        .withColumn(
            "avg_basket_value",
            F.when(F.col("orders_lifetime") > 0, F.round(F.col("revenue_lifetime") / F.col("orders_lifetime"), 2)),
        )
        .withColumn("avg_monthly_spend", F.round(F.col("monetary") / F.lit(float(fconf.cycle_months)), 2))
        .withColumn("days_since_last_purchase", F.datediff(day, F.col("last_purchase_date")))
        .withColumn("days_since_last_visit", F.datediff(day, F.col("last_visit_date")))
        .transform(profile.with_persona_type)
        .transform(lambda d: support.with_extras(d, extras))
        # The tier ranking and the fit profile each read this frame twice: materialise
        # it once (eagerly, so the cached inputs can be released) and cut the lineage.
        .localCheckpoint(eager=True)
        .transform(lambda d: tiers.with_value_tier(d, fconf.value_tier_top, fconf.value_tier_next))
        .transform(lambda d: tiers.with_behaviour_state(d, snapshot_date, fconf.declining_ratio, fconf.dormant_days))
        .transform(
            lambda d: tiers.with_lifecycle_stage(
                d, snapshot_date, fconf.lifecycle_new_days, fconf.lifecycle_established_days
            )
        )
        .transform(scores.with_engagement_score)
        .transform(scores.with_fit_score)
    )
    for name in MODEL_COLUMNS:
        df = df.withColumn(name, F.lit(None))
    if not has_events:
        # Unknown, not zero: the scores above count a missing visit column as none.
        df = df.withColumns({name: F.lit(None) for name in EVENT_ATTRIBUTES})
    return conform(df)


def conform(df: DataFrame) -> DataFrame:
    """Select exactly the catalog's columns, in order, cast to the catalog's types."""
    return df.select(*[F.col(a.name).cast(a.spark_type).alias(a.name) for a in ATTRIBUTES])


def build_features(spark: Any, lake: Any, config: Any, snapshot_date: dt.date) -> DataFrame:
    """The feature table for ``snapshot_date`` from the bronze tables (full recompute, no write).

    Args:
        spark: the SparkSession.
        lake: the :class:`~segengine.lake.Lake`.
        config: the loaded :class:`~segengine.config.Config`.
        snapshot_date: features describe data up to the end of this date.

    Returns:
        One row per persona, columns exactly as in the catalog.
    """
    return assemble_features(
        lake.read("personas"),
        lake.read("order_lines"),
        lake.read("products"),
        lake.read("events") if lake.exists("events") else None,
        snapshot_date,
        config.features,
        session_timezone(spark),
        support_tickets=lake.read("support_tickets") if lake.exists("support_tickets") else None,
        survey_responses=lake.read("survey_responses") if lake.exists("survey_responses") else None,
    )
