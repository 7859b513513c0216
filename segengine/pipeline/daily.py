"""The daily pipeline: ingest → features → score → recommendations → audiences → insights.

Every step is idempotent for a snapshot date (it replaces that date's output), so a
rerun never duplicates. Each step's outcome (rows, seconds, status, message) is
appended to the Delta ``runs`` table and printed; ``resume=True`` skips the steps
that already succeeded for that date in the latest run, so a failed run continues
from the step that failed.

Training jobs (segments, CLV, recommendations, propensity) run on their own schedule; scoring
loads the models by their registered alias.

The ``audiences`` step refuses an audience whose refresh would remove more than
``audiences.max_removed_share`` of its members (the step fails, naming it);
``allow_large_change=True`` (``--allow-large-change``) lets such changes through for
one run. A refresh outside the pipeline (:func:`refresh_audiences`: ``segengine
audience refresh``, ``jobs/refresh_audiences.py``) is recorded in ``runs`` as step
``audience_refresh``.

With ``maintenance.enabled`` the run ends with the ``maintenance`` step (OPTIMIZE and
VACUUM of every table, :mod:`segengine.lake.maintenance`), recorded in ``runs`` like the
others; ``--steps maintenance`` runs it alone whatever the setting.
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict

from segengine.errors import SegengineError, StepFailed, did_you_mean

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config
    from segengine.lake import Lake
    from segengine.pipeline.entry import JobContext

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """One pipeline step: a name and the ``module:function`` that runs it."""

    name: str
    target: str  # "package.module:function(spark, lake, config, snapshot_date) -> dict"
    description: str

    def function(self) -> Callable[..., dict[str, Any]]:
        module, func = self.target.split(":")
        fn: Callable[..., dict[str, Any]] = getattr(importlib.import_module(module), func)
        return fn


DAILY_STEPS: tuple[Step, ...] = (
    Step("ingest", "segengine.pipeline.daily:ingest_step", "Load new raw files into bronze Delta tables"),
    Step("features", "segengine.features:compute_features", "Customer feature table for the date"),
    Step("score_segments", "segengine.models.segments:score_segments", "AI segment of every customer"),
    Step("score_clv", "segengine.models.clv:score_clv", "Predicted CLV and its percentile"),
    Step(
        "score_propensity",
        "segengine.models.propensity:score_propensity",
        "Purchase propensity and churn risk (calibrated) and their percentiles",
    ),
    Step("recommendations", "segengine.models.recommend:score_recommendations", "Top 10 products per customer"),
    Step("audiences", "segengine.audiences:refresh_all", "Refresh every dynamic audience"),
    Step("insights", "segengine.pipeline.daily:insights_step", "Insight tables, then the HTML report from them"),
)
TRAINING_STEPS: tuple[Step, ...] = (
    Step("train_segments", "segengine.models.segments:train_segments", "k-means RFMT segments"),
    Step("train_clv", "segengine.models.clv:train_clv", "CLV regressor"),
    Step("train_recommendations", "segengine.models.recommend:train_recommendations", "ALS recommender"),
    Step(
        "train_propensity",
        "segengine.models.propensity:train_propensity",
        "Purchase propensity and churn classifiers",
    ),
)
# Last daily step when ``maintenance.enabled`` (off by default).
MAINTENANCE_STEP = Step(
    "maintenance", "segengine.pipeline.daily:maintenance_step", "OPTIMIZE and VACUUM the tables (maintenance.*)"
)
# Right after ``audiences`` when any destination is registered (nothing to do otherwise).
SYNC_STEP = Step(
    "sync_destinations",
    "segengine.audiences.destinations:sync_step",
    "Send each synced audience's joins and leaves to its destination",
)
STEPS_BY_NAME = {s.name: s for s in DAILY_STEPS + TRAINING_STEPS + (SYNC_STEP, MAINTENANCE_STEP)}


def ingest_step(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """Ingest whatever raw files are new (already-ingested files are skipped)."""
    from segengine.ingest import ingest

    raw_dir = config.ingest.raw_dir or f"{config.warehouse_uri}/raw"
    return ingest(spark, lake, config, raw_dir)


def insights_step(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """Rebuild the insight tables of the date, then write the HTML report from them
    (``insights.report_dir``/``report_name``, the date in the file name)."""
    from segengine.insights import build_insights
    from segengine.insights.report import render_report

    summary = build_insights(spark, lake, config, snapshot_date)
    return {**summary, "report": render_report(spark, lake, config, snapshot_date)}


def maintenance_step(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """OPTIMIZE and VACUUM the tables as ``maintenance:`` configures (retention, Z-order, tables)."""
    from segengine.audiences.destinations import versions_to_keep
    from segengine.lake.maintenance import maintain, totals

    outcomes = maintain(lake, zorder=config.maintenance.zorder, keep_versions=versions_to_keep(spark, lake))
    for outcome in outcomes:
        log.info("%s", outcome.line())
    return {**totals(outcomes), "per_table": [o.as_dict() for o in outcomes]}


def daily_steps(config: Config, names: Sequence[str] | None = None, lake: Lake | None = None) -> list[Step]:
    """The daily steps to run: ``names`` (in the order given), or all of them, with
    ``sync_destinations`` after ``audiences`` when ``lake`` has a destination registry,
    and ``maintenance`` last when ``maintenance.enabled``."""
    steps = select_steps(names)
    if not names and lake is not None and lake.exists("destinations"):
        steps.insert(next(i for i, s in enumerate(steps) if s.name == "audiences") + 1, SYNC_STEP)
    if not names and config.maintenance.enabled:
        steps.append(MAINTENANCE_STEP)
    return steps


# Where each step's summary dict says how many rows it made, first match wins: a number,
# or a dict of numbers (rows per table, customers per segment) summed.
ROW_KEYS = (
    "rows",
    "rows_written",
    "personas",
    "loaded",
    "members",
    "scored",
    "customers_scored",  # score_clv
    "train_customers",  # train_clv
    "train_rows",  # train_propensity
    "users",  # train_recommendations
    "segments",  # train_segments, score_segments: customers per segment
)


def _rows_of(result: Any) -> int | None:
    """The row count of a step's summary dict (None when it says none).

    The audience refresh's summary lists its audiences: the rows are their members.
    """
    if not isinstance(result, dict):
        return None
    for key in ROW_KEYS:
        value = result.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, dict):
            nums = [v for v in value.values() if isinstance(v, int) and not isinstance(v, bool)]
            if nums:
                return sum(nums)
    audiences = result.get("audiences")
    if isinstance(audiences, list) and all(isinstance(a, dict) and "size" in a for a in audiences):
        return sum(int(a["size"]) for a in audiences)
    return None


def _runs_schema() -> str:
    return (
        "run_id string, snapshot_date date, step string, status string, rows long, "
        "seconds double, started_at timestamp, message string, spark_app_id string"
    )


def _record(spark: SparkSession, lake: Lake, rows: list[tuple[Any, ...]]) -> None:
    """Append ``runs`` rows (without the last column), each with the Spark application id.

    The id finds the step's jobs in the Spark UI or history server. A ``runs`` table
    written before that column existed gets it (older rows read NULL).
    """
    app_id = spark.sparkContext.applicationId
    lake.write_rows([(*r, app_id) for r in rows], _runs_schema(), "runs", operation="RUN SUMMARY", evolve_schema=True)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _first_line(text: str | None) -> str:
    return next((line.strip() for line in (text or "").splitlines() if line.strip()), "")


def _error_line(exc: BaseException, limit: int = 500) -> str:
    """``Type: first line of the message``, cut at ``limit`` characters.

    For an error raised in the JVM (py4j's ``Py4JJavaError``, whose own first line is
    "An error occurred while calling o82.filter."), the innermost Java cause instead.
    """
    java = getattr(exc, "java_exception", None)
    if java is not None:
        try:
            cause, seen = java, 0
            while cause.getCause() is not None and seen < 20:
                cause, seen = cause.getCause(), seen + 1
            return f"{cause.getClass().getName()}: {_first_line(cause.getMessage())}"[:limit]
        except Exception:  # noqa: BLE001 - the gateway may be gone; fall back to the Python text
            pass
    return f"{type(exc).__name__}: {_first_line(str(exc))}"[:limit]


AUDIENCE_REFRESH_STEP = "audience_refresh"


def refresh_audiences(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    only: Sequence[str] | None = None,
    allow_large_change: bool | None = None,
) -> dict[str, Any]:
    """Refresh dynamic audiences outside the daily pipeline and record the outcome in ``runs``.

    One ``runs`` row of step ``audience_refresh``: ``ok`` with the members in all the
    refreshed audiences, or ``failed`` with the error's first line (the audiences
    blocked by ``audiences.max_removed_share`` or failed). A date without features is
    refused before the refresh starts and records nothing. The step name is not the
    pipeline's ``audiences``, so ``pipeline daily --resume`` is not affected.

    Args:
        only: audience ids or names (default all dynamic audiences).
        allow_large_change: let refreshes remove any share of the members (default
            ``audiences.allow_large_change``).

    Returns:
        The summary of :func:`segengine.audiences.refresh_all`.
    """
    from segengine.audiences import refresh_all
    from segengine.errors import MissingInput

    started, t0 = _now(), time.time()
    run_id = uuid.uuid4().hex[:12]
    only_list = list(only) if only else None
    try:
        summary = refresh_all(spark, lake, config, snapshot_date, only=only_list, allow_large_change=allow_large_change)
    except MissingInput:
        raise  # refused before it started: nothing is written, not even a run row
    except Exception as exc:
        row: tuple[Any, ...] = (
            run_id,
            snapshot_date,
            AUDIENCE_REFRESH_STEP,
            "failed",
            None,
            round(time.time() - t0, 2),
            started,
        )
        _record(spark, lake, [(*row, _error_line(exc, 2000))])
        raise
    members = sum(int(a["size"]) for a in summary["audiences"])
    row = (run_id, snapshot_date, AUDIENCE_REFRESH_STEP, "ok", members, round(time.time() - t0, 2), started)
    _record(spark, lake, [(*row, "")])
    return summary


def run_refresh_audiences_job(ctx: JobContext) -> dict[str, Any]:
    """``jobs/refresh_audiences.py``: :func:`refresh_audiences` for ``--date``
    (``--audience``, repeatable; ``--allow-large-change``)."""
    only = getattr(ctx.args, "audience", None) or None
    allow = True if getattr(ctx.args, "allow_large_change", False) else None
    return refresh_audiences(ctx.spark, ctx.lake, ctx.config, ctx.date, only=only, allow_large_change=allow)


def completed_steps(spark: SparkSession, lake: Lake, snapshot_date: dt.date) -> set[str]:
    """Steps whose latest outcome for ``snapshot_date`` is ``ok``."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not lake.exists("runs"):
        return set()
    runs = lake.read("runs").filter(F.col("snapshot_date") == F.lit(snapshot_date))
    w = Window.partitionBy("step").orderBy(F.col("started_at").desc())
    latest = runs.withColumn("rn", F.row_number().over(w)).filter("rn = 1 AND status = 'ok'")
    return {r["step"] for r in latest.select("step").collect()}  # a handful of step names


class StepOutcome(TypedDict):
    """One step of a run, as :func:`run_steps` returns it and :func:`step_line` prints it."""

    step: str
    status: str  # ok, failed, skipped or not_run
    rows: int | None
    seconds: float
    message: str
    result: NotRequired[Any]  # the step function's summary, when it ran and succeeded


def run_steps(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    steps: Sequence[Step],
    resume: bool = False,
    echo: Callable[[str], None] = print,
    run_id: str | None = None,
    after_step: Callable[[], None] | None = None,
    log_format: str = "text",
    step_kwargs: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Run ``steps`` in order for ``snapshot_date``; stop at the first failure.

    Every step gets a ``runs`` row: ``ok``, ``failed`` (with the root cause's first
    line), ``skipped`` (``resume`` and already ok) or ``not_run`` (after a failure).
    ``after_step`` is called after each step that ran (the run lock's renewal).
    ``log_format="json"``: one JSON object per finished step (:func:`step_line`), no
    start lines. ``step_kwargs`` go to every step's function (the training steps take
    ``force_promote``).

    Returns:
        ``{"run_id", "status", "steps": [{"step", "status", "rows", "seconds", "message"}]}``.
    """
    run_id = run_id or uuid.uuid4().hex[:12]
    done = completed_steps(spark, lake, snapshot_date) if resume else set()
    summary: list[StepOutcome] = []
    status = "ok"
    outcome: StepOutcome
    for step in steps:
        started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
        if step.name in done:
            outcome = {"step": step.name, "status": "skipped", "rows": None, "seconds": 0.0, "message": "already ok"}
        else:
            spark.sparkContext.setJobDescription(f"segengine {step.name} {snapshot_date}")
            if log_format == "text":
                echo(f"[{run_id}] {step.name}: {step.description} …")
            t0 = time.time()
            try:
                result = step.function()(spark, lake, config, snapshot_date, **(step_kwargs or {}))
                outcome = {
                    "step": step.name,
                    "status": "ok",
                    "rows": _rows_of(result),
                    "seconds": round(time.time() - t0, 2),
                    "message": "",
                    "result": result,
                }
            except Exception as exc:  # noqa: BLE001 - recorded, then re-raised as the run's outcome
                outcome = {
                    "step": step.name,
                    "status": "failed",
                    "rows": None,
                    "seconds": round(time.time() - t0, 2),
                    "message": _error_line(exc),
                }
                log.exception("step %s failed", step.name)
        _record(
            spark,
            lake,
            [
                (
                    run_id,
                    snapshot_date,
                    outcome["step"],
                    outcome["status"],
                    outcome["rows"],
                    float(outcome["seconds"]),
                    started,
                    outcome["message"],
                )
            ],
        )
        echo(step_line(outcome, run_id, snapshot_date, log_format))
        summary.append(outcome)
        if outcome["status"] == "failed":
            status = "failed"
            break
        if after_step is not None and outcome["status"] == "ok":
            after_step()
    not_run = list(steps[len(summary) :])
    if not_run:
        started = _now()
        message = f"not run: step {summary[-1]['step']} failed"
        _record(spark, lake, [(run_id, snapshot_date, s.name, "not_run", None, 0.0, started, message) for s in not_run])
        for s in not_run:
            outcome = {"step": s.name, "status": "not_run", "rows": None, "seconds": 0.0, "message": message}
            echo(step_line(outcome, run_id, snapshot_date, log_format))
            summary.append(outcome)
    spark.sparkContext.setJobDescription(None)  # type: ignore[arg-type]  # None clears it; the stub says str
    return {"run_id": run_id, "snapshot_date": str(snapshot_date), "status": status, "steps": summary}


LOG_FORMATS = ("text", "json")


def step_line(outcome: StepOutcome, run_id: str, snapshot_date: dt.date, log_format: str = "text") -> str:
    """The line a finished step prints: aligned text, or one JSON object for a log collector
    (``step``, ``date``, ``run_id``, ``status``, ``rows``, ``seconds``, ``message``)."""
    if log_format == "json":
        return json.dumps(
            {
                "run_id": run_id,
                "date": str(snapshot_date),
                "step": outcome["step"],
                "status": outcome["status"],
                "rows": outcome["rows"],
                "seconds": outcome["seconds"],
                "message": outcome["message"],
            }
        )
    return (
        f"[{run_id}] {outcome['step']:16s} {outcome['status']:8s} rows={outcome['rows']} "
        f"{outcome['seconds']:.1f}s {outcome['message']}"
    )


def select_steps(names: Sequence[str] | None, pool: Sequence[Step] = DAILY_STEPS) -> list[Step]:
    """The steps named (in pipeline order), or all of ``pool``."""
    if not names:
        return list(pool)
    unknown = [n for n in names if n not in STEPS_BY_NAME]
    if unknown:
        hint = did_you_mean(unknown[0], STEPS_BY_NAME)
        raise SegengineError(f"unknown step(s) {', '.join(unknown)}{hint}; known: {', '.join(STEPS_BY_NAME)}")
    return [STEPS_BY_NAME[n] for n in names]


def run_daily(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    steps: Sequence[str] | None = None,
    resume: bool = False,
    echo: Callable[[str], None] = print,
    allow_large_change: bool = False,
    log_format: str = "text",
) -> dict[str, Any]:
    """Run the scheduled daily steps for ``snapshot_date`` (see module docstring),
    holding the run lock of the date (:mod:`segengine.pipeline.lock`).

    Args:
        allow_large_change: let the ``audiences`` step remove any share of an
            audience's members (``audiences.allow_large_change`` for this run).
        log_format: ``text`` or ``json`` step lines (:func:`step_line`).

    Raises:
        RunLocked: another run of the daily pipeline for this date holds the lock (exit 3).
        StepFailed: a step failed; its ``runs`` row has the cause (exit 1).
    """
    from segengine.pipeline.lock import hold

    if allow_large_change:
        config = config.replace(audiences=config.audiences.replace(allow_large_change=True))
    selected = daily_steps(config, steps, lake)
    with hold(lake, "daily", snapshot_date, config.pipeline.lock_timeout_minutes) as lock:
        result = run_steps(
            spark,
            lake,
            config,
            snapshot_date,
            selected,
            resume=resume,
            echo=echo,
            run_id=lock.run_id,
            after_step=lock.renew_if_due,
            log_format=log_format,
        )
    if result["status"] != "ok":
        failed = next(s for s in result["steps"] if s["status"] == "failed")
        raise StepFailed(
            f"daily pipeline for {snapshot_date} failed at step {failed['step']}: {failed['message']} "
            "(rerun with --resume to continue from there)"
        )
    return result
