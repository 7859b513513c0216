"""`segengine` commands for data (registered on import by segengine.cli)."""

from __future__ import annotations

import json
from typing import Any

import click

from segengine.cli.base import Context, cli, pass_ctx


def _print_ingest(result: dict[str, Any]) -> None:
    click.echo(f"{'table':12s} {'files':>6s} {'skipped':>8s} {'rows in':>10s} {'loaded':>10s} {'quarantined':>12s}")
    for table, r in result["tables"].items():
        click.echo(
            f"{table:12s} {r['files']:6d} {r['skipped_files']:8d} {r['rows_in']:10d} {r['loaded']:10d} {r['quarantined']:12d}"
        )
    click.echo(
        f"{'total':12s} {'':6s} {'':8s} {result['rows_in']:10d} {result['loaded']:10d} {result['quarantined']:12d}"
        f"   ({result['seconds']} s)"
    )


@cli.command("generate")
@click.option("--personas", type=int, default=None, help="Number of personas (default generator.personas).")
@click.option("--seed", type=int, default=None, help="Random seed; same seed and count give the same data.")
@click.option("--malformed-share", type=float, default=None, help="Share of damaged rows per table (e.g. 0.01).")
@click.option("--out", "out_dir", default=None, help="Output directory (default: the ingest landing directory).")
@click.option(
    "--identity-share",
    type=float,
    default=0.0,
    show_default=True,
    help="Share of people spread over 2-3 personas (planted truth in <out>/identity_truth).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def generate_cmd(
    ctx: Context,
    personas: int | None,
    seed: int | None,
    malformed_share: float | None,
    out_dir: str | None,
    identity_share: float,
    as_json: bool,
) -> None:
    """Write seeded sample raw files: personas/products CSV, order_lines Parquet, events JSON lines."""
    from segengine.generate import generate_raw
    from segengine.ingest import default_raw_dir

    ctx.may_create_warehouse = True
    result = generate_raw(
        ctx.spark,
        ctx.config,
        out_dir or default_raw_dir(ctx.config),
        personas,
        seed,
        malformed_share,
        identity_share=identity_share,
    )
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    click.echo(f"raw files in {result['out_dir']} (seed {result['seed']}, {result['seconds']['total']} s)")
    for table, n in result["rows"].items():
        click.echo(
            f"  {table:12s} {n:12d} rows  {result['malformed'][table]:8d} malformed  ({result['formats'][table]})"
        )
    if "identity" in result:
        planted = result["identity"]
        click.echo(
            f"  planted identities: {planted['people']} people over {planted['people'] + planted['alias_personas']} "
            f"personas, truth in {planted['truth_dir']}"
        )


@cli.command("ingest")
@click.option(
    "--raw-dir", default=None, help="Landing directory with one sub-directory per table (default <warehouse>/raw)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_ctx
def ingest_cmd(ctx: Context, raw_dir: str | None, as_json: bool) -> None:
    """Validate new raw files and load them into bronze Delta tables; bad rows go to quarantine."""
    from segengine.ingest import default_raw_dir, ingest, require_raw_dir

    require_raw_dir(raw_dir or default_raw_dir(ctx.config))  # before anything is created
    ctx.may_create_warehouse = True
    result = ingest(ctx.spark, ctx.lake, ctx.config, raw_dir)
    if as_json:
        click.echo(json.dumps(result, default=str))
        return
    _print_ingest(result)
    for table in result["tables"]:
        click.echo(f"  {table}: {ctx.lake.uri(table)}")
    if result["quarantined"]:
        click.echo(f"  quarantine: {ctx.lake.uri('quarantine')}")
