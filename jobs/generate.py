"""spark-submit entry point: write seeded sample raw files (CSV, Parquet, JSON lines)."""

from segengine.ingest.job import add_generate_args, run_generate_job
from segengine.pipeline.entry import job_main

if __name__ == "__main__":
    raise SystemExit(job_main("generate", run_generate_job, needs_date=False, add_args=add_generate_args))
