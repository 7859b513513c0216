"""Job adapters for ``jobs/ingest.py`` and ``jobs/generate.py`` (thin: arguments → one call)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from segengine.pipeline.entry import JobContext


def add_ingest_args(parser: argparse.ArgumentParser) -> None:
    """``--raw-dir``: the landing directory (default ``ingest.raw_dir`` or ``<warehouse>/raw``)."""
    parser.add_argument("--raw-dir", default=None, help="Landing directory with one sub-directory per table")


def run_ingest_job(ctx: JobContext) -> dict[str, Any]:
    """Ingest every table's new raw files; returns the counts."""
    from segengine.ingest import ingest

    return ingest(ctx.spark, ctx.lake, ctx.config, ctx.args.raw_dir)


def add_generate_args(parser: argparse.ArgumentParser) -> None:
    """``--personas``, ``--seed``, ``--malformed-share``, ``--out``."""
    parser.add_argument("--personas", type=int, default=None, help="Number of personas (default generator.personas)")
    parser.add_argument("--seed", type=int, default=None, help="Random seed (default generator.seed)")
    parser.add_argument("--malformed-share", type=float, default=None, help="Share of damaged rows per table")
    parser.add_argument("--out", default=None, help="Output directory (default the ingest landing directory)")


def run_generate_job(ctx: JobContext) -> dict[str, Any]:
    """Write the raw sample files; returns row counts, damaged-row counts and throughput."""
    from segengine.generate import generate_raw
    from segengine.ingest import default_raw_dir

    a = ctx.args
    return generate_raw(
        ctx.spark, ctx.config, a.out or default_raw_dir(ctx.config), a.personas, a.seed, a.malformed_share
    )
