"""spark-submit entry point: insight tables and the HTML report for one snapshot date."""

from segengine.pipeline.entry import job_main
from segengine.pipeline.jobs import run_insights_job


def _args(parser):
    parser.add_argument("--out", default=None, help="HTML report path (default: <warehouse>/reports/...)")


if __name__ == "__main__":
    raise SystemExit(job_main("build_insights", run_insights_job, needs_date=True, add_args=_args))
