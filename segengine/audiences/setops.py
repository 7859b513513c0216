"""Intersect, merge (union) and exclude between audiences: the member frame (saved by :mod:`.derived`)."""

from __future__ import annotations

from functools import reduce
from typing import TYPE_CHECKING

from segengine.errors import AudienceError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


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
