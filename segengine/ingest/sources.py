"""Finding raw files and reading them as all-string records with file and row.

Files are listed with the Hadoop FileSystem of the session, so a landing directory
can be local or on any Hadoop URI. Every reader yields the contract's columns as
strings plus ``_corrupt_record`` (an unparseable line), ``_source_file`` and
``_row`` (1-based record number in its file: data rows after the CSV header, lines of
JSON, rows of Parquet).

Row numbers come from ``monotonically_increasing_id`` right after the scan, which
counts rows per partition. :func:`one_file_per_partition` makes Spark put exactly one
unsplit file in each scan partition, so that counter is the row number in the file.
"""

from __future__ import annotations

import contextlib
import csv
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from segengine.contract import TableContract
from segengine.errors import DataContractError
from segengine.ingest.validate import CORRUPT, ROW, SOURCE
from segengine.session import jvm_of

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

EXTENSIONS = {".csv": "csv", ".json": "json", ".jsonl": "json", ".ndjson": "json", ".parquet": "parquet"}


@dataclass(frozen=True)
class RawFile:
    """One raw file as listed: its path, size and modification time (ms)."""

    path: str
    size: int
    modified_ms: int
    format: str


def norm_path(path: str) -> str:
    """A comparable form of a file path: URL-decoded, ``file:`` scheme dropped."""
    p = urllib.parse.unquote(path)
    if p.startswith("file:"):
        p = "/" + p[len("file:") :].lstrip("/")
    return p


def list_files(spark: SparkSession, directory: str, formats: list[str]) -> list[RawFile]:
    """Data files under ``directory`` (recursive), sorted by path; hidden and ``_`` files skipped.

    Args:
        spark: the SparkSession (its Hadoop configuration reaches the storage).
        directory: local path or Hadoop URI.
        formats: accepted formats (``csv``, ``json``, ``parquet``).

    Returns:
        The files; an absent directory gives an empty list.
    """
    jvm = _jvm(spark)
    root = jvm.org.apache.hadoop.fs.Path(directory)
    fs = root.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    if not fs.exists(root):
        return []
    out = []
    it = fs.listFiles(root, True)
    while it.hasNext():
        status = it.next()
        name = status.getPath().getName()
        if name.startswith((".", "_")):
            continue
        ext = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
        fmt = EXTENSIONS.get(ext)
        if fmt and fmt in formats:
            out.append(
                RawFile(status.getPath().toString(), int(status.getLen()), int(status.getModificationTime()), fmt)
            )
    return sorted(out, key=lambda f: f.path)


def _jvm(spark: SparkSession) -> Any:
    """The py4j gateway to Hadoop's FileSystem (a classic session has one; Spark Connect does not)."""
    return jvm_of(spark, "listing raw files")


def _first_line(spark: SparkSession, path: str) -> str:
    jvm = _jvm(spark)
    hpath = jvm.org.apache.hadoop.fs.Path(path)
    fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())
    reader = jvm.java.io.BufferedReader(jvm.java.io.InputStreamReader(fs.open(hpath), "UTF-8"))
    try:
        return (reader.readLine() or "").lstrip("\ufeff")
    finally:
        reader.close()


@contextlib.contextmanager
def one_file_per_partition(spark: SparkSession) -> Iterator[None]:
    """While active, every file scan puts exactly one whole file in each partition.

    Spark packs files into a partition until ``maxPartitionBytes`` is reached,
    counting ``openCostInBytes`` per file; with both huge, no file is split and no
    two files share a partition. (Parallelism is then the number of files, which is
    how raw deliveries arrive: many part files.)
    """
    keys = ("spark.sql.files.maxPartitionBytes", "spark.sql.files.openCostInBytes")
    old = {k: spark.conf.get(k, None) for k in keys}
    huge = str(1 << 50)
    for k in keys:
        spark.conf.set(k, huge)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                spark.conf.unset(k)
            else:
                spark.conf.set(k, v)


def _with_position(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    # One file per partition (see one_file_per_partition): the id counts rows in the file.
    row = F.monotonically_increasing_id() - F.spark_partition_id().cast("long") * F.lit(1 << 33) + F.lit(1)
    return df.withColumn(SOURCE, F.col("_metadata.file_path")).withColumn(ROW, row)


def _select_contract(df: DataFrame, tc: TableContract, present: set[str]) -> DataFrame:
    from pyspark.sql import functions as F

    cols = [
        F.col(f"`{c.name}`").cast("string").alias(c.name)
        if c.name in present
        else F.lit(None).cast("string").alias(c.name)
        for c in tc.columns
    ]
    corrupt = F.col(CORRUPT) if CORRUPT in df.columns else F.lit(None).cast("string")
    return df.select(*cols, corrupt.alias(CORRUPT), SOURCE, ROW)


def _header(spark: SparkSession, path: str) -> tuple[str, ...]:
    line = _first_line(spark, path)
    fields = next(csv.reader([line])) if line else []
    return tuple(f.strip().lower() for f in fields)


def read_csv(spark: SparkSession, files: list[RawFile], tc: TableContract) -> list[DataFrame]:
    """CSV with a header: one read per distinct header; a missing required column is an error."""
    from pyspark.sql.types import StringType, StructField, StructType

    groups: dict[tuple[str, ...], list[str]] = {}
    for f in files:
        header = _header(spark, f.path)
        missing = [c.name for c in tc.columns if c.required and c.name not in header]
        if missing:
            raise DataContractError(
                f"{f.path}: the header lacks required column(s) {', '.join(missing)} of table {tc.name} "
                f"(header: {', '.join(header) or 'empty'})"
            )
        groups.setdefault(header, []).append(f.path)
    out = []
    for header, paths in groups.items():
        # Named by the header, in its order: Spark's CSV schema is positional.
        names = [h if h else f"_unnamed_{i}" for i, h in enumerate(header)]
        schema = StructType([StructField(n, StringType()) for n in names] + [StructField(CORRUPT, StringType())])
        df = (
            spark.read.schema(schema)
            .option("header", True)
            .option("mode", "PERMISSIVE")
            .option("columnNameOfCorruptRecord", CORRUPT)
            .option("ignoreLeadingWhiteSpace", False)
            .option("ignoreTrailingWhiteSpace", False)
            .csv(paths)
        )
        out.append(_select_contract(_with_position(df), tc, set(names)))
    return out


def read_json(spark: SparkSession, files: list[RawFile], tc: TableContract) -> list[DataFrame]:
    """JSON lines with an all-string schema: numbers and booleans arrive as their text."""
    from pyspark.sql.types import StringType, StructField, StructType

    schema = StructType([StructField(c.name, StringType()) for c in tc.columns] + [StructField(CORRUPT, StringType())])
    df = (
        spark.read.schema(schema)
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .json([f.path for f in files])
    )
    return [_select_contract(_with_position(df), tc, {c.name for c in tc.columns})]


def read_parquet(spark: SparkSession, files: list[RawFile], tc: TableContract) -> list[DataFrame]:
    """Parquet, typed or not: every column cast to text, then checked like the others.

    The files are read as one when their schemas merge. Files whose column types
    conflict (``quantity`` int in one, double in another: Spark's CANNOT_MERGE_SCHEMAS)
    are read one by one instead: every column becomes text anyway, so each value is
    then checked against the contract like any other.
    """
    try:
        frames = [(files[0].path, spark.read.option("mergeSchema", True).parquet(*[f.path for f in files]))]
    except Exception as exc:  # noqa: BLE001 - pyspark raises its own wrappers of the JVM error
        if "CANNOT_MERGE" not in str(exc) and "Failed to merge" not in str(exc):
            raise
        frames = [(f.path, spark.read.parquet(f.path)) for f in files]
    out = []
    for path, df in frames:
        present = {c.lower() for c in df.columns}
        missing = [c.name for c in tc.columns if c.required and c.name not in present]
        if missing:
            raise DataContractError(f"{path}: lacks required column(s) {', '.join(missing)} of table {tc.name}")
        out.append(_select_contract(_with_position(df), tc, present))
    return out


READERS = {"csv": read_csv, "json": read_json, "parquet": read_parquet}


def read_raw(spark: SparkSession, files: list[RawFile], tc: TableContract) -> DataFrame:
    """All files of one table, whatever their formats, as one all-string DataFrame.

    Args:
        spark: the SparkSession.
        files: the files to read (see :func:`list_files`).
        tc: the table's contract.

    Returns:
        The contract columns as strings plus ``_corrupt_record``, ``_source_file``, ``_row``.

    Raises:
        DataContractError: a file lacks a required column (named with the file).
    """
    parts: list[DataFrame] = []
    for fmt in ("csv", "json", "parquet"):
        chosen = [f for f in files if f.format == fmt]
        if chosen:
            parts.extend(READERS[fmt](spark, chosen, tc))
    if not parts:
        raise DataContractError(f"no raw files to read for table {tc.name}")
    df = parts[0]
    for part in parts[1:]:
        df = df.unionByName(part)
    return df
