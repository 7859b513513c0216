"""``delta`` delivery: the members and changes tables of a destination."""

from __future__ import annotations

from typing import TYPE_CHECKING

from segengine.audiences.destinations.registry import Destination
from segengine.audiences.destinations.watermarks import Outcome
from segengine.audiences.holdout import without_holdout
from segengine.audiences.registry import Audience, _now

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.lake import Lake


def delta_paths(lake: Lake, dest: Destination) -> tuple[str, str]:
    """The members and changes tables of a ``delta`` destination."""
    base = dest.settings.get("path") or f"{lake.config.warehouse_uri}/destinations/{dest.name}"
    return base.rstrip("/") + "/members", base.rstrip("/") + "/changes"


def _deliver_delta(
    spark: SparkSession, lake: Lake, dest: Destination, aud: Audience, span: tuple[int, int], diff: DataFrame
) -> Outcome:
    """Replace the audience's slice of ``members`` and append its changes (a rerun replaces them)."""
    from pyspark.sql import functions as F

    members_uri, changes_uri = delta_paths(lake, dest)
    current = lake.read("audience_members", version=span[1], partitions={"audience_id": aud.audience_id})
    current = without_holdout(lake, aud.audience_id, current.select("audience_id", "persona_id", "since"))
    if lake.exists(members_uri):
        lake.write(
            current,
            members_uri,
            mode="overwrite",
            partition_by=["audience_id"],
            replace_partitions={"audience_id": aud.audience_id},
            operation="DESTINATION MEMBERS",
        )
    else:
        lake.write(current, members_uri, mode="append", partition_by=["audience_id"], operation="DESTINATION MEMBERS")
    changes = diff.select(
        F.lit(aud.audience_id).alias("audience_id"),
        "persona_id",
        "change",
        F.lit(span[0]).cast("long").alias("from_version"),
        F.lit(span[1]).cast("long").alias("to_version"),
        F.lit(_now()).alias("synced_at"),
    )
    if lake.exists(changes_uri):
        lake.delete_where(
            changes_uri, (F.col("audience_id") == F.lit(aud.audience_id)) & (F.col("to_version") == F.lit(span[1]))
        )
    lake.write(changes, changes_uri, mode="append", partition_by=["audience_id"], operation="DESTINATION CHANGES")
    return Outcome(True)
