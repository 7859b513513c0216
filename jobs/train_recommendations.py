"""spark-submit entry point: train the ALS recommender (evaluate, fit, save, log to MLflow) for one date."""

from segengine.pipeline.entry import add_force_promote, job_main
from segengine.pipeline.jobs import run_train_recommendations_job

if __name__ == "__main__":
    raise SystemExit(
        job_main("train_recommendations", run_train_recommendations_job, needs_date=True, add_args=add_force_promote)
    )
