"""`segengine` commands for recommendations and lookalikes (registered on import by segengine.cli).

* ``segengine train recommendations --date D``
* ``segengine recommend --date D`` (score) and ``segengine recommend evaluate --date D``
* ``segengine audience lookalike SEED --size N --by a,b --date D``

The old spellings ``segengine train-recommendations`` and ``segengine audience-lookalike``
only say where the command went (exit 2); they go in the next release.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from segengine.cli import DATE, cli, moved_command, pass_ctx
from segengine.cli.audience import audience
from segengine.cli.models import echo_promotions, force_promote_option, train


def _echo(result: dict[str, Any]) -> None:
    click.echo(json.dumps(result, indent=2, default=str))


@train.command("recommendations")
@click.option("--date", "snapshot_date", required=True, type=DATE, help="Last day of training data (YYYY-MM-DD).")
@click.option(
    "--no-evaluate",
    is_flag=True,
    help="Skip the time-split evaluation (one ALS fit instead of two); with nothing to compare, "
    "the new version becomes champion only if there is none yet or with --force-promote.",
)
@force_promote_option
@pass_ctx
def train_recommendations_cmd(ctx: Any, snapshot_date: dt.date, no_evaluate: bool, force_promote: bool) -> None:
    """Train the ALS recommender: evaluate on a time split, fit, save, log and register (gated on precision@k)."""
    from segengine.models.recommend import train_recommendations

    result = train_recommendations(
        ctx.spark, ctx.lake, ctx.config, snapshot_date, evaluate_first=not no_evaluate, force_promote=force_promote
    )
    _echo(result)
    echo_promotions(result)


@cli.group("recommend", invoke_without_command=True)
@click.option("--date", "snapshot_date", type=DATE, help="Scoring date (YYYY-MM-DD).")
@click.pass_context
def recommend_group(click_ctx: click.Context, snapshot_date: dt.date | None) -> None:
    """Write the top products per persona (1-100 score) to the recommendations table for --date."""
    if click_ctx.invoked_subcommand is not None:
        return
    if snapshot_date is None:
        raise click.UsageError("recommend needs --date YYYY-MM-DD (or a subcommand: evaluate)")
    from segengine.models.recommend import score_recommendations

    ctx = click_ctx.obj
    _echo(score_recommendations(ctx.spark, ctx.lake, ctx.config, snapshot_date))


@recommend_group.command("evaluate")
@click.option("--date", "snapshot_date", required=True, type=DATE, help="End of the test window (YYYY-MM-DD).")
@click.option("--test-days", type=int, default=None, help="Test window length (default recommend.eval_test_days).")
@pass_ctx
def evaluate_cmd(ctx: Any, snapshot_date: dt.date, test_days: int | None) -> None:
    """Precision@10, recall@10, MAP@10 and coverage: ALS vs popularity vs popular-in-segment."""
    from segengine.models.recommend import evaluate

    result = evaluate(ctx.spark, ctx.lake, ctx.config, snapshot_date, test_days)
    k = result["k"]
    click.echo(
        f"time split: train <= {result['cutoff']}, test {result['test_days']} days, {result['test_users']} users"
    )
    click.echo(f"segments of popular_in_segment: {result['segmentation']}")
    click.echo(f"{'method':20s} {'P@' + str(k):>8s} {'R@' + str(k):>8s} {'MAP@' + str(k):>8s} {'coverage':>9s}")
    for method in ("als", "popularity", "popular_in_segment"):
        m = result[method]
        click.echo(
            f"{method:20s} {m['precision_at_k']:8.4f} {m['recall_at_k']:8.4f} {m['map_at_k']:8.4f} {m['coverage']:9.3f}"
        )
    click.echo(f"ALS precision lift vs popularity: {result['precision_lift_vs_popularity']:.2f}x")


def _lookalike_options(f: Any) -> Any:
    f = click.option("--owner", default="segengine", help="Owner of the new audience.")(f)
    f = click.option("--name", default=None, help="Name of the new audience (default '<seed> lookalike <N>').")(f)
    f = click.option("--date", "snapshot_date", required=True, type=DATE, help="Features date (YYYY-MM-DD).")(f)
    f = click.option(
        "--by",
        required=True,
        help="Comma-separated numeric catalog attributes set for everyone, e.g. frequency,monetary,days_since_last_purchase.",
    )(f)
    f = click.option("--size", required=True, type=int, help="Exactly how many lookalikes.")(f)
    f = click.argument("seed")(f)
    return f


@audience.command("lookalike")
@_lookalike_options
@pass_ctx
def lookalike_cmd(
    ctx: Any, seed: str, size: int, by: str, snapshot_date: dt.date, name: str | None, owner: str
) -> None:
    """Expand audience SEED to exactly --size similar personas (MLlib LSH) and save it as an audience."""
    from segengine.models.lookalike import expand_audience

    attrs = [b.strip() for b in by.split(",") if b.strip()]
    result = expand_audience(ctx.spark, ctx.lake, ctx.config, seed, size, attrs, snapshot_date, name=name, owner=owner)
    _echo(result)
    if result.get("warning"):
        click.echo(f"warning: {result['warning']}", err=True)


# Renamed commands: one line saying where each went, exit 2 (for one release).
moved_command("train-recommendations", "train recommendations")
moved_command("audience-lookalike", "audience lookalike")
