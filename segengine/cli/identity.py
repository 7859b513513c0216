"""`segengine identity` commands (registered on import by segengine.cli)."""

from __future__ import annotations

import datetime as dt
import json

import click

from segengine.cli.base import DATE, Context, cli, pass_ctx


@cli.group("identity")
def identity_group() -> None:
    """Identity stitching: personas that share an email, phone or cookie become one person."""


@identity_group.command("build")
@click.option("--date", "snapshot_date", type=DATE, required=True, help="Snapshot date YYYY-MM-DD.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def build_cmd(ctx: Context, snapshot_date: dt.date, as_json: bool) -> None:
    """Build identity_map (and identity_rejected) from bronze up to --date; a rerun replaces the date."""
    from segengine.identity import build_identity_map
    from segengine.identity.build import check_settings

    check_settings(ctx.config.identity)  # before a session is built
    result = build_identity_map(ctx.spark, ctx.lake, ctx.config, snapshot_date)
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    rejected = ", ".join(f"{k} {v}" for k, v in sorted(result["rejected"].items())) or "none"
    sizes = ", ".join(f"{size}: {n}" for size, n in result["component_sizes"].items())
    click.echo(
        f"identity_map {result['snapshot_date']}: {result['personas']} personas -> {result['persons']} persons "
        f"({result['merged_personas']} personas merged) in {result['rounds']} rounds, {result['seconds']} s"
    )
    click.echo(f"  persons by number of personas: {sizes}")
    click.echo(f"  rejected: {rejected}")
