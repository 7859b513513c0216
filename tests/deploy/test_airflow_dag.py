"""The Airflow DAGs of deploy/airflow, loaded and run by Airflow itself.

Airflow's pins clash with segengine's, so Airflow lives in its own environment
(``make airflow-env`` -> ``.venv-airflow``, pinned by ``deploy/airflow/requirements.txt``
and ``constraints.txt``); each test runs ``tests/deploy/airflow_probe.py`` there as a
subprocess. The run tests replace spark-submit by a stub that records its arguments and
exits with the code planned for each try: no Spark runs here.

Without the environment the tests skip locally and fail in CI (``CI=true``).
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

import pytest

from segengine.pipeline.daily import DAILY_STEPS as PIPELINE_STEPS
from segengine.pipeline.daily import MAINTENANCE_STEP, SYNC_STEP, TRAINING_STEPS

ROOT = Path(__file__).resolve().parents[2]
AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"
PROBE = Path(__file__).with_name("airflow_probe.py")
# The DAGs cannot import segengine; this test can, and holds them to its list of steps.
# The destinations' sync runs every day right after the audiences (a no-op without any).
DAILY_STEPS = [s.name for s in (*PIPELINE_STEPS, MAINTENANCE_STEP)]
DAILY_STEPS.insert(DAILY_STEPS.index("audiences") + 1, SYNC_STEP.name)
TRAINING_JOBS = [s.name for s in TRAINING_STEPS]
STUB = textwrap.dedent(
    """\
    #!/usr/bin/env python3
    # Stands in for spark-submit: records its arguments, exits with the code planned for this try.
    import json, os, sys
    args = sys.argv[1:]
    job = next(a for a in args if a.startswith("jobs/"))[len("jobs/") : -len(".py")]
    step = args[args.index("--steps") + 1] if "--steps" in args else job
    log = os.environ["STUB_LOG"]
    tries = sum(json.loads(line)["step"] == step for line in open(log)) if os.path.exists(log) else 0
    codes = json.loads(os.environ["STUB_CODES"]).get(step, [0])
    code = codes[min(tries, len(codes) - 1)]
    with open(log, "a") as f:
        f.write(json.dumps({"step": step, "cwd": os.getcwd(), "args": args, "code": code}) + "\\n")
    sys.exit(code)
    """
)


def _require(python: Path, ci: bool) -> Path:
    """``python`` if it exists; else the test fails in CI and skips elsewhere, naming the make target."""
    if not python.exists():
        reason = f"the Airflow test environment ({python}) is missing: run make airflow-env"
        if ci:
            pytest.fail(reason)
        pytest.skip(reason)
    return python


@pytest.fixture(scope="module")
def airflow_python() -> Path:
    return _require(AIRFLOW_PYTHON, ci=os.environ.get("CI") == "true")


@pytest.fixture(scope="module")
def airflow_home(airflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An Airflow home with a migrated SQLite metadata database (``dag.test()`` needs one)."""
    home = tmp_path_factory.mktemp("airflow-home")
    airflow = airflow_python.parent / "airflow"
    done = subprocess.run([str(airflow), "db", "migrate"], env=_env(home), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return home


def _env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "SEGENGINE", "PYTHON"))}
    return {
        **env,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "deploy" / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "SEGENGINE_START_DATE": "2025-01-01",
        **extra,
    }


def _probe(airflow_python: Path, home: Path, *args: str, **env: str) -> dict[str, Any]:
    done = subprocess.run(
        [str(airflow_python), str(PROBE), *args],
        env=_env(home, **env),
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


FULL_VARIABLES = {
    "segengine_home": "/srv/segengine",
    "segengine_spark_submit": "env PYSPARK_PYTHON=./env/bin/python /opt/spark/bin/spark-submit",
    "segengine_master": "yarn",
    "segengine_py_files": "dist/segengine.zip",
    "segengine_jars": "a.jar,b.jar",
    "segengine_packages": "io.delta:delta-spark_4.2_2.13:4.4.0",
    "segengine_spark_conf": '{"spark.executor.memory": "4g"}',
    "segengine_spark_args": "--deploy-mode cluster --archives env.tar.gz#env",
    "segengine_env": "cluster",
    "segengine_conf": '{"warehouse": "s3a://bucket/segengine"}',
}
# name -> (dag, task, date, Variables): the commands the inspect fixture renders.
RENDER_CASES = {
    "features": ("segengine_daily", "features", "2025-06-30", {}),
    "features_all_variables": ("segengine_daily", "features", "2025-06-30", FULL_VARIABLES),
    "train_clv": ("segengine_training", "train_clv", "2025-07-07", {}),
    "maintenance_off": ("segengine_daily", "maintenance", "2025-06-30", {}),
    "maintenance_on": ("segengine_daily", "maintenance", "2025-06-30", {"segengine_maintenance": "true"}),
}


@pytest.fixture(scope="module")
def inspected(airflow_python: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The DagBag's import errors and DAGs, and the rendered commands of ``RENDER_CASES`` (one probe)."""
    cases = [{"dag": d, "task": t, "date": day, "variables": v} for d, t, day, v in RENDER_CASES.values()]
    home = tmp_path_factory.mktemp("airflow-inspect")
    result = _probe(airflow_python, home, "inspect", PROBE_CASES=json.dumps(cases))
    return {**result, "rendered": dict(zip(RENDER_CASES, result["rendered"], strict=True))}


@pytest.fixture(scope="module")
def graph(inspected: dict[str, Any]) -> dict[str, Any]:
    return inspected


@pytest.fixture(scope="module")
def rendered(inspected: dict[str, Any]) -> dict[str, dict[str, str]]:
    return inspected["rendered"]


def _run(airflow_python: Path, home: Path, workdir: Path, dag_id: str, when: str, codes: dict[str, list[int]]):
    """``dag.test()`` of ``dag_id`` at ``when`` with the stub as spark-submit, run in ``workdir``:
    the run's result and the stub's calls."""
    stub, log = workdir / "spark-submit-stub", workdir / "calls.jsonl"
    stub.write_text(STUB)
    stub.chmod(0o755)
    result = _probe(
        airflow_python,
        home,
        "run",
        dag_id,
        when,
        STUB_LOG=str(log),
        STUB_CODES=json.dumps(codes),
        AIRFLOW_VAR_SEGENGINE_SPARK_SUBMIT=str(stub),
        AIRFLOW_VAR_SEGENGINE_HOME=str(workdir),
    )
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return result, calls


@pytest.fixture(scope="module")
def sunday_run(airflow_python: Path, airflow_home: Path, tmp_path_factory: pytest.TempPathFactory):
    """The daily DAG for Sunday 2026-01-04; its features step is locked by another run (exit 3),
    then fails (1), then succeeds. Returns the run's result, the stub's calls and the workdir."""
    workdir = tmp_path_factory.mktemp("sunday")
    result, calls = _run(
        airflow_python, airflow_home, workdir, "segengine_daily", "2026-01-04", {"features": [3, 1, 0]}
    )
    return result, calls, workdir


def test_both_dag_files_load_without_import_errors(graph):
    assert graph["import_errors"] == {}
    assert sorted(graph["dags"]) == ["segengine_daily", "segengine_training"]


def test_daily_dag_is_one_chain_of_the_pipeline_steps(graph):
    tasks = graph["dags"]["segengine_daily"]["tasks"]
    assert sorted(tasks) == sorted(DAILY_STEPS)
    for step, following in zip(DAILY_STEPS, DAILY_STEPS[1:] + [None], strict=True):
        assert tasks[step]["downstream"] == ([following] if following else [])
        assert tasks[step]["operator"] == "SparkJobOperator"


def test_daily_dag_runs_one_date_at_a_time_with_catchup_and_retries(graph):
    daily = graph["dags"]["segengine_daily"]
    assert (daily["max_active_runs"], daily["catchup"], daily["timetable"]) == (1, True, "CronDataIntervalTimetable")
    assert {(t["retries"], t["exponential_backoff"]) for t in daily["tasks"].values()} == {(3, 2.0)}


def test_training_dag_waits_for_the_daily_run_then_trains_each_model(graph):
    training = graph["dags"]["segengine_training"]
    tasks = training["tasks"]
    assert (training["max_active_runs"], training["catchup"]) == (1, False)
    order = ["daily_done", *TRAINING_JOBS]
    for task, following in zip(order, order[1:] + [None], strict=True):
        assert tasks[task]["downstream"] == ([following] if following else [])
    assert tasks["daily_done"]["operator"] == "ExternalTaskSensor"
    assert {tasks[j]["retries"] for j in TRAINING_JOBS} == {3}
    assert all((ROOT / "jobs" / f"{job}.py").is_file() for job in TRAINING_JOBS)


def test_rendered_command_with_default_variables(rendered):
    assert rendered["features"] == {
        "bash_command": "spark-submit --py-files dist/segengine.zip jobs/daily_pipeline.py "
        "--date 2025-06-30 --steps features --resume --log-format json --env cluster",
        "cwd": "/opt/segengine",
    }


def test_rendered_command_takes_every_variable(rendered):
    assert rendered["features_all_variables"] == {
        "bash_command": "env PYSPARK_PYTHON=./env/bin/python /opt/spark/bin/spark-submit --master yarn "
        "--py-files dist/segengine.zip --jars a.jar,b.jar --packages io.delta:delta-spark_4.2_2.13:4.4.0 "
        "--conf spark.executor.memory=4g --deploy-mode cluster --archives 'env.tar.gz#env' "
        "jobs/daily_pipeline.py --date 2025-06-30 --steps features --resume --log-format json "
        "--env cluster --conf warehouse=s3a://bucket/segengine",
        "cwd": "/srv/segengine",
    }


def test_training_command_trains_on_the_day_before_the_run(rendered):
    assert rendered["train_clv"]["bash_command"] == (
        "spark-submit --py-files dist/segengine.zip jobs/train_clv.py --date 2025-07-06 --env cluster"
    )


def test_maintenance_runs_only_when_its_variable_is_true(rendered):
    assert rendered["maintenance_off"]["bash_command"] == (
        "echo 'skipped: Variable segengine_maintenance is not true'; exit 99"
    )
    assert rendered["maintenance_on"]["bash_command"] == (
        "spark-submit --py-files dist/segengine.zip jobs/daily_pipeline.py "
        "--date 2025-06-30 --steps maintenance --resume --log-format json --env cluster"
    )


def test_a_date_runs_every_step_in_order_and_retries_locked_and_failed_steps(sunday_run):
    result, calls, workdir = sunday_run
    assert [c["step"] for c in calls] == ["ingest", "features", "features", "features", *DAILY_STEPS[2:-1]]
    assert [c["code"] for c in calls if c["step"] == "features"] == [3, 1, 0]
    assert result["state"] == "success"
    assert result["tasks"]["features"] == {"state": "success", "try_number": 3, "max_tries": 3}
    # The maintenance Variable is unset: its task is skipped.
    assert result["tasks"]["maintenance"]["state"] == "skipped"
    assert {c["cwd"] for c in calls} == {str(workdir)}
    assert calls[0]["args"] == [
        "--py-files",
        "dist/segengine.zip",
        "jobs/daily_pipeline.py",
        "--date",
        "2026-01-04",
        "--steps",
        "ingest",
        "--resume",
        "--log-format",
        "json",
        "--env",
        "cluster",
    ]


def test_bad_input_fails_the_task_at_once_and_stops_the_run(airflow_python, airflow_home, tmp_path):
    result, calls = _run(airflow_python, airflow_home, tmp_path, "segengine_daily", "2026-01-06", {"audiences": [2, 0]})
    assert [c["step"] for c in calls] == DAILY_STEPS[: DAILY_STEPS.index("audiences") + 1]
    assert result["state"] == "failed"
    assert result["tasks"]["audiences"] == {"state": "failed", "try_number": 1, "max_tries": 3}
    assert result["tasks"]["sync_destinations"]["state"] == "upstream_failed"
    assert result["tasks"]["insights"]["state"] == "upstream_failed"
    assert result["tasks"]["maintenance"]["state"] == "upstream_failed"


def test_training_waits_for_sundays_daily_run_then_trains_on_its_features(
    airflow_python, airflow_home, sunday_run, tmp_path
):
    # Monday 06:00 UTC: the sensor finds the daily run of Sunday (sunday_run) done.
    result, calls = _run(airflow_python, airflow_home, tmp_path, "segengine_training", "2026-01-05T06:00:00", {})
    assert result["state"] == "success"
    assert result["tasks"]["daily_done"]["state"] == "success"
    assert [c["step"] for c in calls] == TRAINING_JOBS
    assert [c["args"][2:] for c in calls] == [
        [f"jobs/{job}.py", "--date", "2026-01-04", "--env", "cluster"] for job in TRAINING_JOBS
    ]


def test_a_missing_airflow_environment_fails_in_ci_and_skips_elsewhere(tmp_path):
    missing = tmp_path / "no-venv" / "bin" / "python"
    with pytest.raises(pytest.fail.Exception, match="make airflow-env"):
        _require(missing, ci=True)
    with pytest.raises(pytest.skip.Exception, match="make airflow-env"):
        _require(missing, ci=False)
