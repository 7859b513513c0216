"""spark-submit entry point: train the CLV regressor on the time split, report holdout metrics, register it."""

from segengine.models.clv import run_train_job
from segengine.pipeline.entry import add_force_promote, job_main

if __name__ == "__main__":
    raise SystemExit(job_main("train_clv", run_train_job, needs_date=True, add_args=add_force_promote))
