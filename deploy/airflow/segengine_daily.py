"""segengine's daily pipeline as an Airflow DAG: one task per step, one date per run.

Each task runs ``spark-submit jobs/daily_pipeline.py --date {{ ds }} --steps <step> --resume``
(settings: Airflow Variables, see ``segengine_submit.VARIABLES``). The run for date D
starts when D is over (midnight UTC) and ``{{ ds }}`` is D; ``catchup`` runs every missed
date from ``SEGENGINE_START_DATE`` (environment of the scheduler, default 2026-01-01),
oldest first; ``airflow backfill create --dag-id segengine_daily --from-date ... --to-date ...``
reruns a range. One run at a time (``max_active_runs=1``): the steps of one date, and the
dates, rewrite the same tables.

The steps run one after the other, the two scoring steps too: each task takes the date's
run lock, so two tasks of one date side by side would only make one of them exit 3.
Retries: see ``segengine_submit.DEFAULT_ARGS`` (exit 2 fails at once, 1 and 3 are retried).
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, CronDataIntervalTimetable, chain
from segengine_submit import DEFAULT_ARGS, MACROS, SparkJobOperator, command

# `segengine pipeline steps`, daily part, in order; maintenance runs when the Variable
# segengine_maintenance is true (the task is skipped otherwise). sync_destinations sends
# the audiences' joins and leaves to their destinations (nothing when none is defined).
DAILY_STEPS = (
    "ingest",
    "features",
    "score_segments",
    "score_clv",
    "score_propensity",
    "recommendations",
    "audiences",
    "sync_destinations",
    "insights",
    "maintenance",
)
OPTIONAL_STEPS = {"maintenance": "segengine_maintenance"}


def _start_date() -> datetime:
    return datetime.fromisoformat(os.environ.get("SEGENGINE_START_DATE", "2026-01-01"))


with DAG(
    dag_id="segengine_daily",
    description="segengine daily pipeline: ingest to insights for the day just ended",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
    start_date=_start_date(),
    catchup=True,
    max_active_runs=1,
    dagrun_timeout=timedelta(hours=20),
    default_args=DEFAULT_ARGS,
    user_defined_macros=MACROS,
    tags=["segengine"],
) as dag:
    chain(
        *(
            SparkJobOperator(
                task_id=step,
                bash_command=command(
                    "daily_pipeline",
                    ["--date", "{{ ds }}", "--steps", step, "--resume", "--log-format", "json"],
                    only_if=OPTIONAL_STEPS.get(step),
                ),
            )
            for step in DAILY_STEPS
        )
    )
