"""The sync log: watermarks, the versions a sync still needs, member diffs, batch keys, outcomes."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from segengine.audiences.destinations.registry import FIRST_SYNC, _destination_of, attached_audiences, syncs_schema
from segengine.audiences.holdout import without_holdout
from segengine.audiences.registry import _now

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.lake import Lake

# ---------------------------------------------------------------- watermarks and diffs


def sync_log(lake: Lake, destination: str, audience_id: str) -> list[dict[str, Any]]:
    """The sync rows of one (destination, audience), oldest first."""
    if not lake.exists("destination_syncs"):
        return []
    rows = [
        r
        for r in lake.read_rows("destination_syncs")
        if r["destination"] == destination and r["audience_id"] == audience_id
    ]
    return sorted(rows, key=lambda r: r["seq"])


def watermark(lake: Lake, destination: str, audience_id: str) -> int | None:
    """The ``audience_members`` version last delivered to the destination, or None (never)."""
    done = [r for r in sync_log(lake, destination, audience_id) if r["status"] == "done"]
    return done[-1]["to_version"] if done else None


def versions_to_keep(spark: SparkSession, lake: Lake) -> dict[str, int]:
    """``{"audience_members": v}``: the oldest version a sync of an attached audience still
    diffs from (its watermark, or the start of its unfinished range); {} when none does.

    ``maintain(keep_versions=...)`` lengthens VACUUM's retention of that table so the
    version stays readable and the next sync can still compute its changes.
    """
    if not lake.exists("destination_syncs"):
        return {}
    attached = {(_destination_of(a), a.audience_id) for a in attached_audiences(spark, lake)}
    last: dict[tuple[str, str], dict[str, Any]] = {}
    for row in sorted(lake.read_rows("destination_syncs"), key=lambda r: r["seq"]):
        last[(row["destination"], row["audience_id"])] = row
    needed = [
        row["to_version"] if row["status"] == "done" else row["from_version"]
        for key, row in last.items()
        if key in attached
    ]
    needed = [v for v in needed if v is not None and v != FIRST_SYNC]
    return {"audience_members": min(needed)} if needed else {}


def _version_readable(lake: Lake, audience_id: str, version: int) -> bool:
    """False when ``version`` of the audience's members is gone (past the log, or files vacuumed).

    Only a local warehouse can be checked file by file; elsewhere this says True.
    """
    try:
        files = lake.files("audience_members", version=version, partitions={"audience_id": audience_id})
    except Exception:  # noqa: BLE001 - any failure to load that version means it is gone
        return False
    root = lake.uri("audience_members")
    if "://" in root and not root.startswith("file:"):
        return True
    root = root.removeprefix("file://").removeprefix("file:")
    return all(os.path.exists(os.path.join(root, unquote(f["path"]))) for f in files)


def _record(lake: Lake, dest: str, audience_id: str, sync_id: str, span: tuple[int, int], **fields: Any) -> None:
    row = {
        "destination": dest,
        "audience_id": audience_id,
        "sync_id": sync_id,
        "from_version": span[0],
        "to_version": span[1],
        "status": fields["status"],
        "batches_sent": fields.get("batches_sent", 0),
        "adds": fields.get("adds"),
        "removes": fields.get("removes"),
        "recorded_at": _now(),
        "seq": time.time_ns(),
        "message": fields.get("message", ""),
    }
    lake.write_rows([row], syncs_schema(), "destination_syncs", operation="DESTINATION SYNC")


def member_diff(lake: Lake, audience_id: str, from_version: int, to_version: int) -> DataFrame:
    """Joins and leaves of an audience between two ``audience_members`` versions, holdout left out.

    Args:
        from_version: :data:`FIRST_SYNC` for a full snapshot (every member a join).
        to_version: the version to reach.

    Returns:
        persona_id, since, change (``join`` / ``leave``): one row per persona.
    """
    from pyspark.sql import functions as F

    def at(version: int) -> DataFrame:
        df = lake.read("audience_members", version=version, partitions={"audience_id": audience_id})
        return without_holdout(lake, audience_id, df.select("persona_id", "since"))

    after = at(to_version)
    if from_version == FIRST_SYNC:
        return after.withColumn("change", F.lit("join"))
    before = at(from_version)
    joins = after.join(before.select("persona_id"), "persona_id", "left_anti").withColumn("change", F.lit("join"))
    leaves = before.join(after.select("persona_id"), "persona_id", "left_anti").withColumn("change", F.lit("leave"))
    return joins.unionByName(leaves)


def batch_key(destination: str, audience_id: str, from_version: int, to_version: int, batch: int) -> str:
    """The idempotency key of one batch: the same on every retry and every resumed sync."""
    text = f"{destination}|{audience_id}|{from_version}|{to_version}|{batch}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass
class Outcome:
    """What one delivery of a version range achieved."""

    done: bool
    batches_sent: int = 0
    message: str = ""
