"""Refresh dynamic audiences for a snapshot date (one audience, or all of them).

``refresh_all`` shares the work: the rule compiler's temp views are registered once
on the (cached) feature partition, and an audience used as an operand of a set
operation or top-N is computed once and reused by its dependents.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from segengine.audiences.membership import (
    Evaluator,
    RulesEvaluator,
    apply_membership,
    compute_membership,
    record_refresh,
)
from segengine.audiences.registry import Audience, _rows, _workspace, ensure_tables, get_audience, write_sync_drop
from segengine.errors import AudienceError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

log = logging.getLogger(__name__)


def _refresh_one(
    spark: SparkSession,
    lake: Lake,
    aud: Audience,
    snapshot_date: dt.date,
    evaluator: Evaluator,
    memo: dict[str, DataFrame],
) -> dict[str, Any]:
    started = time.time()
    new = compute_membership(spark, lake, aud, snapshot_date, evaluator, memo)
    stats = apply_membership(spark, lake, aud.audience_id, new, snapshot_date)
    if aud.synced_to:
        write_sync_drop(spark, lake, aud)
    # Later dependents read the committed membership instead of re-evaluating the plan.
    memo[aud.audience_id] = lake.read(
        "audience_members", version=stats["version"], partitions={"audience_id": aud.audience_id}
    ).select("persona_id")
    stats.update(
        audience_id=aud.audience_id,
        name=aud.name,
        snapshot_date=snapshot_date,
        seconds=round(time.time() - started, 3),
    )
    return stats


def refresh_audience(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    audience: str,
    snapshot_date: dt.date,
    user: str | None = None,
    evaluator: Evaluator | None = None,
) -> dict[str, Any]:
    """Recompute one dynamic audience for ``snapshot_date`` and apply it as a merge.

    Idempotent for a date: a rerun with the same inputs adds and removes nothing.

    Returns:
        {"audience_id", "name", "size", "added", "removed", "seconds", ...}.
    """
    ensure_tables(spark, lake)
    aud = get_audience(spark, lake, audience, user)
    if aud.kind != "dynamic":
        raise AudienceError(f"audience {aud.name!r} is static: its membership is frozen and cannot be refreshed")
    evaluator = evaluator or RulesEvaluator()
    stats = _refresh_one(spark, lake, aud, snapshot_date, evaluator, {})
    record_refresh(spark, lake, [stats])
    return stats


def _dependencies(aud: Audience) -> list[str]:
    defn = aud.definition_dict
    if aud.source == "set_operation":
        return list(defn.get("audiences") or [])
    if aud.source == "top_n":
        return [defn["from"]]
    return []


def refresh_all(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    evaluator: Evaluator | None = None,
    only: list[str] | None = None,
) -> dict[str, Any]:
    """Refresh every (non-deleted) dynamic audience of the workspace for a date.

    Operands are refreshed before the audiences built on them. A failing audience
    is reported and the others still refresh; the job fails at the end if any did.

    Args:
        only: restrict to these audience ids or names.

    Returns:
        {"snapshot_date", "audiences": [per audience size/added/removed/seconds],
        "failed": [{"audience", "error"}]}.
    """
    ensure_tables(spark, lake)
    auds = [a for a in _rows(spark, lake, _workspace(lake, None)) if a.kind == "dynamic"]
    if only:
        auds = [a for a in auds if a.audience_id in only or a.name in only]
    by_id = {a.audience_id: a for a in auds}
    order: list[Audience] = []
    seen: set[str] = set()

    def visit(a: Audience, path: tuple[str, ...]) -> None:
        if a.audience_id in seen:
            return
        if a.audience_id in path:
            raise AudienceError(f"audience {a.name!r} depends on itself")
        for dep in _dependencies(a):
            if dep in by_id:
                visit(by_id[dep], (*path, a.audience_id))
        seen.add(a.audience_id)
        order.append(a)

    for a in sorted(auds, key=lambda x: x.name):
        visit(a, ())
    evaluator = evaluator or RulesEvaluator()
    results: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    if order:
        evaluator.prepare(spark, lake, snapshot_date)
    memo: dict[str, DataFrame] = {}
    for aud in order:
        try:
            results.append(_refresh_one(spark, lake, aud, snapshot_date, evaluator, memo))
            log.info("refreshed audience %s: %s", aud.name, results[-1])
        except Exception as exc:  # noqa: BLE001 - one bad audience must not stop the others
            log.exception("audience %s failed", aud.name)
            failed.append({"audience": aud.name, "error": f"{type(exc).__name__}: {exc}"})
    record_refresh(spark, lake, results)
    summary = {
        "snapshot_date": snapshot_date.isoformat(),
        "audiences": [
            {k: r[k] for k in ("audience_id", "name", "size", "added", "removed", "seconds")} for r in results
        ],
        "failed": failed,
    }
    if failed:
        raise AudienceError(
            f"{len(failed)} of {len(order)} audiences failed to refresh for {snapshot_date}: "
            + "; ".join(f"{f['audience']}: {f['error']}" for f in failed)
        )
    return summary


def run_refresh_job(ctx: Any) -> dict[str, Any]:
    """``jobs/refresh_audiences.py``: refresh all dynamic audiences for ``--date``."""
    only = getattr(ctx.args, "audience", None) or None
    return refresh_all(ctx.spark, ctx.lake, ctx.config, ctx.snapshot_date, only=only)
