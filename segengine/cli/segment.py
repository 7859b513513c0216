"""`segengine segment …`: validate, explain and count segment definitions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from segengine.cli import DATE, Context, cli, pass_ctx


def _file_resolver(path: str, ctx: Context | None = None, user: str | None = None):
    """Saved segments next to FILE first, then (with Spark) the audiences registry."""
    from segengine.rules import directory_resolver

    fallback = None
    if ctx is not None:
        try:
            from segengine.audiences import resolver as audience_resolver
        except ImportError:  # the audiences package is optional for the rule compiler
            audience_resolver = None
        if audience_resolver is not None:
            fallback = audience_resolver(ctx.spark, ctx.lake, user=user)
    return directory_resolver(Path(path).resolve().parent, fallback=fallback)


def _max_conditions(ctx: Context) -> int:
    return ctx.config.rules.max_conditions


def _warehouse_lacks_events(ctx: Context) -> bool:
    """Whether the configured warehouse has bronze data but no ``events`` table.

    Read from the Delta logs with delta-rs, without a SparkSession. A warehouse with no
    bronze tables yet (nothing ingested) or one that cannot be read says nothing.
    """
    from segengine.lake import Lake
    from segengine.lake.embedded import EmbeddedBackend

    try:
        delta = ctx.config.delta
        lake = Lake(None, ctx.config, EmbeddedBackend(None, delta.storage_options, delta.commit_retries))
        ingested = lake.exists("personas") or lake.exists("order_lines")
        return ingested and not lake.exists("events")
    except Exception:  # noqa: BLE001 - a hint only: never fail validation over it
        return False


def _events_warning(ctx: Context, path: str, compiled) -> None:
    """One warning line when the segment reads events and the warehouse has none."""
    if compiled.needs_events and _warehouse_lacks_events(ctx):
        click.echo(
            f"warning: {path}: needs events, which this warehouse lacks (no events table): "
            f"{'; '.join(compiled.needs_events)} (event attributes are null, did/did_not see no events)",
            err=True,
        )


@cli.group()
def segment() -> None:
    """Check, explain and count rule-defined segments (YAML or JSON files)."""


@segment.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False))
@pass_ctx
def validate(ctx: Context, files: tuple[str, ...]) -> None:
    """Validate FILES against the feature catalog (no Spark needed).

    Segments used through in_segment are looked up among the files next to each FILE.
    """
    from segengine.rules import compile_segment, parse_segment

    for path in files:
        seg = parse_segment(path, max_conditions=_max_conditions(ctx))
        compiled = compile_segment(seg, dt.date.today(), resolver=_file_resolver(path))
        used = f", uses {', '.join(compiled.segments_used)}" if compiled.segments_used else ""
        click.echo(f"ok: {path}: {seg.name!r} ({seg.condition_count} conditions{used})")
        _events_warning(ctx, path, compiled)


@segment.command("explain")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--date", "snapshot_date", type=DATE, default=None, help="Snapshot date YYYY-MM-DD (default: today).")
@pass_ctx
def explain(ctx: Context, file: str, snapshot_date: dt.date | None) -> None:
    """Print FILE's conditions in words and the Spark SQL it compiles to."""
    from segengine.rules import compile_segment, parse_segment

    seg = parse_segment(file, max_conditions=_max_conditions(ctx))
    compiled = compile_segment(seg, snapshot_date or dt.date.today(), resolver=_file_resolver(file))
    click.echo(compiled.explain())
    _events_warning(ctx, file, compiled)


@segment.command("count")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--date", "snapshot_date", type=DATE, required=True, help="Snapshot date YYYY-MM-DD of customer_features."
)
@click.option("--user", default=None, help="Resolve in_segment audiences as this user (visibility).")
@pass_ctx
def count(ctx: Context, file: str, snapshot_date: dt.date, user: str | None) -> None:
    """How many personas FILE selects on --date, by persona type (the "check audience count" button)."""
    from segengine.rules import compile_segment, count_by_persona_type, parse_segment, register_views

    seg = parse_segment(file, max_conditions=_max_conditions(ctx))
    # Compile (and resolve in_segment) before any Spark work, so errors come first.
    compile_segment(seg, snapshot_date, resolver=_file_resolver(file))
    compiled = compile_segment(seg, snapshot_date, resolver=_file_resolver(file, ctx, user))
    _events_warning(ctx, file, compiled)
    register_views(ctx.spark, ctx.lake, compiled.snapshot_date)
    counts = count_by_persona_type(ctx.spark.sql(compiled.sql))
    click.echo(f"{seg.name} on {compiled.snapshot_date.isoformat()}:")
    for persona_type, n in counts.items():
        if persona_type != "total":
            click.echo(f"  {persona_type:10s} {n:>10,d}")
    click.echo(f"  {'total':10s} {counts['total']:>10,d}")
