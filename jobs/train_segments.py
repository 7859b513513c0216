"""spark-submit entry point: train the RFMT and B2B segment models (MLflow, champion alias) for one date."""

from segengine.pipeline.entry import add_force_promote, job_main
from segengine.pipeline.jobs import run_train_segments_job

if __name__ == "__main__":
    raise SystemExit(job_main("train_segments", run_train_segments_job, needs_date=True, add_args=add_force_promote))
