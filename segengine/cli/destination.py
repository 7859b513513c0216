"""`segengine destination …`: create, list, show, delete, sync, dead-letters."""

from __future__ import annotations

import json
from typing import Any

import click

from segengine.cli.audience import user_option
from segengine.cli.base import Context, cli, pass_ctx


def _echo(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


def parse_settings(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``key=value`` pairs; values read as YAML (numbers, lists ``[a, b]``, text)."""
    import yaml

    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--set")
        out[key.strip()] = yaml.safe_load(value) if value else ""
    return out


@cli.group()
def destination() -> None:
    """Destinations audiences are synced to: files drops, webhooks, Delta tables."""


@destination.command("create")
@click.argument("name")
@click.option("--kind", type=click.Choice(["files", "webhook", "delta"]), required=True)
@click.option(
    "--set",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="A setting: files path/format/columns; webhook url/batch_size/max_retries/backoff_seconds/"
    "timeout_seconds; delta path. Repeatable.",
)
@user_option
@pass_ctx
def create(ctx: Context, name: str, kind: str, pairs: tuple[str, ...], user: str) -> None:
    """Register a destination NAME of a kind with its settings."""
    from segengine.audiences.destinations import create_destination

    dest = create_destination(ctx.spark, ctx.lake, name, kind, parse_settings(pairs), user)
    click.echo(f"created {dest.kind} destination {dest.name!r}: {json.dumps(dest.settings, sort_keys=True)}")


@destination.command("list")
@pass_ctx
def list_cmd(ctx: Context) -> None:
    """List the destinations and the audiences synced to each."""
    from segengine.audiences.destinations import attached_audiences, list_destinations

    attached: dict[str, list[str]] = {}
    for aud in attached_audiences(ctx.spark, ctx.lake):
        attached.setdefault((aud.synced_to or "").split(":", 1)[-1], []).append(aud.name)
    click.echo(f"{'name':24s} {'kind':8s} {'owner':12s} audiences")
    for d in list_destinations(ctx.lake):
        click.echo(
            f"{d.name[:24]:24s} {d.kind:8s} {d.owner[:12]:12s} {', '.join(sorted(attached.get(d.name, []))) or '-'}"
        )


@destination.command("show")
@click.argument("name")
@pass_ctx
def show(ctx: Context, name: str) -> None:
    """A destination's settings, and per audience its watermark and latest sync."""
    from dataclasses import asdict

    from segengine.audiences.destinations import attached_audiences, get_destination, sync_log, watermark

    dest = get_destination(ctx.lake, name)
    audiences = []
    for aud in attached_audiences(ctx.spark, ctx.lake, name):
        rows = sync_log(ctx.lake, name, aud.audience_id)
        audiences.append(
            {
                "audience": aud.name,
                "watermark": watermark(ctx.lake, name, aud.audience_id),
                "latest": {
                    k: rows[-1][k] for k in ("from_version", "to_version", "status", "adds", "removes", "message")
                }
                if rows
                else None,
            }
        )
    _echo({**asdict(dest), "audiences": audiences})


@destination.command("delete")
@click.argument("name")
@user_option
@pass_ctx
def delete(ctx: Context, name: str, user: str) -> None:
    """Delete a destination no audience is synced to (owner only)."""
    from segengine.audiences.destinations import delete_destination

    delete_destination(ctx.spark, ctx.lake, name, user)
    click.echo(f"deleted destination {name!r}")


@destination.command("sync")
@click.argument("name", required=False)
@click.option("--audience", "audiences", multiple=True, help="Only this audience (id or name); repeatable.")
@pass_ctx
def sync(ctx: Context, name: str | None, audiences: tuple[str, ...]) -> None:
    """Send the joins and leaves since the last sync (all destinations, or NAME).

    Exits 2 naming the audiences that did not get through; the next sync resumes where
    they stopped.
    """
    from segengine.audiences.destinations import sync_destinations
    from segengine.errors import AudienceError

    summary = sync_destinations(ctx.spark, ctx.lake, name, list(audiences) or None)
    _echo(summary)
    if summary["failed"]:
        raise AudienceError(
            f"{len(summary['failed'])} audiences did not reach their destination: {', '.join(summary['failed'])} "
            "(see `segengine destination dead-letters`)"
        )


@destination.command("dead-letters")
@click.argument("name", required=False)
@click.option("--limit", default=20, show_default=True)
@click.option("--payload", is_flag=True, help="Print each batch's JSON payload too.")
@pass_ctx
def dead_letters_cmd(ctx: Context, name: str | None, limit: int, payload: bool) -> None:
    """Webhook batches that kept failing, newest first."""
    from segengine.audiences.destinations import dead_letters

    for r in dead_letters(ctx.lake, name)[:limit]:
        click.echo(f"{r['failed_at']}  {r['destination']}  {r['audience_id']}  batch {r['batch']}  {r['error']}")
        if payload:
            click.echo(f"  {r['payload']}")
