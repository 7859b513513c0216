"""spark-submit entry point: the customer feature table for one snapshot date."""

from segengine.features import run_features_job
from segengine.pipeline.entry import job_main

if __name__ == "__main__":
    raise SystemExit(job_main("compute_features", run_features_job, needs_date=True))
