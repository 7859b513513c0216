"""spark-submit entry point: train the CLV regressor on the time split, report holdout metrics, register it."""

from segengine.pipeline.entry import add_force_promote, job_main
from segengine.pipeline.jobs import run_train_clv_job

if __name__ == "__main__":
    raise SystemExit(job_main("train_clv", run_train_clv_job, needs_date=True, add_args=add_force_promote))
