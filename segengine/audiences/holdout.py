"""Holdout groups: a share of an audience kept out of every export and sync.

A member is assigned by a stable hash of (persona id, audience id, salt): the same
member lands in the same group on every refresh and every run, and the split is
reproducible from the three values alone. The share and salt of an audience live in
``audience_holdouts`` (the latest row wins); the group of each member is recorded in
``audience_groups`` when the holdout is set (:func:`segengine.audiences.registry.set_holdout`)
and after every refresh, so a lift report
reads who was held out, not who would be with today's setting.

Changing the holdout of an audience synced to a destination is refused (it is locked,
as every edit is): the destination would otherwise keep members who moved to the
holdout.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from segengine.errors import AudienceError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

    from segengine.lake import Lake

# Hash buckets: a share is honoured to 1/BUCKETS (0.01%).
BUCKETS = 10_000
TREATED, HOLDOUT = "treated", "holdout"


@dataclass(frozen=True)
class Holdout:
    """The holdout of one audience: ``share`` (0-1) of its members, split by ``salt``."""

    audience_id: str
    share: float
    salt: str


def holdouts_schema() -> StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("audience_id", T.StringType()),
            T.StructField("share", T.DoubleType()),
            T.StructField("salt", T.StringType()),
            T.StructField("set_by", T.StringType()),
            T.StructField("set_at", T.TimestampType()),
        ]
    )


def groups_schema() -> StructType:
    from pyspark.sql import types as T

    return T.StructType(
        [
            T.StructField("audience_id", T.StringType()),
            T.StructField("persona_id", T.StringType()),
            T.StructField("group", T.StringType()),
            T.StructField("assigned_on", T.DateType()),
        ]
    )


def assign_groups(members: DataFrame, audience_id: str, share: float, salt: str) -> DataFrame:
    """Add a ``group`` column (``treated`` / ``holdout``) from the stable hash.

    ``xxhash64(persona_id, audience_id, salt)`` modulo :data:`BUCKETS`: the buckets
    below ``share * BUCKETS`` are the holdout. A pure function of the three values.

    Args:
        members: a DataFrame with a persona_id column.
        audience_id: the audience (so one persona is split independently per audience).
        share: the holdout share, 0-1.
        salt: any text; a new salt draws a new split.

    Returns:
        ``members`` with ``group``.
    """
    from pyspark.sql import functions as F

    check_share(share)
    bucket = F.pmod(F.xxhash64(F.col("persona_id"), F.lit(audience_id), F.lit(salt)), F.lit(BUCKETS))
    cut = round(share * BUCKETS)
    return members.withColumn("group", F.when(bucket < F.lit(cut), F.lit(HOLDOUT)).otherwise(F.lit(TREATED)))


def check_share(share: float) -> None:
    if not 0.0 <= share < 1.0:
        raise AudienceError(f"holdout share: expected a share from 0 up to (not including) 1, got {share}")


def get_holdout(lake: Lake, audience_id: str) -> Holdout | None:
    """The audience's holdout, or None (no holdout, or its share set to 0)."""
    if not lake.exists("audience_holdouts"):
        return None
    rows = [r for r in lake.read_rows("audience_holdouts") if r["audience_id"] == audience_id]
    if not rows:
        return None
    latest = max(rows, key=lambda r: r["set_at"])
    if not latest["share"]:
        return None
    return Holdout(audience_id, float(latest["share"]), latest["salt"])


def without_holdout(lake: Lake, audience_id: str, members: DataFrame) -> DataFrame:
    """``members`` less the audience's holdout (unchanged when it has none)."""
    from pyspark.sql import functions as F

    holdout = get_holdout(lake, audience_id)
    if holdout is None:
        return members
    cols = members.columns
    return (
        assign_groups(members, audience_id, holdout.share, holdout.salt)
        .where(F.col("group") == F.lit(TREATED))
        .select(*cols)
    )


def record_groups(spark: SparkSession, lake: Lake, audience_id: str, snapshot_date: dt.date) -> int | None:
    """Record the group of every current member in ``audience_groups`` (one merge).

    A member already recorded keeps its ``assigned_on``; members who left keep their
    row (the lift report selects the members of the campaign date).

    Returns:
        The commit version, or None when the audience has no holdout.
    """
    from pyspark.sql import functions as F

    holdout = get_holdout(lake, audience_id)
    if holdout is None:
        return None
    if not lake.exists("audience_groups"):
        lake.write_rows([], groups_schema(), "audience_groups", operation="CREATE TABLE")
    recorded = lake.read("audience_groups", partitions={"audience_id": audience_id}).select("persona_id", "assigned_on")
    source = (
        assign_groups(
            lake.read("audience_members", partitions={"audience_id": audience_id}).select("persona_id"),
            audience_id,
            holdout.share,
            holdout.salt,
        )
        .join(recorded, "persona_id", "left")
        .select(
            F.lit(audience_id).alias("audience_id"),
            "persona_id",
            "group",
            F.coalesce(F.col("assigned_on"), F.lit(snapshot_date)).alias("assigned_on"),
        )
    )
    return lake.merge(
        source,
        "audience_groups",
        keys=["audience_id", "persona_id"],
        within={"audience_id": audience_id},
        operation="RECORD AUDIENCE GROUPS",
        metadata={"audience_id": audience_id},
    )


def member_groups(lake: Lake, audience_id: str) -> DataFrame:
    """The recorded groups of an audience: persona_id, group, assigned_on."""
    return lake.read("audience_groups", partitions={"audience_id": audience_id}).select(
        "persona_id", "group", "assigned_on"
    )
