"""spark-submit entry point: train the purchase propensity and churn risk classifiers, report holdout metrics, register them."""

from segengine.pipeline.entry import add_force_promote, job_main
from segengine.pipeline.jobs import run_train_propensity_job

if __name__ == "__main__":
    raise SystemExit(
        job_main("train_propensity", run_train_propensity_job, needs_date=True, add_args=add_force_promote)
    )
