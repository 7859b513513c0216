"""spark-submit entry point: OPTIMIZE and VACUUM the lake's tables (no date needed)."""

from segengine.pipeline.entry import job_main
from segengine.pipeline.jobs import run_maintenance_job


def _args(parser):
    parser.add_argument("--table", action="append", default=[], help="Only this table; repeatable")
    parser.add_argument("--retention-hours", type=int, default=None, help="VACUUM retention (default 168)")
    parser.add_argument("--force", action="store_true", help="Allow a retention under 168 hours")
    parser.add_argument("--zorder", action="store_true", help="Z-order by maintenance.zorder_by")
    parser.add_argument("--dry-run", action="store_true", help="List what VACUUM would delete; change nothing")


if __name__ == "__main__":
    raise SystemExit(job_main("maintain", run_maintenance_job, needs_date=False, add_args=_args))
