"""Runs inside the Airflow test environment (``make airflow-env``), never under segengine's.

``tests/deploy/test_airflow_dag.py`` calls it as a subprocess; it prints one JSON object
on its last line of stdout. Actions:

- ``inspect``: the DagBag of ``deploy/airflow`` (import errors, and per DAG its settings and
  tasks) and, for each case of the JSON list in the environment variable ``PROBE_CASES``
  (``{"dag", "task", "date", "variables"}``), the task's bash command and cwd as Airflow
  renders them on that date with those Variables.
- ``run DAG WHEN``: ``dag.test()`` at the logical date WHEN (retry delays cut to a second,
  sensors' timeouts to a minute); each task's state, tries and maximum tries.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from airflow.dag_processing.dagbag import BundleDagBag
from airflow.sdk.execution_time import macros

DAGS = Path(__file__).resolve().parents[2] / "deploy" / "airflow"


def _bag() -> BundleDagBag:
    return BundleDagBag(dag_folder=DAGS, bundle_path=DAGS)


def graph(bag: BundleDagBag) -> dict[str, Any]:
    dags = {
        dag_id: {
            "max_active_runs": dag.max_active_runs,
            "catchup": dag.catchup,
            "timetable": type(dag.timetable).__name__,
            "tasks": {
                t.task_id: {
                    "downstream": sorted(t.downstream_task_ids),
                    "retries": t.retries,
                    "exponential_backoff": t.retry_exponential_backoff,
                    "operator": type(t).__name__,
                }
                for t in dag.tasks
            },
        }
        for dag_id, dag in bag.dags.items()
    }
    return {"import_errors": {Path(k).name: v for k, v in bag.import_errors.items()}, "dags": dags}


def render(bag: BundleDagBag, case: dict[str, Any]) -> dict[str, Any]:
    dag = bag.dags[case["dag"]]
    task = copy.deepcopy(dag.get_task(case["task"]))  # rendering sets the fields it renders
    variables = case.get("variables", {})
    var = SimpleNamespace(value=SimpleNamespace(get=lambda key, default=None: variables.get(key, default)))
    context = {"ds": case["date"], "var": var, "macros": macros, **dag.user_defined_macros}
    task.render_template_fields(context, jinja_env=dag.get_template_env())
    return {"bash_command": task.bash_command, "cwd": task.cwd}


def inspect() -> dict[str, Any]:
    bag = _bag()
    cases = json.loads(os.environ.get("PROBE_CASES", "[]"))
    return {**graph(bag), "rendered": [render(bag, case) for case in cases]}


def run(dag_id: str, when: str) -> dict[str, Any]:
    dag = _bag().dags[dag_id]
    for task in dag.tasks:
        task.retry_delay = dt.timedelta(seconds=1)
        task.max_retry_delay = dt.timedelta(seconds=2)
        if hasattr(task, "poke_interval"):  # a sensor: give up in a minute, not in hours
            task.poke_interval, task.timeout = 5, 60
    logical_date = dt.datetime.fromisoformat(when).replace(tzinfo=dt.UTC)
    dag_run = dag.test(logical_date=logical_date)
    tasks = {
        ti.task_id: {"state": str(ti.state), "try_number": ti.try_number, "max_tries": ti.max_tries}
        for ti in dag_run.get_task_instances()
    }
    return {"state": str(dag_run.state), "tasks": tasks}


def main(argv: list[str]) -> None:
    action, *args = argv
    result = {"inspect": inspect, "run": run}[action](*args)
    print("\n" + json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1:])
