"""spark-submit entry point: write the top products per persona to the recommendations table for one date."""

from segengine.models.recommend import run_score_job
from segengine.pipeline.entry import job_main

if __name__ == "__main__":
    raise SystemExit(job_main("recommend", run_score_job, needs_date=True))
