"""Intersect, merge (union) and exclude between audiences, saved as new audiences."""

from __future__ import annotations

import datetime as dt
from functools import reduce
from typing import TYPE_CHECKING

from segengine.audiences.registry import get_audience
from segengine.errors import AudienceError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

OPERATIONS = ("intersect", "merge", "exclude")


def combine_frames(op: str, frames: list[DataFrame]) -> DataFrame:
    """Combine member frames (each with persona_id).

    Args:
        op: ``intersect`` (in every frame), ``merge`` (in any frame) or ``exclude``
            (in the first frame and in none of the others).
        frames: at least two DataFrames with a persona_id column.

    Returns:
        DataFrame(persona_id), distinct.
    """
    if op not in OPERATIONS:
        raise AudienceError(f"unknown set operation {op!r}: expected one of {', '.join(OPERATIONS)}")
    if len(frames) < 2:
        raise AudienceError(f"{op} needs at least two audiences, got {len(frames)}")
    ids = [f.select("persona_id").distinct() for f in frames]
    if op == "merge":
        return reduce(lambda a, b: a.unionByName(b), ids).distinct()
    if op == "intersect":
        return reduce(lambda a, b: a.join(b, "persona_id", "left_semi"), ids)
    return reduce(lambda a, b: a.join(b, "persona_id", "left_anti"), ids)


def combine_audiences(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    op: str,
    audiences: list[str],
    name: str,
    owner: str,
    kind: str = "static",
    visibility: str = "shared",
    snapshot_date: dt.date | None = None,
    evaluator=None,
) -> str:
    """Save ``op`` over ``audiences`` (ids or names ``owner`` may use) as a new audience.

    A static result is materialised now from the operands' current membership; a
    dynamic one stores ``{"op", "audiences": [ids]}`` and is recomputed on refresh.

    Returns:
        The new audience_id.
    """
    from segengine.audiences.membership import create_audience

    if op not in OPERATIONS:
        raise AudienceError(f"unknown set operation {op!r}: expected one of {', '.join(OPERATIONS)}")
    ids = [get_audience(spark, lake, a, owner).audience_id for a in audiences]
    definition = {"op": op, "audiences": ids}
    members = None
    if kind == "static":
        from segengine.audiences.registry import stored_members

        members = combine_frames(op, [stored_members(lake, i) for i in ids])
    return create_audience(
        spark,
        lake,
        config,
        name,
        owner,
        kind,
        "set_operation",
        definition,
        members=members,
        visibility=visibility,
        snapshot_date=snapshot_date,
        evaluator=evaluator,
    )
