"""Audience overlap: pairwise member counts, Jaccard and "share of A in B" for a set of audiences.

Exact mode reads the memberships once: each persona's audiences (of those selected)
become one sorted array, every ordered pair of it is exploded, and one aggregation
counts the members of every pair; the diagonal is each audience's size. The work is
the sum over personas of the square of the number of selected audiences they are in,
in one Spark job, not one job per pair.

Approximate mode builds one HyperLogLog sketch per audience (Spark's
``hll_sketch_agg``, Apache DataSketches) in one pass, then estimates each intersection
by inclusion-exclusion on the sketches' union (``|A & B| = |A| + |B| - |A | B|``),
computed on the N sketches only. Its error grows for small overlaps of large
audiences, as inclusion-exclusion does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from segengine.audiences.registry import get_audience
from segengine.errors import AudienceError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.lake import Lake

MODES = ("exact", "approx")


def overlap_counts(members: DataFrame) -> DataFrame:
    """Members of every ordered pair of audiences (the diagonal: each one's size), exactly, in one pass.

    Args:
        members: audience_id, persona_id (duplicates are fine).

    Returns:
        a, b, both: one row per pair that shares at least one member (a == b included).
    """
    from pyspark.sql import functions as F

    per_persona = (
        members.select("audience_id", "persona_id")
        .groupBy("persona_id")
        .agg(F.array_sort(F.collect_set("audience_id")).alias("auds"))
    )
    pairs = per_persona.select(
        F.explode(
            F.flatten(
                F.transform("auds", lambda x: F.transform("auds", lambda y: F.struct(x.alias("a"), y.alias("b"))))
            )
        ).alias("p")
    )
    return pairs.groupBy(F.col("p.a").alias("a"), F.col("p.b").alias("b")).agg(F.count("*").alias("both"))


def overlap_counts_approx(members: DataFrame, lg_k: int = 12) -> DataFrame:
    """Like :func:`overlap_counts`, estimated from one HyperLogLog sketch per audience.

    Args:
        lg_k: log2 of the sketch's buckets (4-21); 12 gives about 1.6% error on a size.

    Returns:
        a, b, both (estimates, rounded; negative estimates clipped to 0).
    """
    from pyspark.sql import functions as F

    sketches = members.groupBy("audience_id").agg(F.hll_sketch_agg("persona_id", lg_k).alias("s"))
    left = sketches.select(F.col("audience_id").alias("a"), F.col("s").alias("sa"))
    right = sketches.select(F.col("audience_id").alias("b"), F.col("s").alias("sb"))
    union = F.hll_sketch_estimate(F.hll_union("sa", "sb", True))
    both = F.hll_sketch_estimate("sa") + F.hll_sketch_estimate("sb") - union
    return left.crossJoin(right).select(
        "a",
        "b",
        F.when(F.col("a") == F.col("b"), F.hll_sketch_estimate("sa"))
        .otherwise(F.greatest(both, F.lit(0)))
        .alias("both"),
    )


def overlap_table(counts: list[dict[str, Any]], names: dict[str, str]) -> list[dict[str, Any]]:
    """Every ordered pair of the audiences in ``names``, with Jaccard and the shares (pure).

    Args:
        counts: rows of :func:`overlap_counts` (a, b, both).
        names: audience_id -> name, in the order wanted.

    Returns:
        One dict per ordered pair: a, b (names), size_a, size_b, both, jaccard,
        share_a_in_b (the share of A's members who are also in B).
    """
    both = {(r["a"], r["b"]): int(r["both"]) for r in counts}
    out = []
    for a, name_a in names.items():
        size_a = both.get((a, a), 0)
        for b, name_b in names.items():
            size_b = both.get((b, b), 0)
            n = size_a if a == b else both.get((a, b), 0)
            union = size_a + size_b - n
            out.append(
                {
                    "a": name_a,
                    "b": name_b,
                    "size_a": size_a,
                    "size_b": size_b,
                    "both": n,
                    "jaccard": n / union if union else None,
                    "share_a_in_b": n / size_a if size_a else None,
                }
            )
    return out


def audience_overlap(
    spark: SparkSession,
    lake: Lake,
    audiences: list[str],
    user: str | None = None,
    mode: str = "exact",
    lg_k: int = 12,
) -> list[dict[str, Any]]:
    """Pairwise overlap of the current members of ``audiences`` (ids or names ``user`` may see).

    Returns:
        :func:`overlap_table`'s rows, in the order the audiences were given.
    """
    from pyspark.sql import functions as F

    if mode not in MODES:
        raise AudienceError(f"overlap mode must be exact or approx, got {mode!r}")
    if len(audiences) < 2:
        raise AudienceError("overlap needs at least two audiences")
    auds = [get_audience(spark, lake, a, user) for a in audiences]
    names = {a.audience_id: a.name for a in auds}
    members = lake.read("audience_members", partitions={"audience_id": list(names)}).where(
        F.col("audience_id").isin(list(names))
    )
    counts = overlap_counts(members) if mode == "exact" else overlap_counts_approx(members, lg_k)
    return overlap_table([r.asDict() for r in counts.collect()], names)  # at most N x N rows
