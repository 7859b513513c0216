"""spark-submit entry point: write seeded sample raw files (CSV, Parquet, JSON lines)."""

from segengine.pipeline.entry import job_main
from segengine.pipeline.jobs import add_generate_args, run_generate_job

if __name__ == "__main__":
    raise SystemExit(job_main("generate", run_generate_job, needs_date=False, add_args=add_generate_args))
