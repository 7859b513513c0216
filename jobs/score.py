"""spark-submit entry point: write AI segments and CLV into the feature table for one date."""

from segengine.pipeline.entry import job_main
from segengine.pipeline.jobs import run_score_job


def _args(parser):
    parser.add_argument("--model", choices=["segments", "clv", "all"], default="all", help="Which model(s) to score")


if __name__ == "__main__":
    raise SystemExit(job_main("score", run_score_job, needs_date=True, add_args=_args))
