"""`segengine maintain`: OPTIMIZE and VACUUM the lake's tables."""

from __future__ import annotations

import click

from segengine.cli.base import Context, cli, pass_ctx


@cli.command("maintain")
@click.option("--table", "tables", multiple=True, help="Only this table (repeatable; default: every table).")
@click.option(
    "--retention-hours",
    type=click.IntRange(min=0),
    default=None,
    help="VACUUM keeps the files of the versions of the last this many hours "
    "[default: maintenance.retention_hours, 168].",
)
@click.option("--force", is_flag=True, help="Allow a retention under 168 hours (7 days).")
@click.option("--zorder", is_flag=True, help="Z-order by maintenance.zorder_by (persona_id) instead of compacting.")
@click.option("--dry-run", is_flag=True, help="List what VACUUM would delete; compact and delete nothing.")
@pass_ctx
def maintain(
    ctx: Context, tables: tuple[str, ...], retention_hours: int | None, force: bool, zorder: bool, dry_run: bool
) -> None:
    """Compact small files (OPTIMIZE) and delete unreferenced ones (VACUUM); one line per table."""
    from segengine.audiences.destinations import versions_to_keep
    from segengine.lake.maintenance import maintain as run

    for outcome in run(
        ctx.lake,
        tables=list(tables) or None,
        retention_hours=retention_hours,
        force=force,
        zorder=zorder,
        dry_run=dry_run,
        keep_versions=versions_to_keep(ctx.spark, ctx.lake),
    ):
        click.echo(outcome.line())
