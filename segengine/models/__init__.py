"""Models: AI segments, CLV, recommendations, lookalike (MLlib, tracked in MLflow)."""

from __future__ import annotations

from typing import Any


def run_score_job(ctx: Any) -> dict[str, Any]:
    """``jobs/score.py``: write the model columns of ``ctx.snapshot_date``'s feature partition.

    ``--model segments|clv|all`` (default all: segments, then CLV; each one partition
    overwrite, so a rerun replaces).
    """
    which = getattr(ctx.args, "model", "all") or "all"
    out: dict[str, Any] = {}
    if which in ("segments", "all"):
        from segengine.models.segments import score_segments

        out["segments"] = score_segments(ctx.spark, ctx.lake, ctx.config, ctx.snapshot_date)
    if which in ("clv", "all"):
        from segengine.models.clv import score_clv

        out["clv"] = score_clv(ctx.spark, ctx.lake, ctx.config, ctx.snapshot_date)
    return out
