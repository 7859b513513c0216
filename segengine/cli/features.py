"""`segengine` commands for features (registered on import by segengine.cli)."""

from __future__ import annotations

import datetime as dt
import json

import click

from segengine.cli.base import DATE, Context, cli, pass_ctx


@cli.group("features", invoke_without_command=True)
@click.option("--date", "snapshot_date", type=DATE, help="Snapshot date YYYY-MM-DD: compute its features.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--force",
    is_flag=True,
    help="Write the snapshot even for a date before the first order line or event "
    "(features.allow_before_first_data for this run).",
)
@click.pass_context
def features_group(click_ctx: click.Context, snapshot_date: dt.date | None, as_json: bool, force: bool) -> None:
    """Compute the customer feature table for --date (or use a subcommand: catalog, show)."""
    if click_ctx.invoked_subcommand is not None:
        return
    if snapshot_date is None:
        raise click.UsageError("give --date YYYY-MM-DD to compute features, or a subcommand (catalog, show)")
    from segengine.features import compute_features

    ctx = click_ctx.find_object(Context)
    assert ctx is not None  # the root group puts a Context on every command's click context
    config = ctx.config
    if force:
        config = config.replace(features=config.features.replace(allow_before_first_data=True))
    result = compute_features(ctx.spark, ctx.lake, config, snapshot_date)
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    types = ", ".join(f"{k} {v}" for k, v in sorted(result["persona_types"].items()))
    click.echo(
        f"customer_features {result['snapshot_date']}: {result['rows']} personas ({types}), "
        f"table version {result['version']}; {result['mode']} refresh ({result['reason']})"
    )


@features_group.command("catalog")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "markdown"]),
    default="table",
    show_default=True,
    help="Output format.",
)
def catalog_cmd(fmt: str) -> None:
    """Print the feature catalog: every attribute with type, unit, source and description."""
    from segengine.features.catalog import as_rows

    click.echo(as_rows(fmt))


@features_group.command("show")
@click.option("--date", "snapshot_date", type=DATE, required=True, help="Snapshot date YYYY-MM-DD.")
@click.option("--persona", "persona_id", default=None, help="Show one persona, all attributes.")
@click.option("--limit", type=int, default=10, show_default=True, help="Rows to show.")
@click.option(
    "--columns",
    default="persona_id,persona_type,recency_days,frequency,monetary,tenure_days,value_tier,behaviour_state,"
    "lifecycle_stage,engagement_score,fit_score",
    show_default=True,
    help="Comma-separated columns (ignored with --persona).",
)
@pass_ctx
def show_cmd(ctx: Context, snapshot_date: dt.date, persona_id: str | None, limit: int, columns: str) -> None:
    """Show rows of the customer feature table for a snapshot date."""
    from pyspark.sql import functions as F

    from segengine.features.snapshots import require_feature_partition

    require_feature_partition(ctx.lake, snapshot_date)
    df = ctx.lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    if persona_id:
        rows = df.where(F.col("persona_id") == persona_id).limit(1).collect()
        if not rows:
            raise click.ClickException(f"persona {persona_id!r} not in customer_features for {snapshot_date}")
        for key, value in rows[0].asDict().items():
            click.echo(f"{key:26s} {value}")
        return
    cols = [c.strip() for c in columns.split(",") if c.strip()]
    df.select(*cols).orderBy(F.col("monetary").desc() if "monetary" in cols else cols[0]).show(limit, truncate=False)
