"""Job adapters: a :class:`~segengine.pipeline.entry.JobContext` in, one domain call out.

Each ``jobs/*.py`` script hands one of these to :func:`segengine.pipeline.entry.job_main`,
which builds the context (config, session, lake, ``--date``, the parsed arguments). The
adapters read the job's own arguments from ``ctx.args`` and call the capability's
function with plain values, so the domain modules (features, models, lake) know nothing
of job contexts or argparse.
"""

from __future__ import annotations

import argparse
from typing import Any

from segengine.audiences.destinations import sync_destinations, versions_to_keep
from segengine.audiences.refresh import refresh_all
from segengine.errors import AudienceError
from segengine.features.compute import compute_features
from segengine.generate import generate_raw
from segengine.identity import build_identity_map
from segengine.ingest import default_raw_dir, ingest
from segengine.insights import build_insights
from segengine.insights.report import default_report_path, render_report
from segengine.lake.maintenance import maintain
from segengine.models.clv import score_clv, train_clv
from segengine.models.lookalike import expand_audience
from segengine.models.propensity import train_propensity
from segengine.models.recommend import score_recommendations, train_recommendations
from segengine.models.segments import score_segments, train_segments
from segengine.pipeline.entry import JobContext


def _force_promote(ctx: JobContext) -> bool:
    return bool(getattr(ctx.args, "force_promote", False))


def run_features_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/compute_features.py``: compute features for ``ctx.snapshot_date``.

    ``--force`` writes the snapshot even before the first order line or event.
    """
    config = ctx.config
    if getattr(ctx.args, "force", False):
        config = config.replace(features=config.features.replace(allow_before_first_data=True))
    return compute_features(ctx.spark, ctx.lake, config, ctx.date)


def run_identity_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/build_identity.py``: stitch personas into people and write ``identity_map`` for ``--date``."""
    return build_identity_map(ctx.spark, ctx.lake, ctx.config, ctx.date)


def run_train_segments_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/train_segments.py``: train both segment models for ``ctx.snapshot_date``."""
    return train_segments(ctx.spark, ctx.lake, ctx.config, ctx.date, force_promote=_force_promote(ctx))


def run_train_clv_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/train_clv.py``: train, evaluate and register the CLV model for ``ctx.snapshot_date``."""
    return train_clv(ctx.spark, ctx.lake, ctx.config, ctx.date, force_promote=_force_promote(ctx))


def run_train_propensity_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/train_propensity.py``: train, evaluate, calibrate and register both propensity models for ``--date``."""
    return train_propensity(ctx.spark, ctx.lake, ctx.config, ctx.date, force_promote=_force_promote(ctx))


def run_train_recommendations_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/train_recommendations.py``: train the recommender for ``--date``."""
    return train_recommendations(ctx.spark, ctx.lake, ctx.config, ctx.date, force_promote=_force_promote(ctx))


def run_score_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/score.py``: write the model columns of ``ctx.snapshot_date``'s feature partition.

    ``--model segments|clv|all`` (default all: segments, then CLV; each one partition
    overwrite, so a rerun replaces).
    """
    which = getattr(ctx.args, "model", "all") or "all"
    out: dict[str, Any] = {}
    if which in ("segments", "all"):
        out["segments"] = score_segments(ctx.spark, ctx.lake, ctx.config, ctx.date)
    if which in ("clv", "all"):
        out["clv"] = score_clv(ctx.spark, ctx.lake, ctx.config, ctx.date)
    return out


def run_recommend_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/recommend.py``: score recommendations for ``--date``."""
    return score_recommendations(ctx.spark, ctx.lake, ctx.config, ctx.date)


def add_lookalike_args(parser: argparse.ArgumentParser) -> None:
    """``jobs/lookalike.py`` options: --seed, --size, --by, --name, --owner."""
    parser.add_argument("--seed", required=True, help="Seed audience id or name")
    parser.add_argument("--size", required=True, type=int, help="Exactly how many lookalikes")
    parser.add_argument("--by", required=True, help="Comma-separated numeric catalog attributes")
    parser.add_argument("--name", default=None, help="Name of the new audience")
    parser.add_argument("--owner", default="segengine", help="Owner of the new audience")


def run_lookalike_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/lookalike.py``: expand ``--seed`` and save the lookalike audience."""
    a = ctx.args
    by = [b for b in a.by.split(",") if b.strip()]
    return expand_audience(ctx.spark, ctx.lake, ctx.config, a.seed, a.size, by, ctx.date, name=a.name, owner=a.owner)


def run_maintenance_job(ctx: JobContext) -> list[dict[str, Any]]:
    """``jobs/maintain.py``: :func:`~segengine.lake.maintenance.maintain` with the job's arguments; one line per table."""
    args = ctx.args
    outcomes = maintain(
        ctx.lake,
        tables=args.table or None,
        retention_hours=args.retention_hours,
        force=args.force,
        zorder=args.zorder,
        dry_run=args.dry_run,
        keep_versions=versions_to_keep(ctx.spark, ctx.lake),
    )
    for outcome in outcomes:
        print(outcome.line())
    return [o.as_dict() for o in outcomes]


def add_ingest_args(parser: argparse.ArgumentParser) -> None:
    """``--raw-dir``: the landing directory (default ``ingest.raw_dir`` or ``<warehouse>/raw``)."""
    parser.add_argument("--raw-dir", default=None, help="Landing directory with one sub-directory per table")


def run_ingest_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/ingest.py``: ingest every table's new raw files; returns the counts."""
    return ingest(ctx.spark, ctx.lake, ctx.config, ctx.args.raw_dir)


def add_generate_args(parser: argparse.ArgumentParser) -> None:
    """``--personas``, ``--seed``, ``--malformed-share``, ``--out``, ``--identity-share``."""
    parser.add_argument("--personas", type=int, default=None, help="Number of personas (default generator.personas)")
    parser.add_argument("--seed", type=int, default=None, help="Random seed (default generator.seed)")
    parser.add_argument("--malformed-share", type=float, default=None, help="Share of damaged rows per table")
    parser.add_argument("--out", default=None, help="Output directory (default the ingest landing directory)")
    parser.add_argument(
        "--identity-share",
        type=float,
        default=0.0,
        help="Share of people spread over several personas, with planted ground truth (default 0: none)",
    )


def run_generate_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/generate.py``: write the raw sample files; returns row counts, damaged-row counts and throughput."""
    a = ctx.args
    return generate_raw(
        ctx.spark,
        ctx.config,
        a.out or default_raw_dir(ctx.config),
        a.personas,
        a.seed,
        a.malformed_share,
        identity_share=getattr(a, "identity_share", 0.0) or 0.0,
    )


def run_sync_destinations_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/sync_destinations.py``: send each synced audience's joins and leaves
    (``--destination``, ``--audience`` repeatable); fails naming the audiences that did not get through."""
    summary = sync_destinations(
        ctx.spark, ctx.lake, getattr(ctx.args, "destination", None), getattr(ctx.args, "audience", None) or None
    )
    if summary["failed"]:
        raise AudienceError(
            f"{len(summary['failed'])} of {summary['audiences']} audiences did not reach their destination: "
            + ", ".join(summary["failed"])
        )
    return summary


def run_insights_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/build_insights.py``: build the insight tables for ``--date``, then the HTML report.

    ``--out`` sets the report path (default ``<warehouse>/reports/<report_name>`` with the
    date inserted before the extension).
    """
    summary = build_insights(ctx.spark, ctx.lake, ctx.config, ctx.date)
    out = getattr(ctx.args, "out", None) or default_report_path(ctx.config, ctx.date)
    summary["report"] = render_report(ctx.spark, ctx.lake, ctx.config, ctx.date, out)
    return summary


def run_refresh_job(ctx: JobContext) -> dict[str, Any]:
    """Refresh all dynamic audiences for ``--date`` (``--audience``, ``--allow-large-change``).

    Records nothing in ``runs``; ``jobs/refresh_audiences.py`` runs
    :func:`segengine.pipeline.daily.run_refresh_audiences_job`, which does.
    """
    only = getattr(ctx.args, "audience", None) or None
    allow = True if getattr(ctx.args, "allow_large_change", False) else None
    return refresh_all(ctx.spark, ctx.lake, ctx.config, ctx.date, only=only, allow_large_change=allow)
