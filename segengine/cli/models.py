"""`segengine` commands for models (registered on import by segengine.cli).

``segengine train segments|clv --date D``, ``segengine score segments|clv|all --date D``
and ``segengine models list``. Other model areas add subcommands to the ``train`` and
``score`` groups defined here (``segengine train recommendations`` is in
:mod:`segengine.cli.recommend`).
"""

from __future__ import annotations

import datetime as dt
import json

import click

from segengine.cli import cli, pass_ctx

_DATE = click.DateTime(formats=["%Y-%m-%d"])


def _echo(result: object) -> None:
    click.echo(json.dumps(result, indent=2, default=str))


@cli.group("train")
def train() -> None:
    """Train a model for a snapshot date and register it as the champion in MLflow."""


@train.command("segments")
@click.option("--date", "date_", type=_DATE, required=True, help="Snapshot date of the feature partition (YYYY-MM-DD).")
@pass_ctx
def train_segments_cmd(ctx, date_: dt.datetime) -> None:
    """Train the RFMT k-means segments and the B2B clusters."""
    from segengine.models.segments import train_segments

    _echo(train_segments(ctx.spark, ctx.lake, ctx.config, date_.date()))


@train.command("clv")
@click.option("--date", "date_", type=_DATE, required=True, help="Snapshot date S (train/holdout windows end here).")
@pass_ctx
def train_clv_cmd(ctx, date_: dt.datetime) -> None:
    """Train the CLV regressor on the time split; print holdout metrics vs the baseline."""
    from segengine.models.clv import train_clv

    _echo(train_clv(ctx.spark, ctx.lake, ctx.config, date_.date()))


@cli.group("score")
def score() -> None:
    """Write model outputs into the feature table for a snapshot date."""


@score.command("segments")
@click.option("--date", "date_", type=_DATE, required=True, help="Snapshot date of the feature partition.")
@pass_ctx
def score_segments_cmd(ctx, date_: dt.datetime) -> None:
    """Fill ai_segment, ai_segment_distance and b2b_segment with the champion models."""
    from segengine.models.segments import score_segments

    _echo(score_segments(ctx.spark, ctx.lake, ctx.config, date_.date()))


@score.command("clv")
@click.option("--date", "date_", type=_DATE, required=True, help="Snapshot date of the feature partition.")
@pass_ctx
def score_clv_cmd(ctx, date_: dt.datetime) -> None:
    """Fill clv_predicted and clv_percentile with the champion CLV model."""
    from segengine.models.clv import score_clv

    _echo(score_clv(ctx.spark, ctx.lake, ctx.config, date_.date()))


@cli.group("models")
def models() -> None:
    """Registered models in MLflow."""


@models.command("list")
@pass_ctx
def list_cmd(ctx) -> None:
    """List registered model versions, their aliases and feature lists."""
    from segengine.models.tracking import configure_mlflow, list_models

    uri = configure_mlflow(ctx.config)
    rows = list_models(ctx.config)
    if not rows:
        click.echo(f"no registered models in {uri}")
    for r in rows:
        aliases = ",".join(r["aliases"]) or "-"
        n = len([f for f in r["features"].split(",") if f])
        click.echo(f"{r['name']:28s} v{r['version']:<4s} {aliases:10s} features={n:<3d} run={r['run_id']}")
    click.echo(f"browse: mlflow ui --backend-store-uri {uri}")
