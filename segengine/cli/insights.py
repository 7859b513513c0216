"""`segengine` commands for insights (registered on import by segengine.cli)."""

from __future__ import annotations

import datetime as dt
import json

import click

from segengine.cli.audience import user_option
from segengine.cli.base import DATE, Context, cli, pass_ctx


@cli.command("insights")
@click.option("--date", "snapshot_date", required=True, type=DATE, help="Snapshot date YYYY-MM-DD.")
@click.option("--report/--no-report", default=False, help="Also write the HTML report.")
@pass_ctx
def insights_cmd(ctx: Context, snapshot_date: dt.date, report: bool) -> None:
    """Build the insight tables (segment metrics, migrations, industry trends) for a date."""
    from segengine.insights import build_insights

    summary = build_insights(ctx.spark, ctx.lake, ctx.config, snapshot_date)
    if report:
        from segengine.insights.report import render_report

        summary["report"] = render_report(ctx.spark, ctx.lake, ctx.config, snapshot_date)
    click.echo(json.dumps(summary, indent=2, default=str))


@cli.command("report")
@click.option("--date", "snapshot_date", required=True, type=DATE, help="Snapshot date YYYY-MM-DD.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None, help="Output HTML file.")
@click.option("--build/--no-build", default=False, help="Build the insight tables first.")
@pass_ctx
def report_cmd(ctx: Context, snapshot_date: dt.date, out_path: str | None, build: bool) -> None:
    """Write the self-contained HTML report for a date and print its path."""
    from segengine.insights.report import render_report

    if build:
        from segengine.insights import build_insights

        build_insights(ctx.spark, ctx.lake, ctx.config, snapshot_date)
    click.echo(render_report(ctx.spark, ctx.lake, ctx.config, snapshot_date, out_path))


@cli.command("profile")
@click.argument("persona_id")
@click.option("--date", "snapshot_date", type=DATE, default=None, help="Snapshot date (default: latest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@user_option
@pass_ctx
def profile_cmd(ctx: Context, persona_id: str, snapshot_date: dt.date | None, as_json: bool, user: str) -> None:
    """Print the customer 360 profile of one persona (the audiences ``--user`` may see)."""
    from segengine.insights.profile import customer_profile, format_profile, profile_json

    profile = customer_profile(ctx.spark, ctx.lake, ctx.config, persona_id, snapshot_date, user)
    click.echo(profile_json(profile) if as_json else format_profile(profile))
