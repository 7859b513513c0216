"""spark-submit entry point: refresh every dynamic audience for one snapshot date."""

from segengine.audiences import run_refresh_job
from segengine.pipeline.entry import job_main


def _args(parser):
    parser.add_argument("--audience", action="append", default=[], help="Only this audience (id or name); repeatable")


if __name__ == "__main__":
    raise SystemExit(job_main("refresh_audiences", run_refresh_job, needs_date=True, add_args=_args))
