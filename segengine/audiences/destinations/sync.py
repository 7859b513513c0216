"""Sync: bring each attached audience's destination up to its current members."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import TYPE_CHECKING, Any

from segengine.audiences.destinations.delta import _deliver_delta
from segengine.audiences.destinations.files import _deliver_files
from segengine.audiences.destinations.registry import (
    FIRST_SYNC,
    Destination,
    _destination_of,
    attached_audiences,
    ensure_tables,
    get_destination,
    list_destinations,
)
from segengine.audiences.destinations.watermarks import _record, _version_readable, member_diff, sync_log
from segengine.audiences.destinations.webhook import _deliver_webhook
from segengine.audiences.registry import Audience
from segengine.errors import AudienceError, SegengineError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

log = logging.getLogger(__name__)


# ---------------------------------------------------------------- sync


def sync_audience(spark: SparkSession, lake: Lake, dest: Destination, aud: Audience) -> list[dict[str, Any]]:
    """Bring one audience's destination up to the current ``audience_members`` version.

    Finishes an unfinished (failed or crashed) version range first, from its first
    unacknowledged batch, then sends the range from the watermark to now.

    Returns:
        One dict per version range attempted: from/to version, status, adds, removes,
        batches_sent, message. The last is ``failed`` when a batch was dead-lettered.
    """
    ensure_tables(lake)
    results: list[dict[str, Any]] = []
    for _ in range(2):  # the unfinished range (if any), then the new one
        log_rows = sync_log(lake, dest.name, aud.audience_id)
        last = log_rows[-1] if log_rows else None
        current = lake.version("audience_members")
        if last is not None and last["status"] != "done":
            span, start, sync_id = (
                (last["from_version"], last["to_version"]),
                last["batches_sent"] or 0,
                last["sync_id"],
            )
        else:
            start_from = FIRST_SYNC if last is None else last["to_version"]
            if start_from == current:
                break
            span, start, sync_id = (start_from, current), 0, uuid.uuid4().hex[:12]
            _record(lake, dest.name, aud.audience_id, sync_id, span, status="pending")
        try:
            diff = member_diff(lake, aud.audience_id, *span).localCheckpoint(eager=True)
        except Exception as exc:
            if span[0] != FIRST_SYNC and not _version_readable(lake, aud.audience_id, span[0]):
                raise SegengineError(
                    f"destination {dest.name}: audience {aud.name!r} was last synced at version {span[0]} of "
                    f"audience_members, which is no longer readable (files vacuumed or commit past the log's "
                    f"retention): the changes since cannot be computed, and a full resend is not built yet"
                ) from exc
            raise
        counts = {r["change"]: r["count"] for r in diff.groupBy("change").count().collect()}
        adds, removes = counts.get("join", 0), counts.get("leave", 0)
        if dest.kind == "webhook":
            outcome = _deliver_webhook(lake, dest, aud, span, diff, start, sync_id)
        elif dest.kind == "files":
            outcome, _ = _deliver_files(spark, lake, dest, aud, span, diff)
        else:
            outcome = _deliver_delta(spark, lake, dest, aud, span, diff)
        status = "done" if outcome.done else "failed"
        _record(
            lake,
            dest.name,
            aud.audience_id,
            sync_id,
            span,
            status=status,
            batches_sent=outcome.batches_sent,
            adds=adds,
            removes=removes,
            message=outcome.message,
        )
        results.append(
            {
                "audience": aud.name,
                "destination": dest.name,
                "from_version": None if span[0] == FIRST_SYNC else span[0],
                "to_version": span[1],
                "status": status,
                "adds": adds,
                "removes": removes,
                "batches_sent": outcome.batches_sent,
                "message": outcome.message,
            }
        )
        if not outcome.done:
            break
    return results


def sync_destinations(
    spark: SparkSession,
    lake: Lake,
    destination: str | None = None,
    audiences: list[str] | None = None,
) -> dict[str, Any]:
    """Sync every attached audience (or those of one destination, or named ones).

    A failing audience does not stop the others; the summary lists every range sent.

    Returns:
        ``{"synced": [per range], "failed": [audience names], "audiences": n}``.
    """
    if destination is not None:
        get_destination(lake, destination)  # an unknown one is an error, with a "did you mean"
    if not lake.exists("destinations"):
        return {"synced": [], "failed": [], "audiences": 0}
    dests = {d.name: d for d in list_destinations(lake)}
    auds = attached_audiences(spark, lake, destination)
    if audiences:
        auds = [a for a in auds if a.name in audiences or a.audience_id in audiences]
    synced: list[dict[str, Any]] = []
    failed: list[str] = []
    for aud in sorted(auds, key=lambda a: a.name):
        name = _destination_of(aud)
        if name not in dests:
            failed.append(aud.name)
            synced.append(
                {"audience": aud.name, "destination": name, "status": "failed", "message": "no such destination"}
            )
            continue
        try:
            got = sync_audience(spark, lake, dests[name], aud)
        except Exception as exc:  # noqa: BLE001 - one destination down must not stop the others
            log.exception("sync of %s to %s failed", aud.name, name)
            got = [
                {
                    "audience": aud.name,
                    "destination": name,
                    "status": "failed",
                    "message": f"{type(exc).__name__}: {exc}",
                }
            ]
        synced.extend(got)
        if got and got[-1]["status"] != "done":
            failed.append(aud.name)
    return {"synced": synced, "failed": failed, "audiences": len(auds)}


def sync_step(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """The daily pipeline's ``sync_destinations`` step: fails (after syncing the rest) if any audience did."""
    summary = sync_destinations(spark, lake)
    if summary["failed"]:
        raise AudienceError(
            f"{len(summary['failed'])} of {summary['audiences']} audiences did not reach their destination: "
            + ", ".join(summary["failed"])
            + " (see `segengine destination dead-letters`; the next sync resumes where they stopped)"
        )
    return {**summary, "rows": sum(int(s.get("adds") or 0) + int(s.get("removes") or 0) for s in summary["synced"])}
