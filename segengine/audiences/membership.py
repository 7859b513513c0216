"""Audience membership: evaluate a definition, apply it as a merge, record the changes.

Applying a membership is one Delta merge into ``audience_members`` (upsert the new
members, delete the audience's rows that are no longer members). The added/removed
rows are then derived by comparing the audience's slice at the merge's version with
the version just before it. Because the storage layer commits a merge only on top
of the exact snapshot it read (a concurrent commit makes it re-read and recompute),
the version before ours is the state our merge replaced, so the changes recorded
are exactly the changes committed, even when two refreshes race, and a rerun that
changes nothing records nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Protocol

from segengine.audiences.registry import (
    Audience,
    ensure_tables,
    get_audience,
    register_audience,
    resolver,
    stored_members,
)
from segengine.audiences.setops import OPERATIONS, combine_frames
from segengine.audiences.topn import top_n_frame
from segengine.errors import AudienceError
from segengine.features.snapshots import require_feature_partition

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

DYNAMIC_SOURCES = ("rules", "top_n", "set_operation")


class Evaluator(Protocol):
    """Turns a rules definition into members; the refresh job shares one across audiences."""

    def prepare(self, spark: SparkSession, lake: Lake, snapshot_date: dt.date) -> None: ...

    def __call__(
        self, spark: SparkSession, lake: Lake, definition: dict[str, Any], snapshot_date: dt.date, resolve: Any
    ) -> DataFrame: ...


class RulesEvaluator:
    """The rule compiler (``segengine.rules``) as an :class:`Evaluator`.

    ``prepare`` registers the temp views once for a date, so every audience of a
    refresh run is evaluated against the same (cached) feature partition.
    """

    def __init__(self) -> None:
        self._prepared: dt.date | None = None

    def prepare(self, spark: SparkSession, lake: Lake, snapshot_date: dt.date) -> None:
        from segengine.rules import register_views

        register_views(spark, lake, snapshot_date)
        self._prepared = snapshot_date

    def __call__(
        self, spark: SparkSession, lake: Lake, definition: dict[str, Any], snapshot_date: dt.date, resolve: Any
    ) -> DataFrame:
        from segengine.rules import evaluate_segment, parse_segment

        segment = parse_segment(definition)
        return evaluate_segment(
            spark,
            lake,
            segment,
            snapshot_date,
            resolver=resolve,
            views_registered=self._prepared == snapshot_date,
        ).select("persona_id")


def compute_membership(
    spark: SparkSession,
    lake: Lake,
    aud: Audience,
    snapshot_date: dt.date | None,
    evaluator: Evaluator | None = None,
    memo: dict[str, DataFrame] | None = None,
    _stack: tuple[str, ...] = (),
) -> DataFrame:
    """The members an audience's definition selects on ``snapshot_date``.

    Static audiences return their stored members. Dynamic ones evaluate: ``rules``
    through the evaluator; ``set_operation`` and ``top_n`` from their operands'
    (freshly computed, when dynamic) membership. Operands are resolved with the
    audience owner's rights, so a private operand of another user is refused.

    Args:
        memo: audience_id -> DataFrame already computed in this run (shared work).

    Returns:
        DataFrame(persona_id), distinct.
    """
    memo = {} if memo is None else memo
    if aud.audience_id in memo:
        return memo[aud.audience_id]
    if aud.audience_id in _stack:
        raise AudienceError(f"audience {aud.name!r} refers to itself through {' -> '.join(_stack)}")
    if aud.kind == "static":
        return stored_members(lake, aud.audience_id).select("persona_id")
    if snapshot_date is None:
        raise AudienceError(f"audience {aud.name!r}: a snapshot date is needed to evaluate a dynamic definition")
    defn = aud.definition_dict
    stack = (*_stack, aud.audience_id)

    def operand(ref: str) -> DataFrame:
        op_aud = get_audience(spark, lake, ref, aud.owner)
        return compute_membership(spark, lake, op_aud, snapshot_date, evaluator, memo, stack)

    if aud.source == "rules":
        evaluator = evaluator or RulesEvaluator()
        df = (
            evaluator(spark, lake, defn, snapshot_date, resolver(spark, lake, aud.owner))
            .select("persona_id")
            .distinct()
        )
    elif aud.source == "set_operation":
        refs = defn.get("audiences") or []
        df = combine_frames(defn.get("op", ""), [operand(r) for r in refs])
    elif aud.source == "top_n":
        df = top_n_frame(
            lake, operand(defn["from"]), int(defn["n"]), defn["by"], defn.get("order", "desc"), snapshot_date
        )
    else:
        raise AudienceError(f"audience {aud.name!r}: a {aud.source} audience cannot be dynamic")
    memo[aud.audience_id] = df
    return df


def apply_membership(
    spark: SparkSession, lake: Lake, audience_id: str, new_members: DataFrame, snapshot_date: dt.date
) -> dict[str, Any]:
    """Make ``new_members`` the audience's membership and record who joined and left.

    Args:
        new_members: DataFrame with a persona_id column (duplicates are fine).
        snapshot_date: the date recorded for the changes (and ``since`` of new members).

    Returns:
        {"size", "added", "removed", "version"} where version is the membership commit.
    """
    from pyspark.sql import functions as F

    current = stored_members(lake, audience_id).select("persona_id", "since")
    source = (
        new_members.select("persona_id")
        .filter(F.col("persona_id").isNotNull())
        .distinct()
        .join(current, "persona_id", "left")
        .select(
            F.lit(audience_id).alias("audience_id"),
            "persona_id",
            F.coalesce(F.col("since"), F.lit(snapshot_date)).alias("since"),
        )
    )
    version = lake.merge(
        source,
        "audience_members",
        keys=["audience_id", "persona_id"],
        delete_missing_in={"audience_id": audience_id},
        within={"audience_id": audience_id},
        operation="REFRESH AUDIENCE",
        metadata={"audience_id": audience_id, "snapshot_date": snapshot_date.isoformat()},
    )
    before = lake.read("audience_members", version=version - 1, partitions={"audience_id": audience_id})
    after = lake.read("audience_members", version=version, partitions={"audience_id": audience_id})
    b, a = before.select("persona_id"), after.select("persona_id")
    changes = (
        a.join(b, "persona_id", "left_anti")
        .withColumn("change", F.lit("added"))
        .unionByName(b.join(a, "persona_id", "left_anti").withColumn("change", F.lit("removed")))
        .select(
            F.lit(audience_id).alias("audience_id"),
            "persona_id",
            "change",
            F.lit(snapshot_date).cast("date").alias("snapshot_date"),
        )
    )
    # Counted and written from one materialisation (the anti-joins run once, not twice).
    changes = changes.localCheckpoint(eager=True)
    counts = {r["change"]: r["count"] for r in changes.groupBy("change").count().collect()}
    if counts:
        lake.write(changes, "audience_changes", mode="append", operation="AUDIENCE CHANGES")
    size = after.count()
    return {"size": size, "added": counts.get("added", 0), "removed": counts.get("removed", 0), "version": version}


def record_refresh(spark: SparkSession, lake: Lake, stats: list[dict[str, Any]]) -> None:
    """Upsert one ``audience_refreshes`` row per (audience, date): a rerun replaces it."""
    from segengine.audiences.registry import _now, refreshes_schema

    if not stats:
        return
    now = _now()
    rows = [
        (s["audience_id"], s["snapshot_date"], s["size"], s["added"], s["removed"], float(s["seconds"]), now)
        for s in stats
    ]
    df = spark.createDataFrame(rows, refreshes_schema())
    lake.merge(df, "audience_refreshes", keys=["audience_id", "snapshot_date"], operation="AUDIENCE REFRESH STATS")


def create_audience(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    name: str,
    owner: str,
    kind: str,
    source: str,
    definition: dict[str, Any],
    members: DataFrame | None = None,
    visibility: str = "shared",
    snapshot_date: dt.date | None = None,
    evaluator: Evaluator | None = None,
) -> str:
    """Save a new audience and (for static ones, or when a date is given) its members.

    Args:
        kind: ``static`` (membership frozen now) or ``dynamic`` (recomputed by refresh).
        source: rules | upload | top_n | lookalike | set_operation.
        definition: the segment document (rules), or the recipe (``{"op", "audiences"}``
            for set operations, ``{"from", "n", "by", "order"}`` for top-N, file details
            for uploads, seed and size for lookalikes).
        members: DataFrame(persona_id) for a static audience; when omitted a static
            rules/top_n/set_operation audience is evaluated on ``snapshot_date``.
        snapshot_date: the date the membership describes (default today); a dynamic
            audience is refreshed at once when a date is given.

    Returns:
        The new audience_id.
    """
    import time

    if kind == "dynamic" and source not in DYNAMIC_SOURCES:
        raise AudienceError(f"audience {name!r}: a {source} audience can only be static")
    if source == "rules" and (evaluator is None or isinstance(evaluator, RulesEvaluator)):
        _validate_rules(definition, name, resolver(spark, lake, owner))
    if source == "set_operation":
        if definition.get("op") not in OPERATIONS or not definition.get("audiences"):
            raise AudienceError(
                f"audience {name!r}: a set operation needs op ({', '.join(OPERATIONS)}) and audiences, got {definition}"
            )
    if kind == "static" and members is None and (source not in DYNAMIC_SOURCES or snapshot_date is None):
        raise AudienceError(
            f"audience {name!r}: a static {source} audience needs its members (or a snapshot date to evaluate on)"
        )
    # Every input is checked before anything is written: operands exist and are visible,
    # the features date exists. Only then are the tables created and the audience saved.
    _check_operands(spark, lake, source, definition, owner)
    if snapshot_date is not None and (members is None or kind == "dynamic"):
        require_feature_partition(lake, snapshot_date)
    ensure_tables(spark, lake)
    aud = register_audience(spark, lake, name, owner, kind, source, definition, visibility)
    date = snapshot_date or dt.date.today()
    started = time.time()
    if kind == "static":
        if members is None:
            members = compute_membership(spark, lake, replace(aud, kind="dynamic"), snapshot_date, evaluator)
        stats = apply_membership(spark, lake, aud.audience_id, members, date)
    elif snapshot_date is not None:
        stats = apply_membership(
            spark, lake, aud.audience_id, compute_membership(spark, lake, aud, snapshot_date, evaluator), date
        )
    else:
        return aud.audience_id
    stats.update(audience_id=aud.audience_id, snapshot_date=date, seconds=time.time() - started)
    record_refresh(spark, lake, [stats])
    return aud.audience_id


def _validate_rules(definition: dict[str, Any], name: str, segments: Any = None) -> None:
    """Validate a segment document eagerly, when the rule compiler is available.

    With ``segments`` (a resolver), the ``in_segment`` names are resolved too, so an
    unknown one is an error before the audience is saved.
    """
    try:
        from segengine.rules import compile_segment, parse_segment
    except ImportError:  # the compiler is optional for static uploads/tests with a stub
        return
    if not isinstance(definition, dict):
        raise AudienceError(f"audience {name!r}: a rules definition must be a mapping, got {json.dumps(definition)}")
    segment = parse_segment(definition)
    if segments is not None:
        compile_segment(segment, dt.date.today(), resolver=segments)


def _check_operands(spark: SparkSession, lake: Lake, source: str, definition: Any, owner: str) -> None:
    """The audiences a set operation or a top-N is built from exist and ``owner`` can see them."""
    if not isinstance(definition, dict):
        return
    refs = definition.get("audiences") if source == "set_operation" else None
    if source == "top_n" and definition.get("from"):
        refs = [definition["from"]]
    for ref in refs or ():
        get_audience(spark, lake, ref, owner)


def members_as_of(changes: DataFrame, snapshot_date: dt.date) -> DataFrame:
    """Audience membership on ``snapshot_date``, rebuilt from ``audience_changes``.

    Every membership write records who was ``added`` and ``removed`` on which date, and
    a persona's changes alternate (only a non-member can be added, only a member
    removed). So a persona is a member on a date exactly when its adds up to that date
    outnumber its removals; counting needs no ordering within one date.

    Args:
        changes: ``audience_changes`` rows (audience_id, persona_id, change, snapshot_date).
        snapshot_date: the date to rebuild.

    Returns:
        audience_id, persona_id: one row per member on that date.
    """
    from pyspark.sql import functions as F

    step = F.when(F.col("change") == "added", 1).when(F.col("change") == "removed", -1).otherwise(0)
    return (
        changes.where(F.col("snapshot_date") <= F.lit(snapshot_date))
        .groupBy("audience_id", "persona_id")
        .agg(F.sum(step).alias("__net"))
        .where(F.col("__net") > 0)
        .select("audience_id", "persona_id")
    )


def membership_changes(lake: Lake, audience_id: str, start: dt.date, end: dt.date, limit: int = 20) -> dict[str, Any]:
    """Who joined and who left an audience between ``start`` and ``end`` (both included).

    Read from ``audience_changes`` (partitioned by date, so only the window is read): the
    counts, and the newest ``limit`` of each list (by date, then persona_id).

    Args:
        lake: the Lake.
        audience_id: the audience.
        start: first day of the window.
        end: last day of the window.
        limit: at most this many personas per list.

    Returns:
        ``{"joined": n, "left": n, "joined_ids": [(date, persona_id), …], "left_ids": […]}``.
    """
    from pyspark.sql import functions as F

    out: dict[str, Any] = {"joined": 0, "left": 0, "joined_ids": [], "left_ids": []}
    if not lake.exists("audience_changes"):
        return out
    window = lake.read("audience_changes").filter(
        (F.col("audience_id") == F.lit(audience_id)) & F.col("snapshot_date").between(F.lit(start), F.lit(end))
    )
    counts = {r["change"]: r["count"] for r in window.groupBy("change").count().collect()}
    for change, key in (("added", "joined"), ("removed", "left")):
        out[key] = counts.get(change, 0)
        if out[key] and limit > 0:
            rows = (
                window.filter(F.col("change") == F.lit(change))
                .orderBy(F.col("snapshot_date").desc(), F.col("persona_id"))
                .select("snapshot_date", "persona_id")
                .limit(limit)
                .collect()
            )
            out[f"{key}_ids"] = [(r["snapshot_date"], r["persona_id"]) for r in rows]
    return out
