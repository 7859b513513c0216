"""spark-submit entry point: train the ALS recommender (evaluate, fit, save, log to MLflow) for one date."""

from segengine.models.recommend import run_train_job
from segengine.pipeline.entry import add_force_promote, job_main

if __name__ == "__main__":
    raise SystemExit(job_main("train_recommendations", run_train_job, needs_date=True, add_args=add_force_promote))
