"""Embedded Delta backend: delta-rs keeps the log, Spark moves the data.

The Delta transaction log is read and committed with the ``deltalake`` package
(delta-rs); the Parquet data files are scanned and written by Spark's own Parquet
reader and writer, in parallel on the executors. Nothing that scales with rows goes
through the driver: the driver only handles the list of data files.

Reads resolve a snapshot (latest, a version or a timestamp) to its list of data
files and hand exactly those to Spark. Writes go in two phases:

1. Spark writes new Parquet files into a fresh directory ``data/<write-id>/`` inside
   the table. Nothing references them yet, so readers cannot see them.
2. One Delta commit adds them (and removes replaced files). The commit is atomic:
   if anything fails before it, the table stays at its previous version and the
   orphaned files are left for ``VACUUM``. A schema change (``evolve_schema``) is in
   that same commit.

Isolation is Delta's WriteSerializable, checked here rather than by delta-rs (whose
rebase-and-retry of a hand-made transaction does not know what the operation read):
every write remembers the version it planned on and the slice of the table it read
or replaces (nothing for a blind append, the replaced partitions of a partition
overwrite, the ``within`` slice of a merge, the whole table otherwise). Before it
commits it reads every commit made since (their add and remove actions), and fails
with :class:`~segengine.errors.WriteConflict` when one added or removed a file in
that slice, removed a file this write removes, or changed the table's metadata or
protocol. delta-rs commits with no retries of its own, so a race for the next
version is lost cleanly and checked again. A merge or a delete re-plans from the
fresh snapshot instead of failing (their result depends only on the table and the
source); an overwrite's rows were fixed by the caller, so it fails.

Before any commit the rows are checked against what the table declares: CHECK
constraints (``delta.constraints.*``), column invariants (``delta.invariants``),
NOT NULL columns and generated columns (computed when the data lacks them). A
violation is a :class:`~segengine.errors.ConstraintViolation` naming the rule and
showing the row. ``delta.appendOnly`` refuses removes; a table with the change data
feed on refuses writes that remove files (no ``_change_data`` files are written);
identity columns and unlisted writer features are refused with
:class:`~segengine.errors.TableFeatureUnsupported`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import re
import time
import urllib.parse
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from segengine.errors import (
    ConstraintViolation,
    SchemaMismatch,
    SegengineError,
    TableFeatureUnsupported,
    TableNotFound,
    WriteConflict,
)
from segengine.lake.jvm import outside_within

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)

# Reader features whose semantics this backend honours. Anything else (deletion
# vectors, column mapping, type widening, variant, …) is refused, never misread.
SUPPORTED_READER_FEATURES = {"timestampNtz", "v2Checkpoint", "vacuumProtocolCheck"}
# Writer features: appendOnly (removes refused), invariants / checkConstraints /
# generatedColumns (enforced on the rows, see _enforce), changeDataFeed (only writes
# that remove no file: appends need no _change_data files). inCommitTimestamp is not
# here: delta-rs 1.6.6 refuses to commit to such a table.
SUPPORTED_WRITER_FEATURES = SUPPORTED_READER_FEATURES | {
    "appendOnly",
    "invariants",
    "checkConstraints",
    "changeDataFeed",
    "generatedColumns",
    "columnInvariants",
    "domainMetadata",
}
PATH_COL = "__segengine_file"
NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"
# Scheme and authority stripped from a file URI, leaving its absolute path.
_PATH_RE = r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:(?://[^/]*)?)?(/.*)$"
# Prefix of the raise_error messages of the row checks, found again in Spark's error.
_VIOLATION_MARK = "SEGENGINE_CONSTRAINT_VIOLATION: "

# Test seam: when set, called as ``before_commit(uri, read_version)`` after a write's
# data files exist and before its first commit attempt. The two-process concurrency
# tests (tests/lake/test_concurrency.py) hold both writers here on a file barrier, so
# both have planned on the same snapshot before either commits. None in production.
before_commit: Callable[[str, int], None] | None = None


@dataclass(frozen=True)
class _Reads:
    """What a write read or replaces, checked against the commits made since it planned.

    ``blind`` (an append): nothing; ``whole``: every file; otherwise the files whose
    partition values lie in ``slice`` (column -> accepted value strings). ``removes``
    are the paths this write removes: a concurrent remove of one is always a conflict.
    """

    blind: bool = False
    whole: bool = False
    slice: dict[str, frozenset[str | None]] | None = None
    removes: frozenset[str] = frozenset()

    def covers(self, partition_values: dict[str, Any]) -> bool:
        if self.blind:
            return False
        if self.whole or not self.slice:
            return True
        return all(partition_values.get(c) in values for c, values in self.slice.items())

    def describe(self) -> str:
        if self.blind:
            return "appends"
        if self.whole or not self.slice:
            return "reads the whole table"
        shown = ", ".join(f"{c} in {sorted(v, key=str)}" for c, v in self.slice.items())
        return f"reads {shown}"


def _slice_of(values: dict[str, Any]) -> dict[str, frozenset[str | None]]:
    """``{column: accepted partition strings}`` for a ``partitions``/``within`` mapping."""
    return {c: frozenset(_partition_values(v)) for c, v in values.items()}


def _now_ms() -> int:
    return int(time.time() * 1000)


def _strip_file_scheme(uri: str) -> str:
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if uri.startswith("file:"):
        return uri[len("file:") :]
    return uri


def _check_unique_keys(uri: str, keys: list[str], repeated: list[Any]) -> None:
    """Raise when the merge source repeats a key (``repeated``: the key values found, if any)."""
    if repeated:
        values = list(repeated[0])[: len(keys)]
        raise SegengineError(f"{uri}: merge source has more than one row for key {dict(zip(keys, values))}")


class EmbeddedBackend:
    """Delta tables through delta-rs (log) + Spark (Parquet data)."""

    name = "embedded"

    def __init__(self, spark: SparkSession, storage_options: dict[str, str] | None = None, commit_retries: int = 5):
        self.spark = spark
        self.storage_options = dict(storage_options or {})
        self.commit_retries = commit_retries

    # ------------------------------------------------------------ snapshot

    def _delta_uri(self, uri: str) -> str:
        return _strip_file_scheme(uri)

    def exists(self, uri: str) -> bool:
        from deltalake import DeltaTable

        return DeltaTable.is_deltatable(self._delta_uri(uri), storage_options=self.storage_options or None)

    def _table(self, uri: str, version: int | None = None, timestamp: str | dt.datetime | None = None):
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            table = DeltaTable(self._delta_uri(uri), storage_options=self.storage_options or None)
        except TableNotFoundError as exc:
            raise TableNotFound(f"no Delta table at {uri}") from exc
        if version is not None:
            try:
                table.load_as_version(version)
            except Exception as exc:  # delta-rs raises several types here
                raise TableNotFound(f"{uri}: version {version} does not exist ({exc})") from exc
        elif timestamp is not None:
            try:
                table.load_as_version(timestamp)
            except Exception as exc:
                raise TableNotFound(f"{uri}: no version at or before {timestamp} ({exc})") from exc
        self._check_features(uri, table)
        return table

    def _check_features(self, uri: str, table: Any, writing: bool = False) -> None:
        proto = table.protocol()
        reader_features = set(proto.reader_features or [])
        writer_features = set(proto.writer_features or [])
        config = table.metadata().configuration or {}
        mode = config.get("delta.columnMapping.mode", "none")
        if mode and mode != "none":
            raise TableFeatureUnsupported(
                f"{uri}: column mapping (mode {mode}) is not supported by the embedded Delta backend; "
                "use the JVM connector (delta.backend=jvm)"
            )
        if proto.min_reader_version > 3:
            raise TableFeatureUnsupported(
                f"{uri}: reader protocol version {proto.min_reader_version} is newer than the embedded backend reads"
            )
        unsupported = sorted(reader_features - SUPPORTED_READER_FEATURES)
        if proto.min_reader_version == 2:
            # Reader v2 exists only for column mapping (checked above).
            pass
        if unsupported:
            raise TableFeatureUnsupported(
                f"{uri}: uses Delta reader feature(s) {', '.join(unsupported)} that the embedded backend "
                "cannot honour; use the JVM connector (delta.backend=jvm)"
            )
        if writing:
            unsupported_w = sorted(writer_features - SUPPORTED_WRITER_FEATURES - reader_features)
            if unsupported_w or proto.min_writer_version > 7:
                raise TableFeatureUnsupported(
                    f"{uri}: uses Delta writer feature(s) {', '.join(unsupported_w) or proto.min_writer_version} "
                    "that the embedded backend cannot write"
                )
            if config.get("delta.enableDeletionVectors", "false").lower() == "true":
                raise TableFeatureUnsupported(f"{uri}: deletion vectors are enabled; the embedded backend cannot write")
            # Legacy protocols (writer version 6) imply identity columns without listing them.
            identity = [
                f.name for f in table.schema().fields if any(k.startswith("delta.identity.") for k in f.metadata)
            ]
            if identity:
                raise TableFeatureUnsupported(
                    f"{uri}: identity column(s) {', '.join(identity)} need the writer to generate values; "
                    "the embedded backend cannot write them (use delta.backend=jvm)"
                )

    def _log(self, uri: str) -> Any:
        """The table's log without its file list or feature checks: enough for the
        version, partition columns and history, whichever writer made the table."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self._delta_uri(uri), storage_options=self.storage_options or None, without_files=True)
        except TableNotFoundError as exc:
            raise TableNotFound(f"no Delta table at {uri}") from exc

    def version(self, uri: str) -> int:
        return self._log(uri).version()

    def spark_schema(self, uri: str, table: Any = None) -> StructType:
        from pyspark.sql.pandas.types import from_arrow_schema

        table = table or self._table(uri)
        return from_arrow_schema(_arrow_schema(table.schema()))

    def partition_columns(self, uri: str) -> list[str]:
        return list(self._log(uri).metadata().partition_columns)

    def history(self, uri: str, limit: int | None = None) -> list[dict[str, Any]]:
        return self._log(uri).history(limit)

    # ------------------------------------------------------------ read

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

    def files(
        self,
        uri: str,
        version: int | None = None,
        partitions: dict[str, Any] | None = None,
        where: dict[str, tuple[Any, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        """The data files a read with these arguments hands to Spark (after pruning).

        Each file is ``{"path", "partition", "size", "min", "max"}`` (``min``/``max``:
        the per-column statistics of the log, empty when the writer recorded none).
        """
        return self._active_files(self._table(uri, version), partitions, where)

    def changed_files(self, uri: str, since_version: int, version: int | None = None) -> dict[str, list[dict]]:
        """Files the commits after ``since_version`` up to ``version`` (default latest)
        added or removed with a change of data.

        Read from each commit's log entry (bounded by files, not rows). A file rewritten
        by a merge shows up as one removed and one added file; what OPTIMIZE (and any
        other ``dataChange=false`` commit) rewrote is left out, since its rows did not
        change. A file added and removed inside the range is listed in both.

        Returns:
            ``{"added": [file, ...], "removed": [file, ...]}`` in the format of :meth:`files`
            (a removed file's statistics are those of its add action).

        Raises:
            TableNotFound: a version in the range cannot be read (its log entry is gone).
        """
        from deltalake.fs import DeltaStorageHandler

        log = self._log(uri)
        end = log.version() if version is None else version
        if end <= since_version:
            return {"added": [], "removed": []}
        before = {f["path"]: f for f in self._active_files(self._table(uri, since_version), None)}
        typed = _typed_stat_columns(log.schema())
        part_cols = list(log.metadata().partition_columns)
        handler = DeltaStorageHandler(log.table_uri, self.storage_options or None)
        added: dict[str, dict[str, Any]] = {}
        removed: dict[str, dict[str, Any]] = {}
        for number in range(since_version + 1, end + 1):
            actions = _commit_actions(handler, number)
            if actions is None:
                raise TableNotFound(f"{uri}: the log entry of version {number} cannot be read")
            for action in actions:
                for kind in ("add", "remove"):
                    entry = action.get(kind)
                    if not entry or entry.get("dataChange") is False:
                        continue
                    path = urllib.parse.unquote(entry["path"])
                    if kind == "add":
                        added[path] = _logged_file(path, entry, part_cols, typed)
                    else:
                        removed[path] = (
                            before.get(path) or added.get(path) or _logged_file(path, entry, part_cols, typed)
                        )
        return {
            "added": [added[p] for p in sorted(added)],
            "removed": [removed[p] for p in sorted(removed)],
        }

    def _active_files(
        self,
        table: Any,
        partitions: dict[str, Any] | None,
        where: dict[str, tuple[Any, Any]] | None = None,
    ) -> list[dict[str, Any]]:
        import pyarrow as pa

        actions = pa.table(table.get_add_actions(flatten=False)).to_pylist()
        part_cols = list(table.metadata().partition_columns)
        if any(a.get("deletion_vector") for a in actions if isinstance(a, dict)):
            raise TableFeatureUnsupported(f"{table.table_uri}: has deletion vectors; use the JVM connector")
        files = []
        wanted = {k: _partition_values(v) for k, v in (partitions or {}).items()}
        unknown = sorted(set(wanted) - set(part_cols))
        if unknown:
            raise SegengineError(f"{table.table_uri}: {', '.join(unknown)} is not a partition column (has {part_cols})")
        for a in actions:
            pv = {c: (a.get("partition") or {}).get(c) for c in part_cols}
            pv = {c: (None if v is None else _partition_string(v)) for c, v in pv.items()}
            if any(pv.get(k) not in v for k, v in wanted.items()):
                continue
            info = {
                "path": a["path"],
                "partition": pv,
                "size": a.get("size_bytes"),
                "min": dict(a.get("min") or {}),
                "max": dict(a.get("max") or {}),
            }
            if where and not all(
                _may_overlap(info, a.get("partition") or {}, c, lo, hi) for c, (lo, hi) in where.items()
            ):
                continue
            files.append(info)
        return files

    def read_rows(self, uri: str, version: int | None = None) -> list[dict[str, Any]]:
        """Every row of a small table (a registry) as dicts, read by delta-rs with no Spark job.

        Values come out as ``DataFrame.collect()`` gives them: dates as dates,
        timestamps as naive datetimes in the local time zone.
        """
        import pyarrow as pa

        table = self._table(uri, version)
        data = table.to_pyarrow_table()
        columns = []
        for field, column in zip(data.schema, data.columns):
            if pa.types.is_timestamp(field.type):
                column = column.cast(pa.timestamp("us", tz="UTC"))
            columns.append(column)
        data = pa.Table.from_arrays(columns, names=data.schema.names)
        rows = data.to_pylist()
        for row in rows:
            for key, value in row.items():
                if isinstance(value, dt.datetime) and value.tzinfo is not None:
                    row[key] = value.astimezone().replace(tzinfo=None)
        return rows

    # ------------------------------------------------------------ write

    def write(
        self,
        df: DataFrame,
        uri: str,
        mode: str = "append",
        partition_by: Sequence[str] | None = None,
        replace_partitions: dict[str, Any] | None = None,
        evolve_schema: bool = False,
        operation: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> int:
        """Write ``df`` and commit it as one Delta version; return that version.

        Args:
            df: the rows to write.
            uri: the table root.
            mode: ``append``, ``overwrite`` (whole table) or ``error``.
            partition_by: partition columns when the table is created.
            replace_partitions: with ``overwrite``, replace only these partition
                values (e.g. one snapshot date); every row must belong to them.
            evolve_schema: allow new nullable columns to be added.
            operation: name recorded in the commit info.
            metadata: extra commit info.
        """

        if mode not in {"append", "overwrite", "error"}:
            raise SegengineError(f"{uri}: unknown write mode {mode!r}")
        return self._write(
            df, uri, mode, partition_by, replace_partitions, evolve_schema, operation, metadata, blind_create=True
        )

    def _write(
        self,
        df: DataFrame,
        uri: str,
        mode: str,
        partition_by: Sequence[str] | None,
        replace_partitions: dict[str, Any] | None,
        evolve_schema: bool,
        operation: str | None,
        metadata: dict[str, Any] | None,
        blind_create: bool,
    ) -> int:
        """:meth:`write`; ``blind_create=False`` makes creating the table a read of the
        (empty) table, so a concurrent creation is a conflict (a merge that creates)."""
        from pyspark.sql import functions as F

        exists = self.exists(uri)
        if exists and mode == "error":
            raise SegengineError(f"{uri}: table already exists")
        table = self._table(uri) if exists else None
        new_fields: list[Any] = []
        if table is not None:
            self._check_features(uri, table, writing=True)
            table_parts = list(table.metadata().partition_columns)
            if partition_by and list(partition_by) != table_parts:
                raise SchemaMismatch(
                    f"{uri}: table is partitioned by {table_parts}, the write asks for {list(partition_by)}"
                )
            part_cols = table_parts
            df, new_fields = self._conform(df, self.spark_schema(uri, table), uri, evolve_schema, table)
            df = self._enforce(df, uri, table)
        else:
            part_cols = list(partition_by or [])
            missing = [c for c in part_cols if c not in df.columns]
            if missing:
                raise SchemaMismatch(f"{uri}: partition column(s) {missing} are not in the data")
        filters = None
        if replace_partitions:
            if mode != "overwrite":
                raise SegengineError(f"{uri}: replace_partitions needs mode='overwrite'")
            if set(replace_partitions) != set(part_cols):
                raise SegengineError(
                    f"{uri}: replace_partitions must give every partition column {part_cols}, got {sorted(replace_partitions)}"
                )
            cond = F.lit(True)
            for col_name, value in replace_partitions.items():
                cond = cond & (F.col(col_name).cast("string") == F.lit(_partition_string(value)))
            # Guard rail as in Delta's replaceWhere: rows outside the partition are an error.
            # (a filter, so the optimizer cannot prune the check away)
            df = df.filter(
                F.when(cond, F.lit(True)).otherwise(
                    F.raise_error(
                        F.lit(f"{uri}: a row falls outside the partition being replaced {replace_partitions}")
                    )
                )
            )
            filters = [(c, "=", _partition_string(v)) for c, v in replace_partitions.items()]
        operation = operation or ("WRITE" if not replace_partitions else "REPLACE PARTITION")
        if mode == "append":
            reads = _Reads(blind=blind_create or table is not None)
            removes = []
        elif mode == "error":
            reads, removes = _Reads(whole=True), []
        else:
            scope = _slice_of(replace_partitions) if replace_partitions else None
            removes = [_remove_action(f) for f in self._active_files(table, replace_partitions)] if table else []
            reads = _Reads(whole=scope is None, slice=scope, removes=frozenset(r.path for r in removes))
        if table is not None:
            self._check_removes_allowed(uri, table, len(removes), operation)
        adds = self._write_files(df, uri, part_cols)
        evolved = None
        if table is not None and new_fields:
            # delta-rs commits a new schema only in overwrite mode, whose removes are
            # those of its partition filters: the replaced partitions, everything, or
            # for an append a filter no file matches (an empty IN list).
            evolved = _evolved_schema(table, new_fields)
            if mode != "overwrite":
                filters = [((part_cols or [df.columns[0]])[0], "in", [])]
            removes = []
        return self._commit(
            uri,
            table,
            adds,
            removes,
            schema=_delta_schema_of(df) if table is None else None,
            part_cols=part_cols,
            reads=reads,
            evolved=evolved,
            overwrite_filters=filters,
            operation=operation,
            metadata=metadata,
        )

    def can_write_rows(
        self, uri: str, rows: Sequence[Any], schema: StructType, partition_by: Sequence[str] | None = None
    ) -> bool:
        """Whether :meth:`write_rows` commits ``rows`` without a Spark job.

        Only for a local table (or one to create) with flat columns, the table's own
        columns, no partition to place rows in, nothing a write must check row by row
        (constraints, NOT NULL, generated columns) and no writer feature this backend
        does not honour. Anything else is a Spark write.
        """
        from pyspark.sql import types as T

        if "://" in _strip_file_scheme(uri):
            return False
        if any(isinstance(f.dataType, (T.ArrayType, T.MapType, T.StructType)) for f in schema.fields):
            return False
        table = self._table(uri) if self.exists(uri) else None
        part_cols = list(table.metadata().partition_columns) if table is not None else list(partition_by or [])
        if rows and part_cols:
            return False
        if table is None:
            return True
        if not _same_columns(self.spark_schema(uri, table), schema) or _has_rules(table):
            return False
        try:
            self._check_features(uri, table, writing=True)
        except TableFeatureUnsupported:
            return False
        return True

    def write_rows(
        self,
        rows: Sequence[Any],
        schema: StructType,
        uri: str,
        mode: str = "append",
        partition_by: Sequence[str] | None = None,
        operation: str | None = None,
        metadata: dict[str, Any] | None = None,
        evolve_schema: bool = False,
    ) -> int:
        """Write rows the driver already holds (a registry row, a run summary, none to create a table).

        The rows become one Parquet file written by pyarrow and one Delta commit, with
        no Spark job: on small metadata tables the job would cost more than the data.
        Whatever this path does not cover (a remote table, a partitioned write with
        rows, nested types, a schema that differs from the table's) goes through
        :meth:`write`, which conforms or refuses it as usual.
        """
        if mode not in {"append", "overwrite"}:
            raise SegengineError(f"{uri}: unknown write mode {mode!r}")
        if not self.can_write_rows(uri, rows, schema, partition_by):
            df = self.spark.createDataFrame(list(rows), schema)
            return self.write(df, uri, mode, partition_by, None, evolve_schema, operation, metadata)
        local = _strip_file_scheme(uri)
        table = self._table(uri) if self.exists(uri) else None
        part_cols = list(table.metadata().partition_columns) if table is not None else list(partition_by or [])
        if table is not None:
            self._check_features(uri, table, writing=True)
        adds = []
        if rows:
            import pyarrow as pa
            import pyarrow.parquet as pq
            from pyspark.sql.pandas.types import to_arrow_schema

            arrow_schema = to_arrow_schema(schema, timezone="UTC")
            # Spark's own conversion (dates to days, timestamps to UTC microseconds, naive
            # ones in the local zone as createDataFrame does), then arrays of those values.
            internal = [schema.toInternal(r) for r in rows]
            columns = [pa.array([r[i] for r in internal], type=f.type) for i, f in enumerate(arrow_schema)]
            rel_dir = f"data/{uuid.uuid4().hex}"
            target = os.path.join(local, rel_dir)
            os.makedirs(target)
            pq.write_table(
                pa.Table.from_arrays(columns, schema=arrow_schema),
                os.path.join(target, f"part-00000-{uuid.uuid4()}.snappy.parquet"),
                compression="snappy",
            )
            adds = self._list_adds(target, rel_dir, part_cols)
        operation = operation or "WRITE"
        removes = [_remove_action(f) for f in self._active_files(table, None)] if table and mode == "overwrite" else []
        if table is not None:
            self._check_removes_allowed(uri, table, len(removes), operation)
        if mode == "overwrite":
            reads = _Reads(whole=True, removes=frozenset(r.path for r in removes))
        else:
            reads = _Reads(blind=True)
        return self._commit(
            uri,
            table,
            adds,
            removes,
            schema=_delta_schema(schema) if table is None else None,
            part_cols=part_cols,
            reads=reads,
            operation=operation,
            metadata=metadata,
        )

    def merge(
        self,
        source: DataFrame,
        uri: str,
        keys: Sequence[str],
        partition_by: Sequence[str] | None = None,
        delete_missing_in: dict[str, Any] | None = None,
        evolve_schema: bool = False,
        operation: str = "MERGE",
        metadata: dict[str, Any] | None = None,
        within: dict[str, Any] | None = None,
    ) -> int:
        """Upsert ``source`` into the table by ``keys`` (copy-on-write).

        Target rows whose key appears in ``source`` are replaced by the source row;
        other source rows are inserted. Only the data files that hold a matched key
        are rewritten, and they are removed in the same commit that adds their
        replacement, so the merge is atomic.

        Args:
            delete_missing_in: also delete target rows that are absent from the
                source but match these column values (e.g. one audience's members).
            within: partition values every source row has; only the target files of
                that slice are read (and can be matched or deleted).
        """
        keys = list(keys)
        # The merge reads its source twice (the key probe, then the files it writes):
        # evaluated once here, so a source that is an expensive plan (an audience's
        # rules over the order lines) is not computed twice. Delta's own MERGE
        # materialises its source for the same reason. A source the caller cached is
        # already evaluated once.
        if not source.is_cached:
            source = source.localCheckpoint(eager=True)
        for attempt in range(self.commit_retries + 1):
            try:
                return self._merge_once(
                    source, uri, keys, partition_by, delete_missing_in, evolve_schema, operation, metadata, within
                )
            except WriteConflict as exc:
                # A merge's result depends only on the table and its source: planning it
                # again on the fresh snapshot is the serial order "the other commit, then this".
                if attempt >= self.commit_retries:
                    raise
                log.warning("%s: %s; merge planned again (%d)", uri, exc, attempt + 1)
        raise WriteConflict(f"{uri}: merge did not commit")  # pragma: no cover

    def _merge_once(
        self,
        source: DataFrame,
        uri: str,
        keys: list[str],
        partition_by: Sequence[str] | None,
        delete_missing_in: dict[str, Any] | None,
        evolve_schema: bool,
        operation: str,
        metadata: dict[str, Any] | None,
        within: dict[str, Any] | None,
    ) -> int:
        """One plan and commit of :meth:`merge` on the latest snapshot."""
        from pyspark.sql import functions as F

        if not self.exists(uri):
            _check_unique_keys(uri, keys, source.groupBy(*keys).count().filter("count > 1").limit(1).collect())
            # Not blind: another writer creating the table first is a conflict, and the
            # merge is planned again against what it wrote.
            return self._write(
                source, uri, "append", partition_by, None, False, operation, metadata, blind_create=False
            )
        table = self._table(uri)
        self._check_features(uri, table, writing=True)
        schema = self.spark_schema(uri, table)
        src, new_fields = self._conform(source, schema, uri, evolve_schema, table)
        part_cols = list(table.metadata().partition_columns)
        outside = outside_within(uri, within, part_cols, delete_missing_in)
        # Every row of the slice is replaced or deleted (the delete slice covers
        # ``within``): the result is the source alone, the slice's files come from
        # the log and no target data is read. A new column rewrites the whole slice
        # too: delta-rs commits a schema only with the removes of partition filters.
        replaces_slice = bool(within) and bool(delete_missing_in) and set(delete_missing_in) <= set(within)
        rewrites_slice = bool(new_fields) and not replaces_slice
        key_counts = src.groupBy(*keys).count()  # one aggregation: the keys and their repeats
        src_keys = key_counts.select(*keys)
        # One job answers every question: is a key repeated in the source (then
        # nothing is written), does a source row lie outside ``within``, and which
        # data files hold a matched key. The file list is small (bounded by files).
        probe = (
            key_counts.filter("count > 1")
            .limit(1)
            .select(F.lit(True).alias("__repeated"), F.to_json(F.struct(*keys)).alias("__value"))
        )
        if outside is not None:
            stray = src.filter(outside).limit(1)
            probe = probe.unionByName(
                stray.select(
                    F.lit(None).cast("boolean").alias("__repeated"), F.to_json(F.struct(*keys)).alias("__value")
                )
            )
        if not replaces_slice:
            target = self.read(uri, version=table.version(), with_file_path=True, partitions=within)
            touched = _join_keys(target, src_keys, keys, "left_semi")
            if delete_missing_in:
                cond = F.lit(True)
                for col_name, value in delete_missing_in.items():
                    cond = cond & (F.col(col_name) == F.lit(value))
                touched = touched.unionByName(target.filter(cond))
            found = touched.select(F.lit(False).alias("__repeated"), F.col(PATH_COL).alias("__value")).distinct()
            probe = probe.unionByName(found)
        answers = probe.collect()
        strays = [r[1] for r in answers if r[0] is None]
        if strays:
            shown = {k: sorted(_partition_values(v)) for k, v in within.items()}
            raise SegengineError(f"{uri}: merge source row {strays[0]} lies outside the slice {shown}")
        _check_unique_keys(uri, keys, [list(json.loads(r[1]).values()) for r in answers if r[0]])
        src_rows = src.select(*[f.name for f in (src.schema.fields)])
        slice_files = self._active_files(table, within)
        if replaces_slice or rewrites_slice:
            removes = [_remove_action(f) for f in slice_files]
        else:
            info = {f["path"]: f for f in slice_files}
            removes = [_remove_action(info[p]) for p in sorted(r[1] for r in answers if r[0] is False) if p in info]
        self._check_removes_allowed(uri, table, len(removes), operation)
        touched_files = [r.path for r in removes]
        if replaces_slice:
            rewritten = src_rows
        else:
            kept = _join_keys(target.filter(F.col(PATH_COL).isin(touched_files)), src_keys, keys, "left_anti")
            if delete_missing_in:
                for col_name, value in delete_missing_in.items():
                    kept = kept.filter(~(F.col(col_name) == F.lit(value)) | F.col(col_name).isNull())
            # No matched key: a pure insert, the target files are neither read nor rewritten.
            rewritten = (
                kept.drop(PATH_COL).unionByName(src_rows, allowMissingColumns=True) if touched_files else src_rows
            )
        rewritten = self._enforce(rewritten.select(*src_rows.columns), uri, table)
        adds = self._write_files(rewritten, uri, part_cols)
        scope = _slice_of(within) if within else None
        reads = _Reads(whole=scope is None, slice=scope, removes=frozenset(touched_files))
        evolved = _evolved_schema(table, new_fields) if new_fields else None
        return self._commit(
            uri,
            table,
            adds,
            [] if evolved is not None else removes,
            schema=None,
            part_cols=part_cols,
            reads=reads,
            evolved=evolved,
            overwrite_filters=[(c, "in", sorted(_partition_values(v))) for c, v in within.items()] if within else None,
            operation=operation,
            metadata=metadata,
        )

    def delete_where(self, uri: str, condition: Any, operation: str = "DELETE") -> int:
        """Delete the rows matching a Spark Column condition (copy-on-write).

        A concurrent commit to the table makes it plan again on the fresh snapshot
        (deleting what matches is the same question asked again), up to
        ``commit_retries`` times.
        """
        for attempt in range(self.commit_retries + 1):
            try:
                return self._delete_once(uri, condition, operation)
            except WriteConflict as exc:
                if attempt >= self.commit_retries:
                    raise
                log.warning("%s: %s; delete planned again (%d)", uri, exc, attempt + 1)
        raise WriteConflict(f"{uri}: delete did not commit")  # pragma: no cover

    def _delete_once(self, uri: str, condition: Any, operation: str) -> int:
        from pyspark.sql import functions as F

        table = self._table(uri)
        self._check_features(uri, table, writing=True)
        part_cols = list(table.metadata().partition_columns)
        target = self.read(uri, version=table.version(), with_file_path=True)
        touched_files = sorted(r[0] for r in target.filter(condition).select(PATH_COL).distinct().collect())
        if not touched_files:
            return table.version()
        self._check_removes_allowed(uri, table, len(touched_files), operation)
        kept = target.filter(F.col(PATH_COL).isin(touched_files)).filter(~condition | condition.isNull())
        adds = self._write_files(kept.drop(PATH_COL), uri, part_cols)
        info = {f["path"]: f for f in self._active_files(table, None)}
        removes = [_remove_action(info[p]) for p in touched_files]
        reads = _Reads(whole=True, removes=frozenset(touched_files))
        return self._commit(
            uri, table, adds, removes, schema=None, part_cols=part_cols, reads=reads, operation=operation, metadata=None
        )

    # ------------------------------------------------------------ internals

    def _conform(
        self, df: DataFrame, schema: StructType, uri: str, evolve: bool, table: Any = None
    ) -> tuple[DataFrame, list[Any]]:
        """Check ``df`` against the table schema; reorder, add nulls for missing nullable columns.

        A missing generated column is computed from its ``delta.generationExpression``.
        Returns the conformed rows (new columns last) and the Spark fields of the new
        columns, which the caller commits with the data when ``evolve`` allows them.
        """
        from pyspark.sql import functions as F

        generated = _generation_expressions(table)
        table_fields = {f.name: f for f in schema.fields}
        incoming = {f.name: f for f in df.schema.fields}
        extra = [n for n in incoming if n not in table_fields]
        if extra and not evolve:
            raise SchemaMismatch(
                f"{uri}: column(s) {', '.join(extra)} are not in the table schema; pass evolve_schema=True to add them"
            )
        problems = []
        for name, field in table_fields.items():
            if name in incoming:
                got = incoming[name].dataType
                if got != field.dataType and not _safe_cast(got, field.dataType):
                    problems.append(f"{name}: table has {field.dataType.simpleString()}, data has {got.simpleString()}")
            elif not field.nullable and name not in generated:
                problems.append(f"{name}: required column missing")
        if problems:
            raise SchemaMismatch(f"{uri}: schema mismatch: " + "; ".join(problems))
        cols = []
        for name, field in table_fields.items():
            if name in incoming:
                cols.append(
                    F.col(name).cast(field.dataType).alias(name)
                    if incoming[name].dataType != field.dataType
                    else F.col(name)
                )
            else:
                cols.append(F.lit(None).cast(field.dataType).alias(name))
        cols += [F.col(n) for n in extra]
        out = df.select(*cols)
        missing_generated = [n for n in table_fields if n in generated and n not in incoming]
        if missing_generated:
            out = out.withColumns(
                {
                    n: _sql_expr(uri, generated[n], f"generated column {n}").cast(table_fields[n].dataType)
                    for n in missing_generated
                }
            )
        return out, [incoming[n] for n in extra]

    def _enforce(self, df: DataFrame, uri: str, table: Any) -> DataFrame:
        """``df`` with a guard that fails the write on the first row breaking a table rule.

        The rules are Delta's writer-side checks: NOT NULL columns (nested struct
        fields too), CHECK constraints (``delta.constraints.<name>`` in the table
        configuration), column invariants (``delta.invariants`` field metadata) and
        generated columns (``col <=> CAST(expression AS type)``). A rule whose result is
        not true (false or null, as Delta has it) raises in the Spark job; the message
        names the rule and shows the row as JSON, and :meth:`_write_files` turns it
        into a :class:`ConstraintViolation`. The guard is a filter on the rows being
        written, so the check costs no extra pass over the data.
        """
        from pyspark.sql import functions as F

        rules = _table_rules(uri, table)
        if not rules:
            return df
        row = F.to_json(F.struct(*[F.col(f"`{c}`") for c in df.columns]))
        guard = None
        for label, ok in rules:
            failed = ~F.coalesce(ok, F.lit(False))
            error = F.raise_error(F.concat(F.lit(f"{_VIOLATION_MARK}{uri}: {label} violated by row "), row))
            guard = F.when(failed, error) if guard is None else guard.when(failed, error)
        try:
            return df.filter(guard.otherwise(F.lit(True)))
        except Exception as exc:  # the expression does not resolve on these columns
            raise TableFeatureUnsupported(
                f"{uri}: a table rule cannot be evaluated by Spark on the written columns; refusing to write ({exc})"
            ) from exc

    def _check_removes_allowed(self, uri: str, table: Any, removes: int, operation: str) -> None:
        """Refuse removing data files where the table forbids it or would need more than removes.

        ``delta.appendOnly=true`` forbids them. With the change data feed on, a
        removed file's rows must be described by ``_change_data`` files, which this
        backend does not write (delta-rs's transaction API takes add and remove
        actions only): such writes are refused rather than leaving a feed that
        reports a rewritten file as all its rows deleted and inserted.
        """
        if not removes:
            return
        config = table.metadata().configuration or {}
        if str(config.get("delta.appendOnly", "false")).lower() == "true":
            raise ConstraintViolation(
                f"{uri}: table is append-only (delta.appendOnly=true); {operation} would remove {removes} data file(s)"
            )
        if str(config.get("delta.enableChangeDataFeed", "false")).lower() == "true":
            raise TableFeatureUnsupported(
                f"{uri}: change data feed is on (delta.enableChangeDataFeed=true) and the embedded backend writes no "
                f"_change_data files; {operation} would remove {removes} data file(s): use delta.backend=jvm"
            )

    def _write_files(self, df: DataFrame, uri: str, part_cols: list[str]) -> list[Any]:
        """Phase 1: Spark writes Parquet under ``data/<write-id>/``; return AddActions."""
        write_id = uuid.uuid4().hex
        rel_dir = f"data/{write_id}"
        target = _join_uri(uri, rel_dir)
        writer = df.write.mode("errorifexists").option("compression", "snappy")
        if part_cols:
            writer = writer.partitionBy(*part_cols)
        try:
            writer.parquet(target)
        except Exception as exc:
            text = str(exc)
            if _VIOLATION_MARK in text:
                message = text.split(_VIOLATION_MARK, 1)[1].split("\n", 1)[0].rstrip(". ")
                raise ConstraintViolation(message) from None
            raise
        return self._list_adds(target, rel_dir, part_cols)

    def _list_adds(self, target: str, rel_dir: str, part_cols: list[str]) -> list[Any]:
        from deltalake.transaction import AddAction

        adds = []
        for rel_inside, size, mtime_ms, file_uri in self._data_files(target):
            pv: dict[str, str | None] = {}
            for segment in rel_inside.split("/")[:-1]:
                if "=" in segment:
                    k, v = segment.split("=", 1)
                    v = urllib.parse.unquote(v)
                    pv[k] = None if v == NULL_PARTITION else v
            adds.append(
                AddAction(
                    path=f"{rel_dir}/{rel_inside}",
                    size=size,
                    partition_values={c: pv.get(c) for c in part_cols},
                    modification_time=mtime_ms,
                    data_change=True,
                    stats=self._file_stats(file_uri, size),
                )
            )
        return adds

    def _data_files(self, target: str) -> list[tuple[str, int, int, str]]:
        """``(path inside target, size, modification ms, full path)`` of each Parquet file Spark wrote.

        A local directory is walked in Python; any other file system through Hadoop's
        ``FileSystem`` (one JVM round trip per call, which on a write of many small
        partition files used to cost more than the write itself).
        """
        local = _strip_file_scheme(target)
        if "://" not in local:
            found = []
            for dirpath, _, names in os.walk(local):
                for name in names:
                    if name.endswith(".parquet") and not name.startswith((".", "_")):
                        full = os.path.join(dirpath, name)
                        st = os.stat(full)
                        rel = os.path.relpath(full, local).replace(os.sep, "/")
                        found.append((rel, int(st.st_size), st.st_mtime_ns // 1_000_000, full))
            return sorted(found)
        jvm = self.spark.sparkContext._jvm  # type: ignore[attr-defined]
        hconf = self.spark.sparkContext._jsc.hadoopConfiguration()  # type: ignore[attr-defined]
        path = jvm.org.apache.hadoop.fs.Path(target)
        fs = path.getFileSystem(hconf)
        root = fs.makeQualified(path).toUri().getPath().rstrip("/")
        it = fs.listFiles(path, True)
        found = []
        while it.hasNext():
            st = it.next()
            full = st.getPath().toUri().getPath()
            name = full.rsplit("/", 1)[-1]
            if name.endswith(".parquet") and not name.startswith((".", "_")):
                found.append(
                    (full[len(root) + 1 :], int(st.getLen()), int(st.getModificationTime()), st.getPath().toString())
                )
        return sorted(found)

    def _file_stats(self, file_uri: str, size: int) -> str:
        """Delta file statistics from the Parquet footer, where readable.

        ``numRecords`` always; ``minValues`` / ``maxValues`` / ``nullCount`` for the
        top-level number, date and timestamp columns whose every row group has them
        (what file skipping on dates and amounts needs; strings are left out because
        Delta readers expect truncated string bounds).
        """
        try:
            import pyarrow.parquet as pq

            local = _strip_file_scheme(file_uri)
            if "://" in local:
                return ""  # object stores: skip the extra footer read
            meta = pq.read_metadata(local)
            return json.dumps({"numRecords": meta.num_rows, **_column_stats(meta)})
        except Exception:  # noqa: BLE001 - stats are optional in the Delta protocol
            return ""

    def _commit(
        self,
        uri: str,
        table: Any,
        adds: list[Any],
        removes: list[Any],
        *,
        schema: Any,
        part_cols: list[str],
        reads: _Reads,
        operation: str,
        metadata: dict[str, Any] | None,
        evolved: Any = None,
        overwrite_filters: Any = None,
    ) -> int:
        """Phase 2: one atomic Delta commit through delta-rs, after the conflict check.

        Args:
            table: the snapshot the write planned on (None: the table did not exist).
            schema: the Delta schema of a table this commit creates.
            reads: what the write read or replaces (see :class:`_Reads`).
            evolved: the table's schema plus new columns, committed with the data: then
                the commit is delta-rs's overwrite mode, whose removes are those of
                ``overwrite_filters`` (None: every file) instead of ``removes``.

        Each attempt loads the latest version, checks the commits made since the last
        check (:meth:`_check_commits`) and commits on top of it with no delta-rs retry:
        delta-rs would rebase onto a newer version without knowing what this write
        read. A lost race for the next version is checked again, up to
        ``commit_retries`` times; a conflict raises :class:`WriteConflict`.
        """
        from deltalake import CommitProperties, PostCommitHookProperties
        from deltalake.exceptions import CommitFailedError
        from deltalake.transaction import create_table_with_add_actions

        # A unique id in the commit's info finds our version afterwards.
        commit_id = uuid.uuid4().hex
        custom = {"operation_source": "segengine", "segengine.operation": operation, "segengine.commit_id": commit_id}
        custom.update(
            {k: (v if isinstance(v, (str, int, float, bool)) else json.dumps(v)) for k, v in (metadata or {}).items()}
        )
        read_version = table.version() if table is not None else -1
        custom.update({"isolationLevel": "WriteSerializable", "isBlindAppend": reads.blind and not removes})
        checked = read_version
        # A Parquet checkpoint every delta.checkpointInterval commits (delta-rs: 100 unless
        # the table says otherwise), as delta-spark writes one every 10: a registry table
        # committed to many times a day stays cheap to open. Old log files are kept
        # (time travel); VACUUM and the log retention are the maintenance job's.
        hooks = PostCommitHookProperties(create_checkpoint=True, cleanup_expired_logs=False)
        if before_commit is not None:
            before_commit(uri, read_version)
        for attempt in range(self.commit_retries + 1):
            latest = self._table(uri) if self.exists(uri) else None
            if latest is None:
                props = CommitProperties(custom_metadata=custom, max_commit_retries=0)
                try:
                    create_table_with_add_actions(
                        self._delta_uri(uri),
                        schema,
                        adds,
                        mode="error",
                        partition_by=part_cols or None,
                        storage_options=self.storage_options or None,
                        commit_properties=props,
                    )
                    return 0
                except Exception as exc:  # noqa: BLE001 - lost the race to create: check what won
                    if not self.exists(uri):
                        raise
                    log.info("%s: created concurrently (%s)", uri, exc)
                    continue
            self._check_commits(uri, latest, checked, reads, operation, schema, part_cols)
            self._check_features(uri, latest, writing=True)
            checked = latest.version()
            if schema is not None and table is None:
                # The table this write meant to create exists now and the check found it compatible.
                schema = None
            props = CommitProperties(
                custom_metadata={**custom, "readVersion": max(read_version, 0)}, max_commit_retries=0
            )
            try:
                if evolved is not None:
                    latest.create_write_transaction(
                        list(adds),
                        mode="overwrite",
                        schema=evolved,
                        partition_by=part_cols or None,
                        partition_filters=overwrite_filters,
                        commit_properties=props,
                        post_commithook_properties=hooks,
                    )
                else:
                    latest.create_write_transaction(
                        list(adds) + list(removes),
                        mode="append",
                        schema=latest.schema(),
                        partition_by=part_cols or None,
                        commit_properties=props,
                        post_commithook_properties=hooks,
                    )
            except CommitFailedError as exc:
                text = str(exc)
                if "unsupported" in text.lower() and "feature" in text.lower():
                    raise TableFeatureUnsupported(f"{uri}: delta-rs refuses to commit: {text}") from exc
                if self._table(uri).version() <= checked:
                    raise
                log.info("%s: version %d taken by another writer, checking it (%d)", uri, checked + 1, attempt + 1)
                continue
            latest.update_incremental()
            return _version_of_commit(latest, commit_id, checked)
        raise WriteConflict(
            f"{uri}: {operation} lost the race for the next version {self.commit_retries + 1} times "
            "to commits that did not conflict; giving up"
        )

    def _check_commits(
        self, uri: str, latest: Any, after: int, reads: _Reads, operation: str, schema: Any, part_cols: list[str]
    ) -> None:
        """Raise :class:`WriteConflict` when a commit after version ``after`` conflicts.

        WriteSerializable as Delta defines it for a write that ``reads``: a concurrent
        commit conflicts when it added or removed a file inside what the write read
        or replaces, removed a file this write removes, or changed the metadata or the
        protocol. A blind append conflicts only with metadata or protocol changes.
        A concurrent creation of the table (``after`` is -1) is no conflict for a
        blind append when it created the same columns and partitioning.

        delta-rs's Python API has no conflict checker for a transaction made of
        hand-made actions, and its history lists commit infos, not their actions:
        the commits' add and remove actions are read from their ``_delta_log`` JSON
        files through delta-rs's own storage handler (so object stores work too).
        """
        from deltalake.fs import DeltaStorageHandler

        end = latest.version()
        if end <= after:
            return
        handler = DeltaStorageHandler(latest.table_uri, self.storage_options or None)
        for version in range(after + 1, end + 1):
            actions = _commit_actions(handler, version)
            if actions is None:
                raise WriteConflict(
                    f"{uri}: version {version} was committed while {operation} ran and its log entry "
                    "cannot be read to check it"
                )
            info = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
            what = f"{uri}: concurrent commit version {version} ({info.get('operation', 'unknown operation')})"
            for action in actions:
                if "metaData" in action or "protocol" in action:
                    if after == -1 and version == 0 and _same_table_shape(action, schema, part_cols):
                        continue
                    kind = "metadata (schema, partitioning or properties)" if "metaData" in action else "protocol"
                    raise WriteConflict(f"{what} changed the table's {kind} while {operation} ran; nothing was written")
                for kind in ("add", "remove"):
                    file = action.get(kind)
                    if not file:
                        continue
                    pv = file.get("partitionValues") or {}
                    if kind == "remove" and file.get("path") in reads.removes:
                        raise WriteConflict(
                            f"{what} removed data file {file['path']}, which this {operation} also removes; "
                            "nothing was written"
                        )
                    if reads.covers(pv):
                        where = ", ".join(f"{k}={v}" for k, v in pv.items()) or "the table"
                        verb = "added" if kind == "add" else "removed"
                        raise WriteConflict(
                            f"{what} {verb} data file(s) in {where} while this {operation} ({reads.describe()}) ran; "
                            "nothing was written: run it again"
                        )


# ---------------------------------------------------------------- helpers


def _commit_actions(handler: Any, version: int) -> list[dict[str, Any]] | None:
    """The actions of commit ``version`` (one JSON object a line), None when it cannot be read."""
    try:
        with handler.open_input_stream(f"_delta_log/{version:020d}.json") as stream:
            text = stream.read()
    except Exception:  # noqa: BLE001 - a missing or unreadable entry is reported by the caller
        return None
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def _typed_stat_columns(schema: Any) -> dict[str, str]:
    """Top-level date and timestamp columns of a delta-rs schema: their statistics are
    ISO strings in the log, parsed by :func:`_logged_file`."""
    out = {}
    for field in schema.fields:
        kind = getattr(field.type, "type", None)
        if kind in {"date", "timestamp", "timestamp_ntz"}:
            out[field.name] = kind
    return out


def _logged_file(path: str, entry: dict[str, Any], part_cols: list[str], typed: dict[str, str]) -> dict[str, Any]:
    """An add or remove action of the log as a file of :meth:`EmbeddedBackend.files`."""
    stats: dict[str, Any] = {}
    with contextlib.suppress(ValueError, TypeError):
        stats = json.loads(entry.get("stats") or "{}") or {}
    values = entry.get("partitionValues") or {}

    def parsed(bound: dict[str, Any]) -> dict[str, Any]:
        out = dict(bound or {})
        for name, kind in typed.items():
            text = out.get(name)
            if isinstance(text, str):
                with contextlib.suppress(ValueError):
                    out[name] = (
                        dt.date.fromisoformat(text[:10])
                        if kind == "date"
                        else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                    )
        return out

    return {
        "path": path,
        "partition": {c: values.get(c) for c in part_cols},
        "size": entry.get("size"),
        "min": parsed(stats.get("minValues")),
        "max": parsed(stats.get("maxValues")),
    }


def _same_table_shape(action: dict[str, Any], schema: Any, part_cols: list[str]) -> bool:
    """True when a concurrent creation (``metaData``/``protocol`` of version 0) made the
    table a creating write would have made: same columns (names, types, metadata), same
    partitioning and no table properties (no constraints this write did not check)."""
    if "protocol" in action:
        return True  # what the protocol allows is checked on the table itself
    meta = action["metaData"]
    if schema is None or list(meta.get("partitionColumns") or []) != list(part_cols):
        return False
    if meta.get("configuration"):
        return False
    theirs = json.loads(meta.get("schemaString") or "{}").get("fields", [])
    ours = json.loads(schema.to_json()).get("fields", [])

    def shape(fields: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(f["name"], json.dumps(f["type"], sort_keys=True), json.dumps(f.get("metadata") or {})) for f in fields]

    return shape(theirs) == shape(ours)


def _evolved_schema(table: Any, new_fields: list[Any]) -> Any:
    """The table's Delta schema, unchanged, plus ``new_fields`` (Spark fields) as nullable columns."""
    import pyarrow as pa
    from deltalake import Field, Schema
    from pyspark.sql.pandas.types import to_arrow_type

    added = [Field.from_arrow(pa.field(f.name, to_arrow_type(f.dataType, timezone="UTC"), True)) for f in new_fields]
    return Schema(list(table.schema().fields) + added)


def _generation_expressions(table: Any) -> dict[str, str]:
    """``{column: delta.generationExpression}`` of the table's top-level generated columns."""
    if table is None:
        return {}
    return {
        f.name: str(f.metadata["delta.generationExpression"])
        for f in table.schema().fields
        if "delta.generationExpression" in (f.metadata or {})
    }


def _has_rules(table: Any) -> bool:
    """Whether the table declares anything a write must check on its rows."""
    if table is None:
        return False
    config = table.metadata().configuration or {}
    if any(k.startswith("delta.constraints.") for k in config):
        return True
    text = json.dumps(json.loads(table.schema().to_json()))
    return '"nullable": false' in text or "delta.invariants" in text or "delta.generationExpression" in text


def _sql_expr(uri: str, text: str, label: str) -> Any:
    """``F.expr(text)``; an expression Spark cannot parse refuses the write."""
    from pyspark.sql import functions as F

    try:
        return F.expr(text)
    except Exception as exc:
        raise TableFeatureUnsupported(
            f"{uri}: {label} ({text}) is not a Spark SQL expression; refusing to write"
        ) from exc


def _table_rules(uri: str, table: Any) -> list[tuple[str, Any]]:
    """``(label, Column that must be true)`` for every rule the table declares on its rows.

    NOT NULL (a nested struct field only where its parent is not null), column
    invariants, generated columns and CHECK constraints. Rules inside arrays or maps
    cannot be checked with a column expression and refuse the write.
    """
    from pyspark.sql import functions as F
    from pyspark.sql.pandas.types import from_arrow_schema

    if table is None:
        return []
    rules: list[tuple[str, Any]] = []
    spark_types = {f.name: f.dataType for f in from_arrow_schema(_arrow_schema(table.schema())).fields}

    def visit(fields: list[Any], path: list[str], parent: Any) -> None:
        for field in fields:
            names = path + [field.name]
            shown = ".".join(names)
            col = F.col(".".join(f"`{n.replace('`', '``')}`" for n in names))
            meta = field.metadata or {}
            if not field.nullable:
                ok = col.isNotNull() if parent is None else (parent.isNull() | col.isNotNull())
                rules.append((f"NOT NULL column {shown}", ok))
            if "delta.invariants" in meta:
                raw = meta["delta.invariants"]
                text = (json.loads(raw) if isinstance(raw, str) else raw)["expression"]["expression"]
                rules.append((f"invariant on {shown} ({text})", _sql_expr(uri, text, f"invariant on {shown}")))
            if "delta.generationExpression" in meta and not path:
                text = str(meta["delta.generationExpression"])
                expected = _sql_expr(uri, text, f"generated column {shown}").cast(spark_types[field.name])
                rules.append((f"generated column {shown} ({text})", col.eqNullSafe(expected)))
            kind = json.loads(field.type.to_json()) if hasattr(field.type, "to_json") else None
            if isinstance(kind, dict) and kind.get("type") == "struct":
                visit(list(field.type.fields), names, col)
            elif isinstance(kind, dict) and kind.get("type") in {"array", "map"}:
                text = json.dumps(kind)
                if "delta.invariants" in text or "delta.generationExpression" in text:
                    raise TableFeatureUnsupported(
                        f"{uri}: column {shown} declares a rule inside an {kind['type']}; the embedded backend "
                        "cannot check it and refuses to write"
                    )

    visit(list(table.schema().fields), [], None)
    config = table.metadata().configuration or {}
    for key in sorted(config):
        if key.startswith("delta.constraints."):
            name = key[len("delta.constraints.") :]
            text = str(config[key])
            rules.append((f"CHECK constraint {name} ({text})", _sql_expr(uri, text, f"CHECK constraint {name}")))
    return rules


def _version_of_commit(table: Any, commit_id: str, read_version: int) -> int:
    """The version holding the commit tagged ``commit_id`` (made on top of ``read_version``)."""
    latest = table.version()
    for entry in table.history(max(1, latest - read_version)):
        if entry.get("segengine.commit_id") == commit_id:
            return int(entry["version"])
    return latest


def _join_uri(root: str, rel: str) -> str:
    if "://" in rel or rel.startswith("/"):
        return rel
    return root.rstrip("/") + "/" + urllib.parse.unquote(rel)


def _partition_string(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _partition_values(value: Any) -> set[str]:
    """The accepted partition strings of a ``partitions`` entry (one value or several)."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return {_partition_string(v) for v in value}
    return {_partition_string(value)}


def _range_condition(col: Any, low: Any, high: Any) -> Any:
    """``low <= col <= high`` (a None end is open)."""
    from pyspark.sql import functions as F

    cond = F.lit(True)
    if low is not None:
        cond = cond & (col >= F.lit(low))
    if high is not None:
        cond = cond & (col <= F.lit(high))
    return cond


# Writers truncate timestamp statistics to milliseconds (delta-rs, Delta Spark): a
# file's true maximum may lie up to this much above its recorded maximum.
_TS_MAX_SLACK = dt.timedelta(milliseconds=1)


def _comparable(value: Any, like: Any) -> Any:
    """``value`` converted to compare with the statistic ``like`` (dates, instants, numbers)."""
    if isinstance(like, dt.datetime):
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC)
    if isinstance(like, dt.date):
        if isinstance(value, dt.datetime):
            return value.date()
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    return value


def _may_overlap(info: dict[str, Any], raw_partition: dict[str, Any], col: str, low: Any, high: Any) -> bool:
    """False only when the file provably holds no row with ``low <= col <= high``.

    A partition column is judged by its value; any other column by the file's min/max
    statistics. A file without statistics for the column is kept (it may match).
    """
    try:
        if col in info["partition"]:
            value = raw_partition.get(col)
            if value is None:
                return False  # a null partition value never satisfies a range
            lo_v, hi_v = value, value
        else:
            lo_v, hi_v = info["min"].get(col), info["max"].get(col)
            if lo_v is None or hi_v is None:
                return True
            if isinstance(hi_v, dt.datetime):
                hi_v = hi_v + _TS_MAX_SLACK
        if low is not None and hi_v < _comparable(low, hi_v):
            return False
        if high is not None and lo_v > _comparable(high, lo_v):
            return False
        return True
    except (TypeError, ValueError):
        return True  # incomparable statistics: never prune on them


def _stat_json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        utc = value.astimezone(dt.UTC) if value.tzinfo else value
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value


def _column_stats(meta: Any) -> dict[str, Any]:
    """minValues / maxValues / nullCount of the prunable top-level columns of a Parquet footer."""
    schema = meta.schema.to_arrow_schema()
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    prunable = {}
    for i, field in enumerate(schema):
        t = field.type
        if t.num_fields == 0 and (
            _pa_is("integer", t) or _pa_is("floating", t) or _pa_is("date", t) or _pa_is("timestamp", t)
        ):
            prunable[field.name] = i
    if meta.num_row_groups == 0:
        return {}
    leaf_of = {meta.schema.column(j).path: j for j in range(meta.num_columns)}
    for name in prunable:
        j = leaf_of.get(name)
        if j is None:
            continue
        lo = hi = None
        count = 0
        ok = True
        for rg in range(meta.num_row_groups):
            st = meta.row_group(rg).column(j).statistics
            if st is None:
                ok = False
                break
            count += st.null_count if st.has_null_count else 0
            if not st.has_null_count:
                ok = False
                break
            if st.has_min_max:
                mn, mx = st.min, st.max
                if isinstance(mn, float) and (mn != mn or mx != mx):
                    ok = False
                    break
                lo = mn if lo is None else min(lo, mn)
                hi = mx if hi is None else max(hi, mx)
            elif st.null_count != meta.row_group(rg).num_rows:
                ok = False  # values present but no bounds recorded
                break
        if not ok:
            continue
        nulls[name] = count
        if lo is not None:
            mins[name], maxs[name] = _stat_json(lo), _stat_json(hi)
    out: dict[str, Any] = {}
    if mins:
        out["minValues"], out["maxValues"] = mins, maxs
    if nulls:
        out["nullCount"] = nulls
    return out


def _pa_is(kind: str, arrow_type: Any) -> bool:
    import pyarrow.types as pt

    return bool(getattr(pt, f"is_{kind}")(arrow_type))


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


def _remove_action(info: dict[str, Any]) -> Any:
    from deltalake.transaction import RemoveAction

    return RemoveAction(
        path=info["path"],
        data_change=True,
        deletion_timestamp=_now_ms(),
        size=info.get("size"),
        partition_values=info.get("partition"),
    )


def _arrow_schema(delta_schema: Any) -> Any:
    import pyarrow as pa

    schema = delta_schema.to_arrow()
    if not isinstance(schema, pa.Schema):
        schema = pa.schema(schema)
    return schema


def _delta_schema_of(df: DataFrame) -> Any:
    """The Delta schema for ``df``; every column nullable, as Delta writers default to."""
    return _delta_schema(df.schema)


def _delta_schema(schema: StructType) -> Any:
    """The Delta schema for a Spark schema; every column nullable, as Delta writers default to."""
    from deltalake import Schema
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructField, StructType

    nullable = StructType([StructField(f.name, f.dataType, True, f.metadata) for f in schema.fields])
    return Schema.from_arrow(to_arrow_schema(nullable, timezone="UTC"))


def _join_keys(target: DataFrame, keys_df: DataFrame, keys: list[str], how: str) -> DataFrame:
    """``target`` semi- or anti-joined to ``keys_df`` on null-safe equality of ``keys``.

    A merge matches a null key to a null key on both backends (the JVM backend's ON
    clause uses ``<=>``); a plain equi-join would never match it and keep both rows.
    """
    from pyspark.sql import functions as F

    renamed = keys_df.select(*[F.col(k).alias(f"__key_{i}") for i, k in enumerate(keys)])
    cond = [target[k].eqNullSafe(renamed[f"__key_{i}"]) for i, k in enumerate(keys)]
    return target.join(renamed, cond, how)


def _same_columns(table: StructType, data: StructType) -> bool:
    """Same column names, order and types (nullability aside)."""
    return [(f.name, f.dataType) for f in table.fields] == [(f.name, f.dataType) for f in data.fields]


def _safe_cast(src: Any, dst: Any) -> bool:
    """Widening casts that lose nothing (int → long, float → double, …)."""
    from pyspark.sql import types as T

    order = [T.ByteType, T.ShortType, T.IntegerType, T.LongType]
    if type(src) in order and type(dst) in order:
        return order.index(type(src)) <= order.index(type(dst))
    if isinstance(src, (T.FloatType, *[o for o in order])) and isinstance(dst, T.DoubleType):
        return True
    if isinstance(src, T.NullType):
        return True
    return False
