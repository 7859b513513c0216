"""What segengine's Airflow DAGs share: the spark-submit command, the task operator, retries.

Airflow parses this file (it sits beside the DAG files) but it defines no DAG. It imports
nothing of segengine: the tasks only build ``spark-submit jobs/<job>.py ...`` command lines,
so the Airflow environment needs neither segengine nor pyspark, only a spark-submit.

Settings are Airflow Variables, read when a task runs (never when the file is parsed); an
environment variable ``AIRFLOW_VAR_<NAME>`` (for instance ``AIRFLOW_VAR_SEGENGINE_MASTER``)
stands in for a Variable, as everywhere in Airflow. See :data:`VARIABLES`.

Exit codes of the jobs (README, "Scheduling: exit codes and one run per date"):
0 done; 1 a step failed (retried: the task reruns with ``--resume``); 2 bad input or
configuration (the task fails at once, no retry: a retry cannot help); 3 another run of
the date holds the lock (retried with back-off).
"""

from __future__ import annotations

import json
import os
import shlex
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

# Variable name -> (default, what it sets). Strings are shell words, JSON values objects.
VARIABLES: dict[str, tuple[str, str]] = {
    "segengine_home": ("/opt/segengine", "directory holding jobs/ (and dist/); the tasks run there"),
    "segengine_spark_submit": ("spark-submit", "the spark-submit command (shell words: a path, or `env VAR=... path`)"),
    "segengine_master": ("", "--master (empty: spark-defaults.conf decides)"),
    "segengine_py_files": ("dist/segengine.zip", "--py-files (empty: segengine comes from the cluster image)"),
    "segengine_jars": ("", "--jars, comma-separated"),
    "segengine_packages": ("", "--packages, comma-separated Maven coordinates"),
    "segengine_spark_conf": ("{}", "JSON object of Spark settings, each passed as --conf key=value"),
    "segengine_spark_args": ("", "more spark-submit arguments (shell words, e.g. --deploy-mode cluster)"),
    "segengine_env": ("cluster", "the job's --env config overlay"),
    "segengine_conf": ("{}", "JSON object of segengine settings, each passed to the job as --conf key=value"),
    "segengine_maintenance": ("false", "true: the daily maintenance task runs (OPTIMIZE and VACUUM); else skipped"),
}

Getter = Callable[..., Any]  # Airflow's ``var.value.get(name, default)``

EXIT_OK, EXIT_STEP_FAILED, EXIT_BAD_INPUT, EXIT_LOCKED = 0, 1, 2, 3
EXIT_SKIP = 99  # BashOperator's own "skip" code: the command says the task has nothing to do
EXIT_MEANING = {
    EXIT_STEP_FAILED: "a step failed (its runs row has the cause); retrying with --resume",
    EXIT_BAD_INPUT: "bad input or configuration; not retried",
    EXIT_LOCKED: "another run of this date holds the lock; retrying later",
}

# Retries with exponential back-off: Airflow waits 10-20, 20-40, then 40-80 minutes (a
# jitter fixed per task and date), never over 2 h. Airflow 3 takes the back-off as a
# multiplier: True would mean 1, no back-off at all.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "segengine",
    "retries": 3,
    "retry_delay": timedelta(minutes=10),
    "retry_exponential_backoff": 2.0,
    "max_retry_delay": timedelta(hours=2),
}


def _setting(get: Getter, name: str) -> str:
    return str(get(name, VARIABLES[name][0])).strip()


def _json_object(get: Getter, name: str) -> dict[str, Any]:
    text = _setting(get, name) or "{}"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AirflowFailException(f"Variable {name} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise AirflowFailException(f"Variable {name} must be a JSON object of key: value, got {text!r}")
    return value


def _conf_args(flag: str, settings: dict[str, Any]) -> list[str]:
    return [word for key, value in settings.items() for word in (flag, f"{key}={value}")]


def spark_submit(get: Getter) -> str:
    """The spark-submit part of a task's command (everything before the job file).

    Args:
        get: ``var.value.get`` in a template: ``{{ spark_submit(var.value.get) }}``.

    Returns:
        A shell-quoted command prefix, e.g. ``spark-submit --master yarn --py-files dist/segengine.zip``.
    """
    words = shlex.split(_setting(get, "segengine_spark_submit"))
    for flag, name in (
        ("--master", "segengine_master"),
        ("--py-files", "segengine_py_files"),
        ("--jars", "segengine_jars"),
        ("--packages", "segengine_packages"),
    ):
        if value := _setting(get, name):
            words += [flag, value]
    words += _conf_args("--conf", _json_object(get, "segengine_spark_conf"))
    words += shlex.split(_setting(get, "segengine_spark_args"))
    return shlex.join(words)


def job_args(get: Getter) -> str:
    """The segengine options every job takes (``--env``, ``--conf key=value``), shell-quoted."""
    words = ["--env", env] if (env := _setting(get, "segengine_env")) else []
    words += _conf_args("--conf", _json_object(get, "segengine_conf"))
    return shlex.join(words)


def enabled(get: Getter, name: str) -> bool:
    """A true/false Variable."""
    return _setting(get, name).lower() in ("1", "true", "yes", "on")


MACROS: dict[str, Callable[..., Any]] = {"spark_submit": spark_submit, "job_args": job_args, "enabled": enabled}


def command(job: str, args: Sequence[str], only_if: str | None = None) -> str:
    """The templated bash command of a task: ``spark-submit ... jobs/<job>.py <args> --env ... --conf ...``.

    Args:
        job: the file under ``jobs/``, e.g. ``daily_pipeline``.
        args: the job's own arguments (templates allowed, e.g. ``{{ ds }}``).
        only_if: a true/false Variable; when false the command exits 99 and the task is skipped.
    """
    line = f"{{{{ spark_submit(var.value.get) }}}} jobs/{job}.py {' '.join(args)} {{{{ job_args(var.value.get) }}}}"
    if only_if is None:
        return line
    skip = f"echo 'skipped: Variable {only_if} is not true'; exit {EXIT_SKIP}"
    return f"{{% if enabled(var.value.get, '{only_if}') %}}{line}{{% else %}}{skip}{{% endif %}}"


class SparkJobOperator(BashOperator):
    """Runs one segengine job through spark-submit; turns its exit code into the task's outcome.

    Exit 2 (bad input or configuration) raises ``AirflowFailException``: the task fails
    without its retries. Every other non-zero code raises ``AirflowException`` (retried),
    99 skips. The command runs in the Variable ``segengine_home``.
    """

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("cwd", "{{ var.value.get('segengine_home', '" + VARIABLES["segengine_home"][0] + "') }}")
        kwargs.setdefault("skip_on_exit_code", EXIT_SKIP)
        super().__init__(**kwargs)

    def execute(self, context: Any) -> str:
        if not os.path.isdir(self.cwd or ""):
            raise AirflowFailException(
                f"segengine_home {self.cwd!r} is not a directory (Airflow Variable segengine_home)"
            )
        result = self.subprocess_hook.run_command(
            command=["bash", "-c", self.bash_command],
            env=self.get_env(context),
            output_encoding=self.output_encoding,
            cwd=self.cwd,
        )
        return outcome(result.exit_code, result.output)


def outcome(exit_code: int, output: str) -> str:
    """The task's result for a job's exit code: its last output line, or the exception to raise."""
    if exit_code == EXIT_OK:
        return output
    if exit_code == EXIT_SKIP:
        raise AirflowSkipException(f"exit {exit_code}: {output}")
    meaning = EXIT_MEANING.get(exit_code, "unexpected exit code; retrying")
    message = f"segengine job exited {exit_code}: {meaning}" + (f". Last line: {output}" if output else "")
    if exit_code == EXIT_BAD_INPUT:
        raise AirflowFailException(message)
    raise AirflowException(message)
