"""Stitch personas into people and write ``identity_map`` and ``identity_rejected``.

:func:`stitch` is the pure part (DataFrames in, DataFrames out); :func:`build_identity_map`
reads bronze up to a snapshot date, stitches and replaces that date's partition of both
tables (a rerun replaces, never duplicates).

``identity_map`` (one row per persona and one per identifier kept in the graph):

========================  ===========================================================
``id_type``               ``persona_id``, ``email``, ``phone`` or ``cookie_id``
``id_value``              the persona id, or the normalised identifier
``person_id``             the canonical person: the smallest persona id of the component
``status``                ``merged`` (a person of two or more personas), ``single``, or
                          ``component_too_large`` (not merged: each persona is its own person)
``component_size``        personas in the component
``persona_count``         personas carrying this identifier (1 for a persona row)
``rule``                  the edge rules that linked it: ``persona_email``, ``persona_phone``,
                          ``persona_cookie``, ``event_cookie`` (for a persona, only the rules
                          of identifiers it shares with another persona)
``linked_by``             persona rows: the shared identifiers (``type:value``) that link it
                          to the other personas of its person; null for identifier rows
========================  ===========================================================

``identity_rejected``: identifiers cut before the components (``shared_identifier``:
more than ``identity.max_personas_per_identifier`` personas carry it), components not
merged (``component_too_large``, ``id_type`` = ``component``, ``id_value`` = its smallest
persona id), and values that do not normalise (``invalid_email``, ``invalid_phone``),
each with how many personas and a sorted sample of at most 20 of them.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from segengine.config import Config
from segengine.contract import read_bronze
from segengine.errors import ConfigError
from segengine.features.windows import local_date, session_timezone
from segengine.frames import one_row
from segengine.identity.graph import (
    SAMPLE_PERSONAS,
    connected_components,
    event_edges,
    identifier_stats,
    persona_edges,
)

if TYPE_CHECKING:
    from segengine.lake import Lake

log = logging.getLogger(__name__)

MAP_COLUMNS = (
    "id_type",
    "id_value",
    "person_id",
    "status",
    "component_size",
    "persona_count",
    "rule",
    "linked_by",
)
REJECTED_COLUMNS = ("id_type", "id_value", "reason", "persona_count", "personas")


@dataclass
class Stitched:
    """What :func:`stitch` returns: the two frames (``identity_map`` persisted) and the rounds."""

    identity_map: DataFrame
    rejected: DataFrame
    changes: list[int]
    release: Any  # call to unpersist what the frames hold


def check_settings(cfg: Any) -> None:
    """Refuse settings that cannot work, naming the key (before any Spark work)."""
    if not re.fullmatch(r"\+?[1-9][0-9]{0,2}", str(cfg.default_country_code).strip()):
        raise ConfigError(
            f"identity.default_country_code: expected a calling code of 1-3 digits (e.g. 49), "
            f"got {cfg.default_country_code!r}"
        )
    for key, low in (("max_personas_per_identifier", 1), ("max_component_size", 2), ("max_iterations", 1)):
        if getattr(cfg, key) < low:
            raise ConfigError(f"identity.{key}: expected at least {low}, got {getattr(cfg, key)}")
    if cfg.checkpoint_every < 0:
        raise ConfigError(f"identity.checkpoint_every: expected 0 (never) or more, got {cfg.checkpoint_every}")


def stitch(personas: DataFrame, events: DataFrame | None, cfg: Any) -> Stitched:
    """Build the identity graph of ``personas`` (and ``events``) and its canonical persons.

    Args:
        personas: persona_id, email, phone, cookie_id.
        events: persona_id, cookie_id (None or empty: no event links).
        cfg: the ``identity`` section of the Config.

    Returns:
        A :class:`Stitched` with the ``identity_map`` and ``identity_rejected`` frames
        (columns :data:`MAP_COLUMNS` and :data:`REJECTED_COLUMNS`, no snapshot date).
    """
    check_settings(cfg)
    personas = personas.select("persona_id", "email", "phone", "cookie_id").where(F.col("persona_id").isNotNull())
    edges, invalid = persona_edges(personas, str(cfg.default_country_code).strip().lstrip("+"))
    if events is not None and cfg.event_links:
        edges = edges.unionByName(event_edges(events, personas))
    edges = edges.distinct()
    stats = identifier_stats(edges).persist()
    too_shared = F.col("persona_count") > cfg.max_personas_per_identifier
    kept = stats.where(~too_shared)

    # Only identifiers of two or more personas link anything.
    links = (
        edges.join(kept.where(F.col("persona_count") >= 2).select("id_type", "id_value"), ["id_type", "id_value"])
        .withColumn("key", F.concat_ws(":", "id_type", "id_value"))
        .persist()
    )
    labels, changes = connected_components(links, cfg.max_iterations, cfg.checkpoint_every)
    sizes = labels.groupBy("label").agg(F.count(F.lit(1)).cast("int").alias("component_size"))
    too_large = F.col("component_size") > cfg.max_component_size
    labelled = labels.join(sizes, "label").select(
        "persona_id",
        "component_size",
        F.when(too_large, F.col("persona_id")).otherwise(F.col("label")).alias("person_id"),
        F.when(too_large, F.lit("component_too_large")).otherwise(F.lit("merged")).alias("status"),
    )
    linked = links.groupBy("persona_id").agg(
        F.array_sort(F.collect_set("rule")).alias("rule"),
        F.array_sort(F.collect_set("key")).alias("linked_by"),
    )
    empty = F.array().cast("array<string>")
    persona_rows = (
        personas.select("persona_id")
        .distinct()
        .join(labelled, "persona_id", "left")
        .join(linked, "persona_id", "left")
        .select(
            F.lit("persona_id").alias("id_type"),
            F.col("persona_id").alias("id_value"),
            F.coalesce("person_id", "persona_id").alias("person_id"),
            F.coalesce("status", F.lit("single")).alias("status"),
            F.coalesce("component_size", F.lit(1)).alias("component_size"),
            F.lit(1).alias("persona_count"),
            F.coalesce("rule", empty).alias("rule"),
            F.coalesce("linked_by", empty).alias("linked_by"),
        )
        .persist()
    )
    person_of = persona_rows.select(F.col("id_value").alias("persona_id"), "person_id", "status", "component_size")
    # Every persona of an identifier is in one component, so the min is its person (in a
    # component that is not merged: its smallest persona, as for a cookie shared today).
    id_rows = (
        edges.join(kept.select("id_type", "id_value"), ["id_type", "id_value"], "left_semi")
        .join(person_of, "persona_id")
        .groupBy("id_type", "id_value")
        .agg(
            F.min("person_id").alias("person_id"),
            F.min("status").alias("status"),
            F.max("component_size").alias("component_size"),
        )
        .join(
            kept.select("id_type", "id_value", "persona_count", F.col("rules").alias("rule")), ["id_type", "id_value"]
        )
        .select(*MAP_COLUMNS[:-1], F.lit(None).cast("array<string>").alias("linked_by"))
    )
    identity_map = persona_rows.select(*MAP_COLUMNS).unionByName(id_rows)

    shared = stats.where(too_shared).select(
        "id_type", "id_value", F.lit("shared_identifier").alias("reason"), "persona_count", "personas"
    )
    large = (
        labels.join(sizes.where(too_large), "label")
        .groupBy("label")
        .agg(
            F.count(F.lit(1)).cast("int").alias("persona_count"),
            F.slice(F.array_sort(F.collect_list("persona_id")), 1, SAMPLE_PERSONAS).alias("personas"),
        )
        .select(
            F.lit("component").alias("id_type"),
            F.col("label").alias("id_value"),
            F.lit("component_too_large").alias("reason"),
            "persona_count",
            "personas",
        )
    )
    bad_values = invalid.groupBy("id_type", "id_value", "reason").agg(
        F.countDistinct("persona_id").cast("int").alias("persona_count"),
        F.slice(F.array_sort(F.collect_set("persona_id")), 1, SAMPLE_PERSONAS).alias("personas"),
    )
    rejected = shared.unionByName(large).unionByName(bad_values.select(*REJECTED_COLUMNS))

    def release() -> None:
        for frame in (stats, links, labels, persona_rows):
            frame.unpersist()

    return Stitched(identity_map, rejected, changes, release)


# The written types: arrays may hold nulls whatever a run's plan inferred, so every date's
# partition has the same schema (an empty first run and a later one agree).
_TYPES = {
    "component_size": "int",
    "persona_count": "int",
    "rule": "array<string>",
    "linked_by": "array<string>",
    "personas": "array<string>",
}


def _typed(df: DataFrame, columns: tuple[str, ...]) -> DataFrame:
    return df.select(*[F.col(c).cast(_TYPES.get(c, "string")).alias(c) for c in columns])


def _personas_until(lake: Lake, config: Config, snapshot_date: dt.date, session_tz: str) -> DataFrame:
    personas = read_bronze(lake, "personas")
    day = local_date(F.col("created_at"), config.features.timezone, session_tz)
    return personas.where(F.col("created_at").isNull() | (day <= F.lit(snapshot_date)))


def _events_until(lake: Lake, config: Config, snapshot_date: dt.date, session_tz: str) -> DataFrame:
    events = read_bronze(lake, "events").select("persona_id", "cookie_id", "event_ts", "event_date")
    # event_date is the UTC date: one day of slack for a zone east of UTC, then the local date.
    events = events.where(F.col("event_date") <= F.lit(snapshot_date + dt.timedelta(days=1)))
    day = local_date(F.col("event_ts"), config.features.timezone, session_tz)
    return events.where(
        (day <= F.lit(snapshot_date)) & F.col("persona_id").isNotNull() & F.col("cookie_id").isNotNull()
    )


def build_identity_map(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """Stitch bronze up to ``snapshot_date`` and replace that date's ``identity_map`` and ``identity_rejected``.

    Args:
        spark: the SparkSession.
        lake: the Lake.
        config: the Config (``identity`` section; ``features.timezone`` for dates).
        snapshot_date: personas created and events seen up to this local date count.

    Returns:
        A summary: personas, persons, merged personas, identifiers, rounds and the labels
        changed per round, rejected rows per reason, the component size distribution
        (``{size: components}``, single personas included), table versions, seconds.

    Raises:
        ConfigError: an ``identity`` setting cannot work.
        IdentityError: the components did not converge within ``identity.max_iterations``.
        TableNotFound: there is no ``personas`` table.
    """
    check_settings(config.identity)
    started = time.time()
    session_tz = session_timezone(spark)
    personas = _personas_until(lake, config, snapshot_date, session_tz)
    events = _events_until(lake, config, snapshot_date, session_tz)
    result = stitch(personas, events, config.identity)
    try:
        day = F.lit(snapshot_date).cast("date").alias("snapshot_date")
        map_version = lake.overwrite_partition(
            _typed(result.identity_map, MAP_COLUMNS).select("*", day), "identity_map", snapshot_date=snapshot_date
        )
        rejected_version = lake.overwrite_partition(
            _typed(result.rejected, REJECTED_COLUMNS).select("*", day),
            "identity_rejected",
            snapshot_date=snapshot_date,
        )
    finally:
        result.release()
    written = lake.read("identity_map", partitions={"snapshot_date": snapshot_date})
    summary = {
        "snapshot_date": snapshot_date.isoformat(),
        "rounds": len(result.changes),
        "labels_changed_per_round": result.changes,
        **summarise(written, lake.read("identity_rejected", partitions={"snapshot_date": snapshot_date})),
        "versions": {"identity_map": map_version, "identity_rejected": rejected_version},
        "seconds": round(time.time() - started, 2),
    }
    log.info("identity map written: %s", summary)
    return summary


def summarise(identity_map: DataFrame, rejected: DataFrame) -> dict[str, Any]:
    """Small aggregates of a written map: counts and the component size distribution.

    The distribution has one entry per distinct component size (bounded by
    ``identity.max_component_size`` plus the few too-large components), so it is collected.
    """
    personas = identity_map.where(F.col("id_type") == "persona_id")
    totals = one_row(
        personas.agg(
            F.count(F.lit(1)).alias("personas"),
            F.countDistinct("person_id").alias("persons"),
            F.sum(F.when(F.col("status") == "merged", 1).otherwise(0)).alias("merged_personas"),
        )
    )
    by_type = {
        r["id_type"]: int(r["n"])
        for r in identity_map.where(F.col("id_type") != "persona_id")
        .groupBy("id_type")
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    }
    sizes = (
        personas.groupBy("person_id", "status")
        .agg(F.count(F.lit(1)).alias("size"))
        .where(F.col("status") != "component_too_large")
        .groupBy("size")
        .agg(F.count(F.lit(1)).alias("n"))
        .collect()
    )
    reasons = {r["reason"]: int(r["n"]) for r in rejected.groupBy("reason").agg(F.count(F.lit(1)).alias("n")).collect()}
    return {
        "personas": int(totals["personas"] or 0),
        "persons": int(totals["persons"] or 0),
        "merged_personas": int(totals["merged_personas"] or 0),
        "identifiers": by_type,
        "component_sizes": {int(r["size"]): int(r["n"]) for r in sorted(sizes, key=lambda r: r["size"])},
        "rejected": reasons,
    }
