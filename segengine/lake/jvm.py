"""JVM Delta backend: delta-spark's ``DeltaTable`` and SQL extensions.

Used when the Delta jars are on the driver's classpath: a cluster image that ships
them, ``spark-submit --packages io.delta:delta-spark_4.2_2.13:4.4.0``, or
``configure_spark_with_delta_pip`` where Maven is reachable. The session must be
built with ``spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension`` and
``spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog``
(``conf/cluster.yaml`` sets both).

The operations mirror :class:`~segengine.lake.embedded.EmbeddedBackend` one for one,
so jobs never know which backend runs. Everything that does not need the jars (the
writer options, the merge condition) is built by plain functions tested without them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from segengine.errors import (
    SchemaMismatch,
    SegengineError,
    TableFeatureUnsupported,
    TableNotFound,
    WriteConflict,
)
from segengine.lake.deltalog import DeltaLogWriter
from segengine.lake.slices import outside_within, partition_texts, quote_identifier

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

log = logging.getLogger(__name__)

# The session setting delta-spark copies into a commit's ``userMetadata`` when the
# operation has no writer option for it (MERGE and DELETE through ``DeltaTable``).
USER_METADATA_CONF = "spark.databricks.delta.commitInfo.userMetadata"
# Whether MERGE copies its source first (auto: unless it reads only Delta tables).
# Delta settings that weigh on the small tables of tests and metadata, as left here:
# * snapshotPartitions: tasks that rebuild a snapshot's file list (50 by default);
#   session.spark_conf sets it to the shuffle width for local runs.
# * merge.materializeSource: set to none below for a source already checkpointed.
# * stats.collect: min/max per file at write; kept, files() and where= prune on them.
# * delta.checkpointInterval (table property, 10): every 10th commit also writes a
#   Parquet checkpoint (one more job); kept, the log stays cheap to read.
# * commitStats.collect (skipping the snapshot state computed for each commit's
#   usage stats) is not a setting of delta-spark 4.4.0, which has commitStats.force only.
MATERIALIZE_SOURCE_CONF = "spark.databricks.delta.merge.materializeSource"
# Serialises the operations that tag their commit through that session-wide setting,
# so two threads of one driver never tag each other's commits.
_SESSION_TAG_LOCK = threading.Lock()
# delta-spark's optimistic-concurrency failures (io.delta.exceptions.*; the Python
# package converts them to classes of the same names).
CONFLICT_EXCEPTIONS = frozenset(
    {
        "DeltaConcurrentModificationException",
        "ConcurrentWriteException",
        "MetadataChangedException",
        "ProtocolChangedException",
        "ConcurrentAppendException",
        "ConcurrentDeleteReadException",
        "ConcurrentDeleteDeleteException",
        "ConcurrentTransactionException",
    }
)
# Error conditions of a time-travel request beyond the table's history.
_TIME_TRAVEL_CONDITIONS = ("DELTA_VERSION_NOT_FOUND", "DELTA_TIMESTAMP_EARLIER_THAN_COMMIT_RETENTION")


def sql_literal(value: Any) -> str:
    """Render a Python value as a Spark SQL literal (strings escaped)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE '{value.isoformat()}'"
    text = str(value).replace("\\", "\\\\").replace("'", "\\'")
    return f"'{text}'"


def replace_where_clause(partitions: dict[str, Any]) -> str:
    """The ``replaceWhere`` predicate that overwrites exactly these partition values."""
    return " AND ".join(f"{quote_identifier(k)} = {sql_literal(v)}" for k, v in sorted(partitions.items()))


def merge_condition(
    keys: Sequence[str], target: str = "t", source: str = "s", within: dict[str, Any] | None = None
) -> str:
    """Null-safe equality on every key, as the merge's ON clause.

    ``within``'s partition values are added on the target side, which lets Delta
    prune the target to that slice.
    """
    on = [f"{target}.{quote_identifier(k)} <=> {source}.{quote_identifier(k)}" for k in keys]
    return " AND ".join(on + slice_predicates(within or {}, target))


def slice_predicates(values: dict[str, Any], alias: str | None = "t") -> list[str]:
    """``alias.col = literal`` (``IN (…)`` for a list) per entry: a merge's slice of the target."""
    out = []
    for col_name, value in values.items():
        col = f"{alias}.{quote_identifier(col_name)}" if alias else quote_identifier(col_name)
        if isinstance(value, (list, tuple, set, frozenset)):
            out.append(f"{col} IN ({', '.join(sql_literal(v) for v in value)})")
        else:
            out.append(f"{col} = {sql_literal(value)}")
    return out


def writer_options(mode: str, replace_partitions: dict[str, Any] | None, evolve_schema: bool) -> dict[str, str]:
    """The DataFrameWriter options for a Delta write with these semantics."""
    options: dict[str, str] = {}
    if replace_partitions:
        if mode != "overwrite":
            raise SegengineError("replace_partitions needs mode='overwrite'")
        options["replaceWhere"] = replace_where_clause(replace_partitions)
    if evolve_schema:
        options["mergeSchema"] = "true"
    return options


def commit_tag(commit_id: str, operation: str | None, metadata: dict[str, Any] | None) -> str:
    """The ``userMetadata`` JSON of a segengine commit: its unique id, operation and metadata.

    The keys are those the embedded backend writes into its commit info, so
    :meth:`JvmBackend.history` shows the same entries on both backends.
    """
    tag: dict[str, Any] = {"operation_source": "segengine", "segengine.commit_id": commit_id}
    if operation:
        tag["segengine.operation"] = operation
    for key, value in (metadata or {}).items():
        tag[key] = value if isinstance(value, (str, int, float, bool)) or value is None else json.dumps(value)
    return json.dumps(tag, sort_keys=True, default=str)


def commit_id_of(user_metadata: str | None) -> str | None:
    """The segengine commit id in a history entry's ``userMetadata`` (None if it has none)."""
    if not user_metadata:
        return None
    try:
        tag = json.loads(user_metadata)
    except ValueError:
        return None
    return tag.get("segengine.commit_id") if isinstance(tag, dict) else None


def conflict_name(exc: BaseException) -> str | None:
    """The name of the Delta concurrency exception ``exc`` is (or wraps), else None."""
    for cls in type(exc).__mro__:
        if cls.__name__ in CONFLICT_EXCEPTIONS:
            return cls.__name__
    condition = _condition(exc)
    if condition.startswith(("DELTA_CONCURRENT_", "DELTA_METADATA_CHANGED", "DELTA_PROTOCOL_CHANGED")):
        return condition
    found = re.search(r"io\.delta\.exceptions\.(\w+)", str(exc))
    if found and found.group(1) in CONFLICT_EXCEPTIONS:
        return found.group(1)
    return None


def _condition(exc: BaseException) -> str:
    getter = getattr(exc, "getCondition", None) or getattr(exc, "getErrorClass", None)
    try:
        return str(getter() or "") if getter else ""
    except Exception:  # noqa: BLE001 - a Py4J error without a condition
        return ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def safe_cast(src: DataType, dst: DataType) -> bool:
    """Widening casts that lose nothing (int -> long, float -> double, null -> anything)."""
    from pyspark.sql import types as T

    ints: list[type[DataType]] = [T.ByteType, T.ShortType, T.IntegerType, T.LongType]
    if type(src) in ints and type(dst) in ints:
        return ints.index(type(src)) <= ints.index(type(dst))
    if isinstance(src, (T.FloatType, *ints)) and isinstance(dst, T.DoubleType):
        return True
    return isinstance(src, T.NullType)


def schema_problems(uri: str, table: StructType, data: StructType, evolve: bool) -> None:
    """Raise :class:`SchemaMismatch` naming each column ``data`` cannot be written as.

    A column the table lacks is one unless ``evolve``; a type other than the table's
    is one unless the cast widens (:func:`safe_cast`); a missing nullable column is
    fine (it is written as null). The messages are the embedded backend's.
    """
    table_fields = {f.name: f for f in table.fields}
    extra = [f.name for f in data.fields if f.name not in table_fields]
    if extra and not evolve:
        raise SchemaMismatch(
            f"{uri}: column(s) {', '.join(extra)} are not in the table schema; pass evolve_schema=True to add them"
        )
    incoming = {f.name: f.dataType for f in data.fields}
    problems = []
    for name, field in table_fields.items():
        got = incoming.get(name)
        if got is None:
            if name not in incoming and not field.nullable:
                problems.append(f"{name}: required column missing")
        elif got != field.dataType and not safe_cast(got, field.dataType):
            problems.append(f"{name}: table has {field.dataType.simpleString()}, data has {got.simpleString()}")
    if problems:
        raise SchemaMismatch(f"{uri}: schema mismatch: " + "; ".join(problems))


def conform(df: DataFrame, table: StructType, uri: str, evolve: bool) -> DataFrame:
    """``df`` in the table's column order and types; missing nullable columns as nulls,
    new columns (with ``evolve``) last. Delta itself would refuse a widening cast and a
    missing column of a merge source: conformed here, both backends accept the same data.
    """
    from pyspark.sql import functions as F

    schema_problems(uri, table, df.schema, evolve)
    incoming = {f.name: f.dataType for f in df.schema.fields}
    cols = []
    for field in table.fields:
        if field.name not in incoming:
            cols.append(F.lit(None).cast(field.dataType).alias(field.name))
        elif incoming[field.name] != field.dataType:
            cols.append(F.col(quote_identifier(field.name)).cast(field.dataType).alias(field.name))
        else:
            cols.append(F.col(quote_identifier(field.name)))
    names = {f.name for f in table.fields}
    cols += [F.col(quote_identifier(f.name)) for f in df.schema.fields if f.name not in names]
    return df.select(*cols)


def timestamp_text(timestamp: str | dt.datetime) -> str:
    """``timestampAsOf`` text: an aware datetime as its UTC instant, a naive one as given
    (read in the session time zone, as Spark reads a naive timestamp)."""
    if isinstance(timestamp, dt.datetime):
        if timestamp.tzinfo is not None:
            timestamp = timestamp.astimezone(dt.UTC)
            return timestamp.replace(tzinfo=None).isoformat(sep=" ") + "Z"
        return timestamp.isoformat(sep=" ")
    return str(timestamp)


class JvmBackend:
    """Delta tables through the delta-spark connector."""

    name = "jvm"

    def __init__(self, spark: SparkSession, commit_retries: int = 5, storage_options: dict[str, str] | None = None):
        self.spark = spark
        self.commit_retries = commit_retries
        # The Delta log is read with delta-rs (a few milliseconds, no Spark job) for the
        # version, the history and the rows of small tables: delta-spark answers each
        # with one or two Spark jobs, which made every registry write cost a third more.
        self.log = DeltaLogWriter(spark, storage_options, commit_retries)

    def _delta_table(self, uri: str) -> Any:
        from delta.tables import DeltaTable

        if not DeltaTable.isDeltaTable(self.spark, uri):
            raise TableNotFound(f"no Delta table at {uri}")
        return DeltaTable.forPath(self.spark, uri)

    def exists(self, uri: str) -> bool:
        from delta.tables import DeltaTable

        return bool(DeltaTable.isDeltaTable(self.spark, uri))

    def version(self, uri: str) -> int:
        return self.log.version(uri)

    def partition_columns(self, uri: str) -> list[str]:
        return self.log.partition_columns(uri)

    def history(self, uri: str, limit: int | None = None) -> list[dict[str, Any]]:
        """Commits newest first, as the embedded backend lists them: the keys of a
        segengine commit's tag (``segengine.operation``, its metadata) at the top level
        and ``timestamp`` in epoch milliseconds. Read from the log's commit files by
        delta-rs (the commit info delta-spark writes, ``version`` added)."""
        out = []
        for entry in self.log.history(uri, limit):
            with contextlib.suppress(ValueError, TypeError):
                tag = json.loads(entry.get("userMetadata") or "")
                if isinstance(tag, dict):
                    entry.update({k: v for k, v in tag.items() if k not in entry})
            out.append(entry)
        return out

    def _committed_version(self, uri: str, commit_id: str, fallback: int | None = None) -> int:
        """The version of the commit tagged ``commit_id``: not the latest version, which
        may already be another writer's commit made right after ours.

        Looks at the last few commits first, then the whole history. ``fallback``
        (default: the latest version) when no commit has the tag: an operation that
        had nothing to change commits nothing.
        """
        for limit in (16, None):
            entries = self.log.history(uri, limit)
            for entry in entries:
                if commit_id_of(entry.get("userMetadata")) == commit_id:
                    return int(entry["version"])
            if len(entries) < 16:
                break
        return self.version(uri) if fallback is None else fallback

    def read_rows(self, uri: str, version: int | None = None) -> list[dict[str, Any]]:
        """Every row of a small table as dicts (see :meth:`DeltaLog.read_rows`):
        read by delta-rs with no Spark job, unless the table uses a feature delta-rs
        cannot read, then collected through Spark."""
        try:
            return self.log.read_rows(uri, version)
        except TableFeatureUnsupported:
            return [row.asDict() for row in self.read(uri, version=version).collect()]

    @contextlib.contextmanager
    def _session_tag(self, tag: str, settings: dict[str, str] | None = None) -> Iterator[None]:
        """Tag the commits made inside with ``tag`` (MERGE and DELETE take no writer
        option), with ``settings`` on the session meanwhile; both restored after."""
        wanted = {USER_METADATA_CONF: tag, **(settings or {})}
        with _SESSION_TAG_LOCK:
            before = {key: self.spark.conf.get(key, None) for key in wanted}
            for key, value in wanted.items():
                self.spark.conf.set(key, value)
            try:
                yield
            finally:
                for key, old in before.items():
                    if old is None:
                        self.spark.conf.unset(key)
                    else:
                        self.spark.conf.set(key, old)

    def _failure(self, uri: str, exc: BaseException, operation: str, replace_partitions: Any = None) -> BaseException:
        """The segengine error for a failed Delta operation (``exc`` itself when none fits)."""
        name = conflict_name(exc)
        if name:
            return WriteConflict(
                f"{uri}: {operation} lost to a concurrent commit ({name}); nothing was written, run it again"
            )
        condition = _condition(exc)
        if condition.startswith("DELTA_REPLACE_WHERE_MISMATCH"):
            return SegengineError(f"{uri}: a row falls outside the partition being replaced {replace_partitions}")
        if condition.startswith(("DELTA_FAILED_TO_MERGE_FIELDS", "DELTA_METADATA_MISMATCH", "DELTA_SCHEMA_")):
            return SchemaMismatch(f"{uri}: {_first_line(exc)}")
        return exc

    def table_schema(self, uri: str) -> StructType:
        """The latest schema of the table (resolves the snapshot; no Spark job)."""
        return self.spark.read.format("delta").load(uri).schema

    def read(
        self,
        uri: str,
        version: int | None = None,
        timestamp: str | dt.datetime | None = None,
        partitions: dict[str, Any] | None = None,
        with_file_path: bool = False,
        where: dict[str, tuple[Any, Any]] | None = None,
    ) -> DataFrame:
        from pyspark.sql import functions as F

        if not self.exists(uri):
            raise TableNotFound(f"no Delta table at {uri}")
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        elif timestamp is not None:
            reader = reader.option("timestampAsOf", timestamp_text(timestamp))
        try:
            df = reader.load(uri)  # resolves the snapshot: a missing version fails here
        except Exception as exc:
            if (version is not None or timestamp is not None) and _condition(exc).startswith(_TIME_TRAVEL_CONDITIONS):
                at = (
                    f"version {version} does not exist"
                    if version is not None
                    else f"no version at or before {timestamp}"
                )
                raise TableNotFound(f"{uri}: {at} ({_first_line(exc)})") from exc
            raise
        for key, value in (partitions or {}).items():
            if isinstance(value, (list, tuple, set, frozenset)):
                df = df.filter(F.col(key).isin([F.lit(v) for v in value]))
            else:
                df = df.filter(F.col(key) == F.lit(value))
        # Delta's data skipping prunes files on the partition values and min/max stats.
        for key, (low, high) in (where or {}).items():
            if low is not None:
                df = df.filter(F.col(key) >= F.lit(low))
            if high is not None:
                df = df.filter(F.col(key) <= F.lit(high))
        return df

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
        """Write ``df`` as one Delta commit and return the version of that commit.

        The data is checked against the table's schema first (:func:`conform`), so a
        mismatch is a :class:`SchemaMismatch` naming the column; with
        ``replace_partitions`` a row outside them fails the write (Delta's
        ``replaceWhere`` check) and the table keeps its version.
        """
        if mode not in {"append", "overwrite", "error"}:
            raise SegengineError(f"{uri}: unknown write mode {mode!r}")
        exists = self.exists(uri)
        if exists and mode == "error":
            raise SegengineError(f"{uri}: table already exists")
        if exists:
            df = conform(df, self.table_schema(uri), uri, evolve_schema)
            part_cols = self.partition_columns(uri) if (partition_by or replace_partitions) else []
            if partition_by and list(partition_by) != part_cols:
                raise SchemaMismatch(
                    f"{uri}: table is partitioned by {part_cols}, the write asks for {list(partition_by)}"
                )
        else:
            part_cols = list(partition_by or [])
            missing = [c for c in part_cols if c not in df.columns]
            if missing:
                raise SchemaMismatch(f"{uri}: partition column(s) {missing} are not in the data")
        if replace_partitions and set(replace_partitions) != set(part_cols):
            raise SegengineError(
                f"{uri}: replace_partitions must give every partition column {part_cols}, got {sorted(replace_partitions)}"
            )
        return self._save(
            df,
            uri,
            "append" if mode == "error" else mode,
            part_cols if not exists else [],
            writer_options(mode, replace_partitions, evolve_schema),
            operation or ("REPLACE PARTITION" if replace_partitions else "WRITE"),
            metadata,
            replace_partitions,
        )

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
        """Write rows the driver holds (a registry row, a run summary, a lock) as one commit.

        On a local table with nothing to check row by row, the rows become one Parquet
        file and one commit made by delta-rs, after the Delta log writer's
        WriteSerializable check of every commit since it read the table (see
        :meth:`DeltaLogWriter.write_rows`): a few milliseconds where delta-spark needs
        a Spark job and a snapshot rebuilt by two or three more (0.4-0.7 s), for a
        table of a few hundred rows written many times a day. Both engines commit
        through the same Delta log protocol (put-if-absent of the next version), so
        either one's commits conflict with the other's by Delta's rules. Anything
        else (remote storage, nested columns, constraints, partitioned rows, a writer
        feature delta-rs does not honour) is a delta-spark write.
        """
        if mode not in {"append", "overwrite"}:
            raise SegengineError(f"{uri}: unknown write mode {mode!r}")
        if self.log.can_write_rows(uri, rows, schema, partition_by):
            return self.log.write_rows(rows, schema, uri, mode, partition_by, operation, metadata)
        df = self.spark.createDataFrame(list(rows), schema)
        return self.write(
            df,
            uri,
            mode=mode,
            partition_by=partition_by,
            operation=operation,
            metadata=metadata,
            evolve_schema=evolve_schema,
        )

    def _save(
        self,
        df: DataFrame,
        uri: str,
        mode: str,
        partition_by: Sequence[str],
        options: dict[str, str],
        operation: str,
        metadata: dict[str, Any] | None,
        replacing: dict[str, Any] | None = None,
    ) -> int:
        """One DataFrameWriter save, tagged; the version of its commit."""
        writer = df.write.format("delta").mode(mode)
        if partition_by:
            writer = writer.partitionBy(*partition_by)
        for key, value in options.items():
            writer = writer.option(key, value)
        commit_id = uuid.uuid4().hex
        writer = writer.option("userMetadata", commit_tag(commit_id, operation, metadata))
        try:
            writer.save(uri)
        except Exception as exc:
            failure = self._failure(uri, exc, operation, replacing)
            if failure is exc:
                raise
            raise failure from exc
        return self._committed_version(uri, commit_id)

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
        """Upsert ``source`` by ``keys`` (null-safe: a null key matches a null key) with
        delta-spark's MERGE; return the version of its commit.

        Refused before anything is written: a key repeated in the source (named in
        the message), a source row outside ``within``, a column the table lacks
        (unless ``evolve_schema``, which adds it in the merge's own commit).
        """
        from pyspark.sql import functions as F

        keys = list(keys)
        # The source is read by the checks below and by the merge: evaluated once here
        # (an audience's rules over the order lines are an expensive plan). A source the
        # caller cached is already evaluated once.
        checkpointed = not source.is_cached
        if checkpointed:
            source = source.localCheckpoint(eager=True)
        exists = self.exists(uri)
        outside = None
        if exists:
            outside = outside_within(uri, within, self.partition_columns(uri), delete_missing_in)
            source = conform(source, self.table_schema(uri), uri, evolve_schema)
        # One job answers both questions: is a key repeated, does a row lie outside ``within``.
        as_json = F.to_json(F.struct(*[F.col(quote_identifier(k)) for k in keys]), {"ignoreNullFields": "false"})
        probe = (
            source.groupBy(*[F.col(quote_identifier(k)) for k in keys])
            .count()
            .filter("count > 1")
            .limit(1)
            .select(F.lit(True).alias("repeated"), as_json.alias("key"))
        )
        if outside is not None:
            probe = probe.unionByName(
                source.filter(outside).limit(1).select(F.lit(False).alias("repeated"), as_json.alias("key"))
            )
        answers = probe.collect()
        strays = [r["key"] for r in answers if not r["repeated"]]
        if strays:
            shown = {k: sorted(partition_texts(v)) for k, v in (within or {}).items()}
            raise SegengineError(f"{uri}: merge source row {strays[0]} lies outside the slice {shown}")
        repeated = [json.loads(r["key"]) for r in answers if r["repeated"]]
        if repeated:
            raise SegengineError(f"{uri}: merge source has more than one row for key {repeated[0]}")
        if not exists:
            return self.write(
                source, uri, mode="append", partition_by=partition_by, operation=operation, metadata=metadata
            )
        # A merge that loses a race to a concurrent commit runs again on the new
        # snapshot, with the same (checkpointed) source.
        return self._retried(
            uri,
            operation,
            lambda: self._merge_once(
                source, uri, keys, delete_missing_in, evolve_schema, operation, metadata, within, checkpointed
            ),
        )

    def _merge_once(
        self,
        source: DataFrame,
        uri: str,
        keys: list[str],
        delete_missing_in: dict[str, Any] | None,
        evolve_schema: bool,
        operation: str,
        metadata: dict[str, Any] | None,
        within: dict[str, Any] | None,
        checkpointed: bool,
    ) -> int:
        from delta.tables import DeltaTable

        if within and delete_missing_in and set(delete_missing_in) <= set(within):
            # Every target row of the slice is either matched (replaced) or deleted: the
            # slice becomes the source. Delta's MERGE scans every target file when it has
            # a NOT MATCHED BY SOURCE clause; an overwrite of the slice reads none.
            options = {"replaceWhere": " AND ".join(slice_predicates(within, alias=None))}
            if evolve_schema:
                options["mergeSchema"] = "true"
            return self._save(source, uri, "overwrite", [], options, operation, metadata, within)
        builder = (
            DeltaTable.forPath(self.spark, uri)
            .alias("t")
            .merge(source.alias("s"), merge_condition(keys, within=within))
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
        )
        if delete_missing_in:
            builder = builder.whenNotMatchedBySourceDelete(" AND ".join(slice_predicates(delete_missing_in)))
        if evolve_schema:
            builder = builder.withSchemaEvolution()
        # A checkpointed source is already materialised and cannot change between the
        # merge's two passes, which is why Delta would otherwise copy it once more.
        settings = {MATERIALIZE_SOURCE_CONF: "none"} if checkpointed else {}
        return self._tagged(uri, operation, metadata, builder.execute, settings)

    def delete_where(self, uri: str, condition: Any, operation: str = "DELETE") -> int:
        """Delete the rows matching a Column condition; the version of the commit (the
        current version when no row matched and Delta committed nothing)."""
        table = self._delta_table(uri)
        return self._retried(
            uri, operation, lambda: self._tagged(uri, operation, None, lambda: table.delete(condition))
        )

    def _retried(self, uri: str, operation: str, run: Callable[[], int]) -> int:
        """``run`` again on the new snapshot when it loses a race to a concurrent commit
        (up to ``commit_retries`` times), as the embedded backend does; then the
        :class:`WriteConflict` itself."""
        for attempt in range(self.commit_retries + 1):
            try:
                return run()
            except WriteConflict:
                if attempt >= self.commit_retries:
                    raise
                log.warning("%s: concurrent commit during %s, retrying (%d)", uri, operation, attempt + 1)
                time.sleep(0.2 * (attempt + 1))
        raise WriteConflict(f"{uri}: {operation} did not commit")  # pragma: no cover

    def _tagged(
        self,
        uri: str,
        operation: str,
        metadata: dict[str, Any] | None,
        run: Callable[[], Any],
        settings: dict[str, str] | None = None,
    ) -> int:
        """Run a MERGE or DELETE with its commit tagged; the version of that commit.

        Delta's failures become segengine's (:meth:`_failure`)."""
        commit_id = uuid.uuid4().hex
        try:
            with self._session_tag(commit_tag(commit_id, operation, metadata), settings):
                run()
        except Exception as exc:
            failure = self._failure(uri, exc, operation)
            if failure is exc:
                raise
            raise failure from exc
        return self._committed_version(uri, commit_id)
