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

from segengine.cli.audience import audience
from segengine.cli.base import DATE, cli, moved_command, pass_ctx
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
@click.option(
    "--validation-days",
    type=int,
    default=None,
    help="Validation window length, before the test window (default recommend.eval_validation_days).",
)
@click.option(
    "--grid",
    default=None,
    help="ALS settings to choose from on the validation window, e.g. 'rank=16,alpha=2;rank=32,alpha=8' "
    "(keys: rank, reg_param, alpha, max_iter, view_weight, cart_weight, recency_half_life_days); "
    "the test window is scored once with the chosen one.",
)
@pass_ctx
def evaluate_cmd(
    ctx: Any, snapshot_date: dt.date, test_days: int | None, validation_days: int | None, grid: str | None
) -> None:
    """Precision@10, recall@10, MAP@10, coverage with 95% bootstrap intervals: ALS vs popularity vs popular-in-segment.

    Train / validation / test windows carved by time; choices on validation, test scored once.
    """
    from segengine.errors import ModelError
    from segengine.models.recommend import evaluate, parse_grid

    try:
        settings = parse_grid(grid, ctx.config.recommend) if grid else None
    except ModelError as exc:
        raise click.BadParameter(str(exc), param_hint="--grid") from None
    result = evaluate(
        ctx.spark, ctx.lake, ctx.config, snapshot_date, test_days, validation_days=validation_days, grid=settings
    )
    for line in evaluation_report(result):
        click.echo(line)


def _ci(bounds: list[float] | None, fmt: str = "{:.4f}") -> str:
    if not bounds or bounds[0] != bounds[0]:
        return "[n/a]"
    return "[" + fmt.format(bounds[0]) + ", " + fmt.format(bounds[1]) + "]"


def evaluation_report(result: dict[str, Any]) -> list[str]:
    """The lines ``segengine recommend evaluate`` prints for :func:`segengine.models.recommend.evaluate`."""
    k = result["k"]
    val, test = result["validation"], result["test"]
    lines = [
        f"time split: train <= {result['validation_cutoff']}, "
        f"validation {val['window'][0]}..{val['window'][1]} ({result['validation_days']} days), "
        f"test {test['window'][0]}..{test['window'][1]} ({result['test_days']} days)",
        f"hyperparameters chosen on the validation window: {result['setting']} "
        f"({len(result['grid'])} setting(s) tried); the test window is scored once with them",
    ]
    if len(result["grid"]) > 1:
        for g in result["grid"]:
            lines.append(
                f"  validation P@{k} {g['precision_at_k']:.4f}  lift {g['lift_vs_popularity']:.2f}x  {g['setting']}"
            )
    level = int(round(100 * test.get("bootstrap", {}).get("level", 0.95)))
    for window in (val, test):
        u = window["users"]
        lines += [
            "",
            f"== {window['split']} split: ALS trained <= {window['train_end']}, "
            f"segments ({window['segmentation']}) as of {window['segments_as_of'] or 'none'}",
            f"users scored {u['scored']}: known to ALS {u['known']}, cold start {u['cold_start']} "
            "(served by the popular-in-segment fallback)",
        ]
        boot = window.get("bootstrap", {})
        if boot:
            lines.append(
                f"{level}% intervals: percentile bootstrap over users, {boot['resamples']} resamples, seed {boot['seed']}"
            )
        for group in ("all", "known", "cold_start"):
            n = window["metrics"][group]["als"]["users"]
            lines.append(f"-- {group} users ({int(n)})")
            lines.append(
                f"{'method':20s} {'P@' + str(k):>8s} {'CI':>18s} {'R@' + str(k):>8s} {'CI':>18s} "
                f"{'MAP@' + str(k):>8s} {'coverage':>9s}"
            )
            for method in ("als", "popularity", "popular_in_segment"):
                m = window["metrics"][group][method]
                ci = window.get("ci", {}).get(group, {}).get(method, {})
                lines.append(
                    f"{method:20s} {m['precision_at_k']:8.4f} {_ci(ci.get('precision_at_k')):>18s} "
                    f"{m['recall_at_k']:8.4f} {_ci(ci.get('recall_at_k')):>18s} {m['map_at_k']:8.4f} {m['coverage']:9.3f}"
                )
            ci = window.get("ci", {}).get(group, {})
            lift = window["lift"][group]
            lines.append(
                f"ALS precision lift vs popularity {lift['vs_popularity']:.2f}x "
                f"{_ci(ci.get('lift_vs_popularity'), '{:.2f}')}, "
                f"vs popular_in_segment {lift['vs_popular_in_segment']:.2f}x "
                f"{_ci(ci.get('lift_vs_popular_in_segment'), '{:.2f}')}"
            )
    return lines


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
