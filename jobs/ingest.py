"""spark-submit entry point: validate raw files and load them into the bronze Delta tables."""

from segengine.pipeline.entry import job_main
from segengine.pipeline.jobs import add_ingest_args, run_ingest_job

if __name__ == "__main__":
    raise SystemExit(job_main("ingest", run_ingest_job, needs_date=False, add_args=add_ingest_args))
