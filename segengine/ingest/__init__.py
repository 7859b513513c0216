"""Ingest: raw CSV / JSON lines / Parquet → validated bronze Delta tables + quarantine.

For each bronze table (``products``, ``personas``, ``order_lines``, ``events``) the
files under ``<raw_dir>/<table>/`` that are not yet in ``ingest_log`` are read as
text, typed with ``try_cast`` and checked against :mod:`segengine.contract`. Good rows
are merged into the bronze table by the contract key (a re-delivered row updates,
never duplicates); bad rows go to ``quarantine`` with file, row, reason and the raw
record. Then the files are recorded in ``ingest_log`` (path, size, modification time)
so a rerun skips them. Every count (in, loaded, quarantined) is returned and logged.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import TYPE_CHECKING, Any

from segengine.contract import contract, spark_schema
from segengine.ingest.sources import list_files, norm_path, one_file_per_partition, read_raw
from segengine.ingest.validate import RAW, REASON, ROW, SOURCE, validate

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

__all__ = ["ingest", "ingest_table", "default_raw_dir", "INGEST_ORDER", "QUARANTINE_SCHEMA", "INGEST_LOG_SCHEMA"]

log = logging.getLogger(__name__)

# Reference data first, facts last (nothing depends on it today, but it reads naturally).
INGEST_ORDER = ("products", "personas", "order_lines", "events", "support_tickets", "survey_responses")
QUARANTINE_SCHEMA = (
    "table_name string, source_file string, row_number bigint, reason string, raw_record string, ingested_at timestamp"
)
INGEST_LOG_SCHEMA = (
    "table_name string, source_file string, size bigint, modification_time timestamp, format string, "
    "rows_in bigint, rows_loaded bigint, rows_quarantined bigint, bronze_version bigint, ingested_at timestamp"
)


def default_raw_dir(config: Config) -> str:
    """``ingest.raw_dir`` or ``<warehouse>/raw``."""
    return (config.ingest.raw_dir or f"{config.warehouse_uri}/raw").rstrip("/")


def file_key(path: str, table: str) -> str:
    """A raw file's name inside its table's folder: the path after the last ``/<table>/``.

    ``ingest_log`` keeps each file's full path, but a file is recognised by this key
    (with its size and modification time), so a warehouse and raw folder copied or
    mounted elsewhere are not ingested a second time.
    """
    normal = norm_path(path)
    marker = f"/{table}/"
    cut = normal.rfind(marker)
    return normal[cut + len(marker) :] if cut >= 0 else normal


def _already_ingested(lake: Lake, table: str) -> set[tuple[str, int, int]]:
    """(file key, size, mtime ms) of the files ``ingest_log`` holds for ``table`` (bounded by files)."""
    from pyspark.sql import functions as F

    if not lake.exists("ingest_log"):
        return set()
    rows = (
        lake.read("ingest_log")
        .filter(F.col("table_name") == table)
        .select("source_file", "size", (F.unix_micros("modification_time") / 1000).cast("long").alias("ms"))
        .collect()
    )
    return {(file_key(r["source_file"], table), int(r["size"]), int(r["ms"])) for r in rows}


def split(validated: DataFrame, table: str, ingested_at: dt.datetime) -> tuple[DataFrame, DataFrame]:
    """Good rows in the bronze schema, and bad rows in the quarantine schema.

    Args:
        validated: output of :func:`segengine.ingest.validate.validate`.
        table: the bronze table name.
        ingested_at: the load's timestamp (UTC).

    Returns:
        ``(bronze_rows, quarantine_rows)``.
    """
    from pyspark.sql import functions as F

    good = validated.filter(F.col(REASON).isNull()).select(*[f.name for f in spark_schema(table).fields])
    bad = validated.filter(F.col(REASON).isNotNull()).select(
        F.lit(table).alias("table_name"),
        F.col(SOURCE).alias("source_file"),
        F.col(ROW).cast("long").alias("row_number"),
        F.col(REASON).alias("reason"),
        F.col(RAW).alias("raw_record"),
        F.lit(ingested_at).cast("timestamp").alias("ingested_at"),
    )
    return good, bad


def ingest_table(spark: SparkSession, lake: Lake, config: Config, table: str, raw_dir: str) -> dict[str, Any]:
    """Ingest the new files of one table from ``<raw_dir>/<table>/``.

    Args:
        spark: the SparkSession.
        lake: where bronze, quarantine and ingest_log live.
        config: the configuration (``ingest.formats``).
        table: one of :data:`INGEST_ORDER`.
        raw_dir: the landing directory.

    Returns:
        ``{"files", "skipped_files", "rows_in", "loaded", "quarantined", "version", "seconds"}``.

    Raises:
        DataContractError: a file lacks a required column (the message names the file).
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    started = time.time()
    tc = contract(table)
    files = list_files(spark, f"{raw_dir}/{table}", list(config.ingest.formats))
    done = _already_ingested(lake, table)
    new = [f for f in files if (file_key(f.path, table), f.size, f.modified_ms) not in done]
    redelivered = bool({file_key(f.path, table) for f in new} & {key for key, _, _ in done})
    result: dict[str, Any] = {
        "files": len(new),
        "skipped_files": len(files) - len(new),
        "rows_in": 0,
        "loaded": 0,
        "quarantined": 0,
    }
    if not new:
        result["version"] = lake.version(table) if lake.exists(table) else None
        result["seconds"] = round(time.time() - started, 2)
        return result
    ingested_at = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with one_file_per_partition(spark):
        validated = validate(read_raw(spark, new, tc), tc).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            per_file = {
                norm_path(r[SOURCE]): (int(r["n"]), int(r["bad"]))
                for r in validated.groupBy(SOURCE)
                .agg(F.count(F.lit(1)).alias("n"), F.sum(F.col(REASON).isNotNull().cast("int")).alias("bad"))
                .collect()
            }
            good, bad = split(validated, table, ingested_at)
            if _partition_cols(table):
                # One file per partition value instead of one per task and value.
                good = good.repartition(*_partition_cols(table))
            if lake.exists(table):
                # evolve_schema: a table loaded before a contract column was added (events.campaign_id) takes it.
                version = lake.merge(good, table, keys=list(tc.key), operation="INGEST", evolve_schema=True)
            else:
                # First load: keys are already unique (flag_duplicates), so skip merge's check.
                version = lake.write(good, table, mode="append", operation="INGEST")
            if any(b for _, b in per_file.values()):
                if redelivered:
                    # The same file again: its old rejections are replaced, not repeated.
                    lake.merge(
                        bad, "quarantine", keys=["table_name", "source_file", "row_number"], operation="QUARANTINE"
                    )
                else:
                    lake.write(bad, "quarantine", mode="append", operation="QUARANTINE")
        finally:
            validated.unpersist()
    log_rows = []
    for f in new:
        n, b = per_file.get(norm_path(f.path), (0, 0))
        log_rows.append(
            (
                table,
                f.path,
                f.size,
                dt.datetime.fromtimestamp(f.modified_ms / 1000, dt.UTC).replace(tzinfo=None),
                f.format,
                n,
                n - b,
                b,
                version,
                ingested_at,
            )
        )
        result["rows_in"] += n
        result["quarantined"] += b
    result["loaded"] = result["rows_in"] - result["quarantined"]
    lake.write_rows(log_rows, INGEST_LOG_SCHEMA, "ingest_log", operation="INGEST LOG")
    result["version"] = version
    result["seconds"] = round(time.time() - started, 2)
    log.info("ingest %s: %s", table, result)
    return result


def _partition_cols(table: str) -> tuple[str, ...]:
    from segengine.lake import TABLES

    spec = TABLES.get(table)
    return spec.partition_by if spec else ()


def require_raw_dir(raw_dir: str) -> None:
    """Refuse a local landing folder that does not exist (a mistyped ``--raw-dir`` loaded
    nothing and exited 0). Remote URIs are listed by Hadoop and not checked here.

    Raises:
        MissingInput: naming the folder.
    """
    from pathlib import Path

    from segengine.errors import MissingInput

    if "://" in raw_dir and not raw_dir.startswith("file:"):
        return
    path = Path(raw_dir.removeprefix("file://").removeprefix("file:")).expanduser()
    if not path.is_dir():
        raise MissingInput(
            f"raw folder {path} does not exist: nothing to ingest (one sub-folder per table, e.g. {path}/order_lines)"
        )


def ingest(spark: SparkSession, lake: Lake, config: Config, raw_dir: str | None = None) -> dict[str, Any]:
    """Validate and load every bronze table's new raw files; quarantine the bad rows.

    Args:
        spark: the SparkSession.
        lake: the Lake.
        config: the configuration.
        raw_dir: landing directory with one sub-directory per table (default :func:`default_raw_dir`).

    Returns:
        ``{"raw_dir", "tables": {table: counts}, "rows_in", "loaded", "quarantined",
        "seconds", "rows_per_second"}``.
    """
    raw_dir = (raw_dir or default_raw_dir(config)).rstrip("/")
    started = time.time()
    tables = {t: ingest_table(spark, lake, config, t, raw_dir) for t in INGEST_ORDER}
    seconds = time.time() - started
    rows_in = sum(t["rows_in"] for t in tables.values())
    return {
        "raw_dir": raw_dir,
        "tables": tables,
        "rows_in": rows_in,
        "loaded": sum(t["loaded"] for t in tables.values()),
        "quarantined": sum(t["quarantined"] for t in tables.values()),
        "seconds": round(seconds, 2),
        "rows_per_second": round(rows_in / seconds, 1) if seconds > 0 else None,
    }
