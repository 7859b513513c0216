"""`segengine segment …`: validate, explain and count segment definitions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from segengine.cli.base import DATE, Context, cli, pass_ctx

if TYPE_CHECKING:
    from segengine.lake import Lake
    from segengine.rules.compile import CompiledSegment, Resolver
    from segengine.rules.parse import Segment


def _file_resolver(path: str, ctx: Context | None = None, user: str | None = None) -> Resolver:
    """Saved segments next to FILE first, then (with Spark) the audiences registry."""
    from segengine.rules import directory_resolver

    fallback = None
    if ctx is not None:
        try:
            from segengine.audiences import resolver as audience_resolver
        except ImportError:  # the audiences package is optional for the rule compiler
            audience_resolver = None  # type: ignore[assignment]  # the optional import's fallback
        if audience_resolver is not None:
            fallback = audience_resolver(ctx.spark, ctx.lake, user=user)
    return directory_resolver(Path(path).resolve().parent, fallback=fallback)


def _files_then_placeholder(path: str) -> Resolver:
    """The segment files next to FILE; any other name stands for a saved audience (everyone)."""
    from segengine.rules import parse_segment

    files = _file_resolver(path)

    def resolve(name: str) -> Segment:
        try:
            return files(name)
        except LookupError:
            return parse_segment({"name": name})

    return resolve


def _max_conditions(ctx: Context) -> int:
    return ctx.config.rules.max_conditions


def _log_lake(ctx: Context) -> Lake | None:
    """The configured warehouse read through the Delta logs with delta-rs (no SparkSession),
    or None when it is a local folder that does not exist (nothing is created)."""
    from segengine.lake import Lake
    from segengine.lake.embedded import EmbeddedBackend
    from segengine.lake.warehouse import local_warehouse_path

    path = local_warehouse_path(ctx.config)
    if path is not None and not path.is_dir():
        return None
    delta = ctx.config.delta
    # delta-rs reads the logs without a SparkSession: the spark argument is unused on this path.
    backend = EmbeddedBackend(None, delta.storage_options, delta.commit_retries)  # type: ignore[arg-type]
    return Lake(None, ctx.config, backend)  # type: ignore[arg-type]


def _warehouse_lacks_events(ctx: Context) -> bool:
    """Whether the configured warehouse has bronze data but no ``events`` table.

    Read from the Delta logs with delta-rs, without a SparkSession. A warehouse with no
    bronze tables yet (nothing ingested) or one that cannot be read says nothing.
    """
    try:
        lake = _log_lake(ctx)
        if lake is None:
            return False
        ingested = lake.exists("personas") or lake.exists("order_lines")
        return ingested and not lake.exists("events")
    except Exception:  # noqa: BLE001 - a hint only: never fail validation over it
        return False


def _empty_counts(ctx: Context, compiled: CompiledSegment) -> dict[str, int] | None:
    """Personas with each attribute the null rule decides empty, on the snapshot date.

    None (not counted) when the warehouse has no feature snapshot for that date; the
    check reads the Delta log only, so explain builds a SparkSession only to count.
    """
    from segengine.features.snapshots import feature_snapshot_dates
    from segengine.rules.nulls import count_empty, empty_attrs

    attrs = empty_attrs(compiled.segment)
    if not attrs:
        return None
    try:
        lake = _log_lake(ctx)
        if lake is None or compiled.snapshot_date not in feature_snapshot_dates(lake):
            return None
    except Exception:  # noqa: BLE001 - counts are a help: explain works without them
        return None
    features = ctx.lake.read("customer_features", partitions={"snapshot_date": compiled.snapshot_date})
    return count_empty(features, attrs)


def _events_warning(ctx: Context, path: str, compiled: CompiledSegment) -> None:
    """One warning line when the segment reads events and the warehouse has none."""
    if compiled.needs_events and _warehouse_lacks_events(ctx):
        click.echo(
            f"warning: {path}: needs events, which this warehouse lacks (no events table): "
            f"{'; '.join(compiled.needs_events)} (event attributes are null, did/did_not see no events)",
            err=True,
        )


def _before_data_warning(ctx: Context, day: dt.date) -> None:
    """One warning line when ``day`` is before the first order line or event (its features,
    written with ``features --force``, describe no activity at all)."""
    from segengine.features.snapshots import first_bronze_day

    first = first_bronze_day(ctx.lake, ctx.config.features.timezone)
    if first is not None and day < first:
        click.echo(
            f"warning: {day.isoformat()} is before the first order line or event ({first.isoformat()}): "
            "the features of that date describe no activity",
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
    """Print FILE's conditions in words and the Spark SQL it compiles to.

    Where an empty (null) attribute changes the answer, says so: a condition on an empty
    attribute is false and `not` flips it; with a feature snapshot for --date, how many
    personas have the attribute empty.
    """
    from segengine.rules import compile_segment, parse_segment

    seg = parse_segment(file, max_conditions=_max_conditions(ctx))
    compiled = compile_segment(seg, snapshot_date or dt.date.today(), resolver=_file_resolver(file))
    click.echo(compiled.explain(_empty_counts(ctx, compiled)))
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
    # Compile (and resolve in_segment among the files) before any Spark work, so errors
    # come first; names no file has may be saved audiences, looked up once Spark is up.
    compile_segment(seg, snapshot_date, resolver=_files_then_placeholder(file))
    compiled = compile_segment(seg, snapshot_date, resolver=_file_resolver(file, ctx, user))
    _events_warning(ctx, file, compiled)
    register_views(ctx.spark, ctx.lake, compiled.snapshot_date)
    _before_data_warning(ctx, compiled.snapshot_date)
    counts = count_by_persona_type(ctx.spark.sql(compiled.sql))
    click.echo(f"{seg.name} on {compiled.snapshot_date.isoformat()}:")
    for persona_type, n in counts.items():
        if persona_type != "total":
            click.echo(f"  {persona_type:10s} {n:>10,d}")
    click.echo(f"  {'total':10s} {counts['total']:>10,d}")
