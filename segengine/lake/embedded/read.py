"""Reading a Delta snapshot with Spark: exactly the data files the log lists.

:class:`SparkReads` hands a snapshot's (pruned) files to Spark's Parquet reader and
puts back the partition values, and for merges and deletes each row's file, through
a broadcast of the small file list.
"""

from __future__ import annotations

import datetime as dt
import re
import urllib.parse
from typing import TYPE_CHECKING, Any

from segengine.errors import (
    SegengineError,
)
from segengine.lake.deltalog.files import NULL_PARTITION, _join_uri, _range_condition
from segengine.lake.deltalog.snapshot import DeltaLog

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType


PATH_COL = "__segengine_file"


# Scheme and authority stripped from a file URI, leaving its absolute path.
_PATH_RE = r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:(?://[^/]*)?)?(/.*)$"


class SparkReads(DeltaLog):
    """A :class:`DeltaLog` whose snapshots Spark reads."""

    def read(
        self,
        uri: str,
        version: int | None = None,
        timestamp: str | dt.datetime | None = None,
        partitions: dict[str, Any] | None = None,
        with_file_path: bool = False,
        where: dict[str, tuple[Any, Any]] | None = None,
    ) -> DataFrame:
        """Read a snapshot: exactly the data files of that version, via Spark.

        ``partitions`` keeps the files of those partition values (a value or a list of
        values per column). ``where`` maps a column to an inclusive ``(low, high)``
        range (either end may be None): files whose partition value or min/max
        statistics lie outside it are never opened, and the rows are filtered to it.
        """
        from pyspark.sql import functions as F
        from pyspark.sql.types import StructType

        table = self._table(uri, version, timestamp)
        schema = self.spark_schema(uri, table)
        part_cols = list(table.metadata().partition_columns)
        files = self._active_files(table, partitions, where)
        if where:
            unknown = sorted(set(where) - set(schema.fieldNames()))
            if unknown:
                raise SegengineError(f"{uri}: where names unknown column(s) {', '.join(unknown)}")
        data_schema = StructType([f for f in schema.fields if f.name not in part_cols])
        if not files:
            empty = self.spark.createDataFrame([], schema)
            return empty.withColumn(PATH_COL, F.lit(None).cast("string")) if with_file_path else empty
        root = table.table_uri.rstrip("/")
        paths = [_join_uri(root, f["path"]) for f in files]
        df = self.spark.read.schema(data_schema).parquet(*paths)
        need_key = bool(part_cols) or with_file_path
        groups = {tuple(f["partition"].get(c) for c in part_cols) for f in files}
        if part_cols and len(groups) == 1 and not with_file_path:
            # One partition: its values are constants, no per-file mapping needed.
            (values,) = groups
            for col_name, raw in zip(part_cols, values):
                df = df.withColumn(col_name, _partition_literal(raw, schema[col_name].dataType))
        elif need_key:
            df = _with_file_columns(self.spark, df, dict(zip(paths, files)), root, schema, part_cols)
        cols = [c.name for c in schema.fields] + ([PATH_COL] if with_file_path else [])
        out = df.select(*cols)
        for col_name, (low, high) in (where or {}).items():
            out = out.filter(_range_condition(F.col(col_name), low, high))
        return out


def _with_file_columns(
    spark: SparkSession,
    df: DataFrame,
    files: dict[str, dict[str, Any]],
    root: str,
    schema: StructType,
    part_cols: list[str],
) -> DataFrame:
    """``df`` (a Parquet read of ``files``: path handed to Spark -> log entry) with each
    row's partition values and log path.

    Each row's file is matched to its log entry through a broadcast of the (small)
    file list, keyed by the file's URI as Spark renders it in ``_metadata.file_path``:
    what ``DataFrame.inputFiles`` lists, where an empty authority may be spelled
    ``file:///x`` or ``file:/x`` (both are keys, see :func:`_uri_spellings`). The URIs
    are decoded and matched to the log on the driver, once per file, and the
    partition values are typed in that small mapping: the rows themselves only pay
    for one hash lookup (a per-row decode and regex took 4x the scan time of the
    events table). A row whose file is not in the mapping fails the query rather
    than being dropped.
    """
    from pyspark.sql import functions as F

    by_path = {_uri_path(p): f for p, f in files.items()}
    rows = []
    for rendered in df.inputFiles():
        entry = by_path.get(_uri_path(urllib.parse.unquote(rendered)))
        if entry is None:
            raise SegengineError(f"{root}: Spark read a data file the Delta log does not list: {rendered}")
        values = [entry["partition"].get(c) for c in part_cols]
        for key in _uri_spellings(rendered):
            rows.append([key, entry["path"]] + [None if v == NULL_PARTITION else v for v in values])
    mapping = spark.createDataFrame(
        rows, ", ".join(["__file_key string", f"{PATH_COL} string"] + [f"`__p_{c}` string" for c in part_cols])
    ).select(
        "__file_key",
        PATH_COL,
        *[F.col(f"`__p_{c}`").cast(schema[c].dataType).alias(c) for c in part_cols],
    )
    keyed = df.withColumn("__file_key", F.col("_metadata.file_path"))
    joined = keyed.join(F.broadcast(mapping), "__file_key", "left")
    lost = F.raise_error(F.concat(F.lit(f"{root}: no Delta log entry for data file "), F.col("__file_key")))
    # The check sits on a column every such read selects (the first partition column,
    # else the path), so the optimizer cannot prune it.
    guarded = part_cols[0] if part_cols else PATH_COL
    return joined.withColumn(guarded, F.when(F.col(PATH_COL).isNull(), lost).otherwise(F.col(guarded)))


def _uri_path(uri: str) -> str:
    """The absolute path of a (decoded) file URI or path: scheme and authority dropped."""
    match = re.match(_PATH_RE, uri)
    return match.group(1) if match else uri


def _uri_spellings(uri: str) -> list[str]:
    """``uri`` and, with an empty authority, its other spelling (``s:///x`` and ``s:/x``)."""
    scheme, sep, rest = uri.partition(":")
    if not sep or "/" in scheme:
        return [uri]
    if rest.startswith("///"):
        return [uri, f"{scheme}:{rest[2:]}"]
    if rest.startswith("/") and not rest.startswith("//"):
        return [uri, f"{scheme}://{rest}"]
    return [uri]


def _partition_literal(raw: str | None, data_type: Any) -> Any:
    from pyspark.sql import functions as F

    if raw is None or raw == NULL_PARTITION:
        return F.lit(None).cast(data_type)
    return F.lit(raw).cast(data_type)
