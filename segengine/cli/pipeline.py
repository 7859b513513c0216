"""`segengine pipeline …`, `segengine runs` and `segengine demo`."""

from __future__ import annotations

import datetime as dt

import click

from segengine.cli.base import DATE, Context, cli, pass_ctx


@cli.group()
def pipeline() -> None:
    """Run the scheduled daily pipeline or the training jobs."""


@pipeline.command("daily")
@click.option("--date", "date_", type=DATE, required=True, help="Snapshot date YYYY-MM-DD.")
@click.option("--resume", is_flag=True, help="Skip steps that already succeeded for this date.")
@click.option("--steps", default="", help="Comma-separated subset of steps (default: all).")
@click.option(
    "--allow-large-change",
    is_flag=True,
    help="Let the audiences step remove more than audiences.max_removed_share of an audience's members.",
)
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default="text",
    show_default=True,
    help="Step lines as text, or one JSON object per step (step, date, run_id, status, rows, seconds, message).",
)
@pass_ctx
def daily(ctx: Context, date_: dt.date, resume: bool, steps: str, allow_large_change: bool, log_format: str) -> None:
    """ingest → features → score → recommendations → audiences → insights for one date."""
    from segengine.pipeline.daily import run_daily, select_steps

    names = [s for s in steps.split(",") if s] or None
    select_steps(names)  # a mistyped step is refused before Spark starts
    ctx.may_create_warehouse = True  # its first step ingests
    run_daily(
        ctx.spark,
        ctx.lake,
        ctx.config,
        date_,
        steps=names,
        resume=resume,
        echo=click.echo,
        allow_large_change=allow_large_change,
        log_format=log_format,
    )


@pipeline.command("train")
@click.option("--date", "date_", type=DATE, required=True, help="Snapshot date YYYY-MM-DD the models learn from.")
@click.option(
    "--force-promote",
    is_flag=True,
    help="Make every new model version the champion even if its validation metric is worse (logged, tagged).",
)
@pass_ctx
def train(ctx: Context, date_: dt.date, force_promote: bool) -> None:
    """Train (and register) the segment, CLV and recommendation models."""
    from segengine.errors import StepFailed
    from segengine.pipeline.daily import TRAINING_STEPS, run_steps

    kwargs = {"force_promote": True} if force_promote else None
    result = run_steps(ctx.spark, ctx.lake, ctx.config, date_, TRAINING_STEPS, echo=click.echo, step_kwargs=kwargs)
    if result["status"] != "ok":
        failed = next(s for s in result["steps"] if s["status"] == "failed")
        raise StepFailed(f"training failed at {failed['step']}: {failed['message']}")


@pipeline.command("unlock")
@click.option("--date", "date_", type=DATE, required=True, help="Snapshot date YYYY-MM-DD whose lock to free.")
@pass_ctx
def unlock_date(ctx: Context, date_: dt.date) -> None:
    """Free the daily pipeline's lock of a date whose run died (the lock otherwise expires
    pipeline.lock_timeout_minutes after that run's last step)."""
    from segengine.pipeline.lock import unlock

    released = unlock(ctx.lake, "daily", date_)
    if not released:
        click.echo(f"no run holds the daily pipeline lock of {date_}")
    for h in released:
        click.echo(f"released the lock of run {h.run_id} ({h.holder}, since {h.since:%Y-%m-%d %H:%M:%S} UTC)")


@pipeline.command("steps")
def list_steps() -> None:
    """List the pipeline steps in order."""
    from segengine.pipeline.daily import DAILY_STEPS, MAINTENANCE_STEP, SYNC_STEP, TRAINING_STEPS

    for s in DAILY_STEPS:
        click.echo(f"daily    {s.name:22s} {s.description}")
        if s.name == "audiences":
            click.echo(f"daily    {SYNC_STEP.name:22s} {SYNC_STEP.description}, when a destination exists")
    click.echo(f"daily    {MAINTENANCE_STEP.name:22s} {MAINTENANCE_STEP.description}, when maintenance.enabled")
    for s in TRAINING_STEPS:
        click.echo(f"training {s.name:22s} {s.description}")


@cli.command("runs")
@click.option("--date", "date_", type=DATE, default=None, help="Only this snapshot date.")
@click.option("--limit", default=30, show_default=True, help="Rows to show.")
@pass_ctx
def runs(ctx: Context, date_: dt.date | None, limit: int) -> None:
    """Show the run summary table (per step: rows, seconds, status)."""
    from pyspark.sql import functions as F

    df = ctx.lake.read("runs")
    if date_:
        df = df.filter(F.col("snapshot_date") == F.lit(date_))
    df.orderBy(F.col("started_at").desc()).show(limit, truncate=80)


@cli.command("demo")
@click.option("--personas", default=20000, show_default=True, help="Sample personas to generate.")
@click.option("--seed", default=42, show_default=True, help="Generator seed.")
@pass_ctx
def demo(ctx: Context, personas: int, seed: int) -> None:
    """Generate sample data and run the whole pipeline on the embedded default."""
    from segengine.pipeline.demo import run_demo

    ctx.may_create_warehouse = True
    run_demo(ctx.spark, ctx.lake, ctx.config, personas, echo=click.echo, seed=seed)
