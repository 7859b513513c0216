"""spark-submit entry point: the scheduled daily pipeline for one snapshot date."""

from segengine.pipeline.entry import job_main


def _args(parser):
    parser.add_argument("--resume", action="store_true", help="Skip steps already ok for this date")
    parser.add_argument("--steps", default="", help="Comma-separated subset of steps")
    parser.add_argument(
        "--allow-large-change",
        action="store_true",
        help="Let the audiences step remove more than audiences.max_removed_share of an audience's members",
    )
    parser.add_argument(
        "--log-format", choices=["text", "json"], default="text", help="Step lines as text or one JSON object per step"
    )


def _run(ctx):
    from segengine.pipeline.daily import run_daily

    steps = [s for s in ctx.args.steps.split(",") if s] or None
    return run_daily(
        ctx.spark,
        ctx.lake,
        ctx.config,
        ctx.snapshot_date,
        steps=steps,
        resume=ctx.args.resume,
        allow_large_change=ctx.args.allow_large_change,
        log_format=ctx.args.log_format,
    )["steps"]


if __name__ == "__main__":
    raise SystemExit(job_main("daily_pipeline", _run, needs_date=True, add_args=_args))
