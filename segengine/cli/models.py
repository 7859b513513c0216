"""`segengine` commands for models (registered on import by segengine.cli).

``segengine train segments|clv|propensity --date D [--force-promote]``, ``segengine score
segments|clv|propensity|all --date D``, ``segengine models list`` and ``segengine models promote NAME
--version N`` (promotion or rollback: moves the champion alias). Other model areas add subcommands to the ``train`` and
``score`` groups defined here (``segengine train recommendations`` is in
:mod:`segengine.cli.recommend`).
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from segengine.cli.base import DATE, Context, cli, pass_ctx


def _echo(result: object) -> None:
    click.echo(json.dumps(result, indent=2, default=str))


FORCE_PROMOTE_HELP = (
    "Make the new version the champion even if its validation metric is worse than the champion's "
    "(logged, and tagged segengine.promotion=forced)."
)


def force_promote_option(f: Any) -> Any:
    """``--force-promote`` for the ``train`` commands."""
    return click.option("--force-promote", is_flag=True, help=FORCE_PROMOTE_HELP)(f)


def echo_promotions(result: object) -> None:
    """One line per registered model (new vs champion metric, alias given), on stderr so stdout stays JSON."""
    promotion = result.get("promotion") if isinstance(result, dict) else None
    if not promotion:
        return
    for p in [promotion] if "line" in promotion else promotion.values():
        click.echo(p["line"], err=True)


@cli.group("train")
def train() -> None:
    """Train a model for a snapshot date and register it in MLflow.

    The new version becomes the champion only if its validation metric is not worse than
    the current champion's on the same validation data (or with --force-promote); otherwise
    it gets the challenger alias. One line per model says which.
    """


@train.command("segments")
@click.option("--date", "date_", type=DATE, required=True, help="Snapshot date of the feature partition (YYYY-MM-DD).")
@force_promote_option
@pass_ctx
def train_segments_cmd(ctx: Context, date_: dt.date, force_promote: bool) -> None:
    """Train the RFMT k-means segments and the B2B clusters (gated on silhouette)."""
    from segengine.models.segments import train_segments

    result = train_segments(ctx.spark, ctx.lake, ctx.config, date_, force_promote=force_promote)
    _echo(result)
    echo_promotions(result)


@train.command("clv")
@click.option("--date", "date_", type=DATE, required=True, help="Snapshot date S (train/holdout windows end here).")
@force_promote_option
@pass_ctx
def train_clv_cmd(ctx: Context, date_: dt.date, force_promote: bool) -> None:
    """Train the CLV regressor on the time split; print holdout metrics vs the baseline (gated on holdout MAE)."""
    from segengine.models.clv import train_clv

    result = train_clv(ctx.spark, ctx.lake, ctx.config, date_, force_promote=force_promote)
    _echo(result)
    echo_promotions(result)


@train.command("propensity")
@click.option("--date", "date_", type=DATE, required=True, help="Snapshot date S (train/holdout windows end here).")
@force_promote_option
@pass_ctx
def train_propensity_cmd(ctx: Context, date_: dt.date, force_promote: bool) -> None:
    """Train the purchase propensity and churn risk classifiers; print holdout AUC vs the RFM baseline (gated on AUC)."""
    from segengine.models.propensity import train_propensity

    result = train_propensity(ctx.spark, ctx.lake, ctx.config, date_, force_promote=force_promote)
    _echo(result)
    echo_promotions(result)


@cli.group("score")
def score() -> None:
    """Write model outputs into the feature table for a snapshot date."""


@score.command("segments")
@click.option("--date", "date_", type=DATE, required=True, help="Snapshot date of the feature partition.")
@pass_ctx
def score_segments_cmd(ctx: Context, date_: dt.date) -> None:
    """Fill ai_segment, ai_segment_distance and b2b_segment with the champion models."""
    from segengine.models.segments import score_segments

    _echo(score_segments(ctx.spark, ctx.lake, ctx.config, date_))


@score.command("clv")
@click.option("--date", "date_", type=DATE, required=True, help="Snapshot date of the feature partition.")
@pass_ctx
def score_clv_cmd(ctx: Context, date_: dt.date) -> None:
    """Fill clv_predicted and clv_percentile with the champion CLV model."""
    from segengine.models.clv import score_clv

    _echo(score_clv(ctx.spark, ctx.lake, ctx.config, date_))


@score.command("propensity")
@click.option("--date", "date_", type=DATE, required=True, help="Snapshot date of the feature partition.")
@pass_ctx
def score_propensity_cmd(ctx: Context, date_: dt.date) -> None:
    """Fill purchase_propensity_30d, churn_risk and their percentiles with the champion models."""
    from segengine.models.propensity import score_propensity

    _echo(score_propensity(ctx.spark, ctx.lake, ctx.config, date_))


@cli.group("models")
def models() -> None:
    """Registered models in MLflow."""


@models.command("list")
@pass_ctx
def list_cmd(ctx: Context) -> None:
    """List registered model versions, their aliases and feature lists."""
    from segengine.models.tracking import configure_mlflow, list_models

    if ctx.config.mlflow.tracking_uri is None:  # the default store lives in the warehouse
        ctx.require_warehouse()
    uri = configure_mlflow(ctx.config)
    rows = list_models(ctx.config)
    if not rows:
        click.echo(f"no registered models in {uri}")
    for r in rows:
        aliases = ",".join(r["aliases"]) or "-"
        n = len([f for f in r["features"].split(",") if f])
        click.echo(f"{r['name']:28s} v{r['version']:<4s} {aliases:10s} features={n:<3d} run={r['run_id']}")
    click.echo(f"browse: mlflow ui --backend-store-uri {uri}")


@models.command("promote")
@click.argument("name")
@click.option("--version", "version", type=int, required=True, help="The registered version to point the alias at.")
@click.option("--alias", default=None, help="Alias to move (default mlflow.champion_alias).")
@pass_ctx
def promote_cmd(ctx: Context, name: str, version: int, alias: str | None) -> None:
    """Point the champion alias of model NAME at --version N: promotion, or rollback.

    Scoring loads the version the alias points to; the next training run compares its
    new model with that version.
    """
    from segengine.models.tracking import configure_mlflow, promote_version

    if ctx.config.mlflow.tracking_uri is None:
        ctx.require_warehouse()
    configure_mlflow(ctx.config)
    alias = alias or ctx.config.mlflow.champion_alias
    before = promote_version(ctx.config, name, version, alias)
    click.echo(f"{name}@{alias}: v{before or '-'} -> v{version}")
