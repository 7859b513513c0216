"""spark-submit entry point: refresh every dynamic audience for one snapshot date."""

from segengine.pipeline.daily import run_refresh_audiences_job
from segengine.pipeline.entry import job_main


def _args(parser):
    parser.add_argument("--audience", action="append", default=[], help="Only this audience (id or name); repeatable")
    parser.add_argument(
        "--allow-large-change",
        action="store_true",
        help="Let a refresh remove more than audiences.max_removed_share of an audience's members",
    )


if __name__ == "__main__":
    raise SystemExit(job_main("refresh_audiences", run_refresh_audiences_job, needs_date=True, add_args=_args))
