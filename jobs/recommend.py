"""spark-submit entry point: write the top products per persona to the recommendations table for one date."""

from segengine.pipeline.entry import job_main
from segengine.pipeline.jobs import run_recommend_job

if __name__ == "__main__":
    raise SystemExit(job_main("recommend", run_recommend_job, needs_date=True))
