"""Refresh dynamic audiences for a snapshot date (one audience, or all of them).

``refresh_all`` shares the work: the rule compiler's temp views are registered once
on the (cached) feature partition, and an audience used as an operand of a set
operation or top-N is computed once and reused by its dependents.

Two guards keep a refresh from acting on bad inputs, which a synced destination would
then act on in turn:

* a date without a ``customer_features`` partition is refused before anything is read
  or written (:func:`~segengine.features.snapshots.require_feature_partition`);
* an audience whose refresh would remove more than ``audiences.max_removed_share`` of
  its current members is refused, with nothing written for it, unless
  ``allow_large_change`` (``--allow-large-change``). An empty audience (its first
  refresh) is never refused. ``refresh_all`` still refreshes the other audiences and
  fails at the end, naming the refused ones.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from segengine.audiences.holdout import record_groups
from segengine.audiences.membership import (
    Evaluator,
    RulesEvaluator,
    apply_membership,
    compute_membership,
    record_refresh,
)
from segengine.audiences.registry import (
    Audience,
    _rows,
    _workspace,
    ensure_tables,
    get_audience,
    stored_members,
    write_sync_drop,
)
from segengine.errors import AudienceError, ConfigError, LargeAudienceChange, UnknownAudience, did_you_mean
from segengine.features.snapshots import require_feature_partition

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

log = logging.getLogger(__name__)


def _pct(share: float) -> str:
    return f"{share * 100:.3g}%"


def _max_removed_share(config: Config) -> float:
    share = config.audiences.max_removed_share
    if not 0.0 <= share <= 1.0:
        raise ConfigError(f"audiences.max_removed_share: expected a share between 0 and 1, got {share}")
    return share


def check_removals(
    lake: Lake, aud: Audience, new_members: DataFrame, snapshot_date: dt.date, max_share: float
) -> DataFrame:
    """Refuse a membership that would remove more than ``max_share`` of the current members.

    The new membership is materialised once (``localCheckpoint``), so the set checked
    is exactly the set the refresh then writes. Two counts reach the driver, no rows.

    Args:
        lake: the Lake.
        aud: the audience being refreshed.
        new_members: its freshly computed members (a persona_id column).
        snapshot_date: the refresh date (for the message).
        max_share: the share of current members that may leave (0-1).

    Returns:
        The members to apply (materialised when the audience has members now).

    Raises:
        LargeAudienceChange: naming the audience, its size, the members that would
            leave and their share.
    """
    from pyspark.sql import functions as F

    current = stored_members(lake, aud.audience_id).select("persona_id")
    size = current.count()
    if size == 0:
        return new_members  # first refresh (or an emptied audience): nothing can leave
    new_members = (
        new_members.select("persona_id").where(F.col("persona_id").isNotNull()).distinct().localCheckpoint(eager=True)
    )
    leaving = current.join(new_members, "persona_id", "left_anti").count()
    share = leaving / size
    if share > max_share:
        blocked = {"audience": aud.name, "audience_id": aud.audience_id, "size": size, "removed": leaving}
        raise LargeAudienceChange(
            f"audience {aud.name!r}: the refresh for {snapshot_date} would remove {leaving} of its {size} members "
            f"({_pct(share)}), more than audiences.max_removed_share={_pct(max_share)}; nothing was written. "
            f"Check the inputs of {snapshot_date}, then rerun with --allow-large-change if the change is real",
            blocked=[{**blocked, "share": round(share, 4)}],
        )
    return new_members


def _refresh_one(
    spark: SparkSession,
    lake: Lake,
    aud: Audience,
    snapshot_date: dt.date,
    evaluator: Evaluator,
    memo: dict[str, DataFrame],
    max_share: float | None = None,
) -> dict[str, Any]:
    """Refresh one audience; ``max_share`` None lets any change through."""
    started = time.time()
    new = compute_membership(spark, lake, aud, snapshot_date, evaluator, memo)
    if max_share is not None:
        new = check_removals(lake, aud, new, snapshot_date, max_share)
    stats = apply_membership(spark, lake, aud.audience_id, new, snapshot_date)
    record_groups(spark, lake, aud.audience_id, snapshot_date)  # nothing when it has no holdout
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


def _guard_share(config: Config, allow_large_change: bool | None) -> float | None:
    """The share of members a refresh may remove, or None when any change is allowed."""
    allow = config.audiences.allow_large_change if allow_large_change is None else allow_large_change
    return None if allow else _max_removed_share(config)


def refresh_audience(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    audience: str,
    snapshot_date: dt.date,
    user: str | None = None,
    evaluator: Evaluator | None = None,
    allow_large_change: bool | None = None,
) -> dict[str, Any]:
    """Recompute one dynamic audience for ``snapshot_date`` and apply it as a merge.

    Idempotent for a date: a rerun with the same inputs adds and removes nothing.

    Args:
        allow_large_change: let the refresh remove any share of the members (default
            ``audiences.allow_large_change``).

    Returns:
        {"audience_id", "name", "size", "added", "removed", "seconds", ...}.

    Raises:
        FeatureSnapshotMissing: no ``customer_features`` partition for the date.
        LargeAudienceChange: more than ``audiences.max_removed_share`` of the members
            would leave; nothing was written.
    """
    require_feature_partition(lake, snapshot_date)
    max_share = _guard_share(config, allow_large_change)
    ensure_tables(spark, lake)
    aud = get_audience(spark, lake, audience, user)
    if aud.kind != "dynamic":
        raise AudienceError(f"audience {aud.name!r} is static: its membership is frozen and cannot be refreshed")
    evaluator = evaluator or RulesEvaluator()
    stats = _refresh_one(spark, lake, aud, snapshot_date, evaluator, {}, max_share)
    record_refresh(spark, lake, [stats])
    return stats


def _dependencies(aud: Audience) -> list[str]:
    defn = aud.definition_dict
    if aud.source == "set_operation":
        return list(defn.get("audiences") or [])
    if aud.source == "top_n":
        return [defn["from"]]
    return []


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [""])[0]


def _check_names(only: list[str], every: list[Audience]) -> None:
    """Every name asked for is a dynamic audience: a typo refreshed nothing and exited 0."""
    for name in only:
        found = [a for a in every if name in (a.audience_id, a.name)]
        if not found:
            dynamic = [a.name for a in every if a.kind == "dynamic"]
            raise UnknownAudience(f"no audience {name!r}{did_you_mean(name, dynamic)}", name, dynamic)
        if all(a.kind != "dynamic" for a in found):
            raise AudienceError(f"audience {name!r} is static: its membership is frozen and cannot be refreshed")


def refresh_all(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    evaluator: Evaluator | None = None,
    only: list[str] | None = None,
    allow_large_change: bool | None = None,
) -> dict[str, Any]:
    """Refresh every (non-deleted) dynamic audience of the workspace for a date.

    Operands are refreshed before the audiences built on them. A failing or blocked
    audience is reported and the others still refresh (its dependents see the
    membership it keeps); the job fails at the end if any was.

    Args:
        only: restrict to these audience ids or names.
        allow_large_change: let refreshes remove any share of an audience's members
            (default ``audiences.allow_large_change``).

    Returns:
        {"snapshot_date", "audiences": [per audience size/added/removed/seconds],
        "blocked": [], "failed": []}.

    Raises:
        FeatureSnapshotMissing: no ``customer_features`` partition for the date;
            nothing was read or written.
        LargeAudienceChange: at the end, when any audience was blocked (``blocked``
            names them, ``summary`` is what was done for the others).
        AudienceError: at the end, when any audience failed (``summary`` as above).
    """
    require_feature_partition(lake, snapshot_date)
    max_share = _guard_share(config, allow_large_change)
    every = _rows(spark, lake, _workspace(lake, None))
    auds = [a for a in every if a.kind == "dynamic"]
    if only:
        _check_names(only, every)
        auds = [a for a in auds if a.audience_id in only or a.name in only]
    ensure_tables(spark, lake)
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
    blocked: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    if order:
        evaluator.prepare(spark, lake, snapshot_date)
    memo: dict[str, DataFrame] = {}
    for aud in order:
        try:
            results.append(_refresh_one(spark, lake, aud, snapshot_date, evaluator, memo, max_share))
            log.info("refreshed audience %s: %s", aud.name, results[-1])
            continue
        except LargeAudienceChange as exc:
            log.warning("%s", exc)
            blocked.extend(exc.blocked)
        except Exception as exc:  # noqa: BLE001 - one bad audience must not stop the others
            log.exception("audience %s failed", aud.name)
            failed.append({"audience": aud.name, "error": f"{type(exc).__name__}: {_first_line(exc)}"})
        # Not refreshed: its dependents use the membership it keeps, not the one refused.
        memo[aud.audience_id] = stored_members(lake, aud.audience_id).select("persona_id")
    record_refresh(spark, lake, results)
    summary = {
        "snapshot_date": snapshot_date.isoformat(),
        "audiences": [
            {k: r[k] for k in ("audience_id", "name", "size", "added", "removed", "seconds")} for r in results
        ],
        "blocked": blocked,
        "failed": failed,
    }
    problems = []
    if blocked:
        problems.append(
            f"{len(blocked)} of {len(order)} audiences blocked for {snapshot_date}: "
            + ", ".join(
                f"{b['audience']} ({b['removed']} of {b['size']} members would leave, {_pct(b['share'])})"
                for b in blocked
            )
            + f"; that is more than audiences.max_removed_share={_pct(max_share or 0.0)} and nothing was written "
            "for them. Check the inputs, then rerun with --allow-large-change if the changes are real"
        )
    if failed:
        problems.append(
            f"{len(failed)} of {len(order)} audiences failed to refresh for {snapshot_date}: "
            + "; ".join(f"{f['audience']}: {f['error']}" for f in failed)
        )
    if blocked:
        raise LargeAudienceChange(". ".join(problems), blocked=blocked, summary=summary)
    if failed:
        error = AudienceError(problems[0])
        error.summary = summary  # type: ignore[attr-defined]
        raise error
    return summary
