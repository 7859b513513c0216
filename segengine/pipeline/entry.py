"""The one way a spark-submit job starts: arguments, config, session, one call, exit code.

Each ``jobs/*.py`` file is::

    from segengine.pipeline.entry import job_main
    from segengine.pipeline.jobs import run_features_job

    if __name__ == "__main__":
        raise SystemExit(job_main("compute_features", run_features_job, needs_date=True))

``job_main`` parses the common options (``--date``, ``--env``, ``--config``,
``--conf``), builds the config, the SparkSession and the Lake, calls
``run(ctx)`` and turns the outcome into an exit code: 0 on success, 2 with one line
on a :class:`~segengine.errors.SegengineError`, 1 with one line on anything else.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from segengine import dates
from segengine.dates import date_problem
from segengine.errors import SegengineError
from segengine.lake.warehouse import require_warehouse

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

log = logging.getLogger("segengine.job")

# The jobs that load data and so may start a new warehouse; every other job refuses a
# local warehouse folder that does not exist (as the CLI does) instead of creating it.
CREATES_WAREHOUSE = frozenset({"generate", "ingest", "daily_pipeline"})


@dataclass
class JobContext:
    """What a job function receives (the adapters are in :mod:`segengine.pipeline.jobs`)."""

    spark: SparkSession
    config: Config
    lake: Lake
    snapshot_date: dt.date | None
    args: argparse.Namespace
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def date(self) -> dt.date:
        """``--date``, for the jobs started with ``needs_date=True`` (argparse made it required)."""
        if self.snapshot_date is None:
            raise SegengineError("this job needs --date YYYY-MM-DD")
        return self.snapshot_date


def parse_date(text: str) -> dt.date:
    """``--date`` of a job, read by the one date parser of the CLI (:func:`segengine.dates.parse_date`)."""
    problem = date_problem(text)
    if problem is not None:
        raise argparse.ArgumentTypeError(f"expected {problem}")
    return dates.parse_date(text, "--date")


def base_parser(name: str, needs_date: bool) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=name, description=f"segengine job: {name}")
    parser.add_argument("--date", type=parse_date, required=needs_date, help="Snapshot date YYYY-MM-DD")
    parser.add_argument("--env", default=None, help="Config overlay: local or cluster")
    parser.add_argument("--config", action="append", default=[], help="Extra YAML config file")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE", help="Config override")
    return parser


def add_force_promote(parser: argparse.ArgumentParser) -> None:
    """``--force-promote`` for the training jobs (see ``segengine train --help``)."""
    parser.add_argument(
        "--force-promote",
        action="store_true",
        help="make the new model version the champion even if its validation metric is worse (logged, tagged)",
    )


def job_main(
    name: str,
    run: Callable[[JobContext], Any],
    needs_date: bool = True,
    add_args: Callable[[argparse.ArgumentParser], None] | None = None,
    argv: Sequence[str] | None = None,
) -> int:
    """Run one job; return its exit code (see module docstring)."""
    parser = base_parser(name, needs_date)
    if add_args:
        add_args(parser)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        format='{"ts":"%(asctime)s","level":"%(levelname)s","job":"' + name + '","msg":"%(message)s"}',
    )
    started = time.time()
    from segengine.session import quiet_python_logs

    quiet_python_logs()
    try:
        from segengine.config import load_config
        from segengine.lake import Lake
        from segengine.session import build_spark

        config = load_config(args.env, args.config, args.conf)
        if name not in CREATES_WAREHOUSE:
            require_warehouse(config)  # before the session creates the folder
        spark = build_spark(config, app_name=f"segengine-{name}")
        lake = Lake.open(spark, config)
        log.info("start backend=%s date=%s", lake.backend.name, args.date)
        result = run(JobContext(spark, config, lake, args.date, args))
        if result is not None:
            print(
                json.dumps(
                    {"job": name, "status": "ok", "seconds": round(time.time() - started, 1), "result": result},
                    default=str,
                )
            )
        return 0
    except SegengineError as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:  # noqa: BLE001 - the job's last line of defence
        log.exception("job failed")
        print(f"{name}: failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}", file=sys.stderr)
        return 1
