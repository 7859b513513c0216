"""The feature table of one snapshot date without writing: the full recompute through the stages.

:func:`build_features` reads the bronze tables from the lake; :func:`assemble_features`
is the pure core (bronze DataFrames in, features out): the window state rebuilt from the
whole history (stages 1-3, :func:`segengine.features.state.rebuild_state`), then
:func:`features_from_state` (stages 4-6 up to the write). Writing the snapshot's
partition, incrementally when exact, is :func:`segengine.features.compute.compute_features`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING

from pyspark import StorageLevel
from pyspark.sql import DataFrame

from segengine.contract import empty_bronze
from segengine.features import output, profile, scores, state, support, table, tiers
from segengine.features.windows import session_timezone

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config, FeaturesConfig
    from segengine.lake import Lake

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
        if before is None:
            conf.unset(CACHE_COMPRESSED)
        else:
            conf.set(CACHE_COMPRESSED, before)


def features_from_state(
    profiles: DataFrame,
    st: DataFrame,
    items: DataFrame,
    products: DataFrame,
    snapshot_date: dt.date,
    fconf: FeaturesConfig,
    has_events: bool = True,
    extras: support.Extras | None = None,
) -> DataFrame:
    """The feature table from the profiles, the state and the item rows of ``snapshot_date``.

    Stages 4-6: :func:`segengine.features.table.feature_table`, then
    :func:`segengine.features.tiers.with_tiers`, :func:`segengine.features.scores.with_scores`
    and :func:`segengine.features.output.conform_features`.

    Args:
        profiles: :func:`segengine.features.profile.profile_features` (defines the rows).
        st: the window state of ``snapshot_date``.
        items: its item rows.
        products: bronze products.
        snapshot_date: the snapshot date.
        fconf: the ``features`` config section.
        has_events: False when the warehouse has no ``events`` table: the
            :data:`~segengine.features.catalog.EVENT_ATTRIBUTES` are null.
        extras: the support, survey and campaign attributes
            (:func:`~segengine.features.support.extra_features`; None: all null).

    Returns:
        The feature table (catalog columns and types, model columns null).
    """
    return (
        table.feature_table(profiles, st, items, products, snapshot_date, fconf, extras=extras)
        .transform(lambda d: tiers.with_tiers(d, snapshot_date, fconf))
        .transform(scores.with_scores)
        .transform(lambda d: output.conform_features(d, has_events=has_events))
    )


def assemble_features(
    personas: DataFrame,
    order_lines: DataFrame,
    products: DataFrame,
    events: DataFrame | None,
    snapshot_date: dt.date,
    fconf: FeaturesConfig,
    session_tz: str,
    support_tickets: DataFrame | None = None,
    survey_responses: DataFrame | None = None,
) -> DataFrame:
    """Compute the feature table from bronze DataFrames (pure; nothing is written).

    The full recompute: the state of ``snapshot_date`` from the whole history, then
    the features from it (the incremental refresh derives the same state from the
    previous one, see :mod:`segengine.features.compute`).

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
    frames = state.rebuild_state(personas, order_lines, events, snapshot_date, fconf, session_tz)
    extras = support.extra_features(
        support_tickets,
        survey_responses,
        events if has_events else None,
        order_lines,
        snapshot_date,
        fconf.timezone,
        session_tz,
    )
    # The per-order facts feed several aggregates: computed once (see rebuild_state).
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


def build_features(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> DataFrame:
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
