"""segengine's model training as an Airflow DAG, weekly: segments, CLV, recommendations, propensity.

Mondays at 06:00 UTC it trains on Sunday's features (``--date`` is the day before the
run), once the daily DAG's run for Sunday has succeeded (the sensor waits up to 12 hours,
rescheduling itself rather than holding a worker slot). Each task runs
``spark-submit jobs/train_<model>.py --date <Sunday>`` with the same settings and retries
as the daily tasks (``segengine_submit``); they run one after the other, as
``segengine pipeline train`` does. Scoring picks a new model up by its registered alias.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk import DAG, CronTriggerTimetable, chain
from segengine_submit import DEFAULT_ARGS, MACROS, SparkJobOperator, command

TRAINING_JOBS = ("train_segments", "train_clv", "train_recommendations", "train_propensity")
FEATURES_DATE = "{{ macros.ds_add(ds, -1) }}"
# The daily run of Sunday has logical date Sunday 00:00; this run's is Monday 06:00.
DAILY_RUN_BEFORE = timedelta(days=1, hours=6)

with DAG(
    dag_id="segengine_training",
    description="segengine weekly training of the segment, CLV, recommendation and propensity models",
    schedule=CronTriggerTimetable("0 6 * * 1", timezone="UTC"),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=36),
    default_args=DEFAULT_ARGS,
    user_defined_macros=MACROS,
    tags=["segengine"],
) as dag:
    daily_done = ExternalTaskSensor(
        task_id="daily_done",
        external_dag_id="segengine_daily",
        external_task_id=None,  # the whole run
        execution_delta=DAILY_RUN_BEFORE,
        allowed_states=["success"],
        failed_states=["failed"],
        mode="reschedule",
        poke_interval=600,
        timeout=12 * 3600,
        retries=0,
    )
    chain(
        daily_done,
        *(SparkJobOperator(task_id=job, bash_command=command(job, ["--date", FEATURES_DATE])) for job in TRAINING_JOBS),
    )
