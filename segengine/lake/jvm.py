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

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from segengine.errors import SchemaMismatch, SegengineError, TableNotFound, WriteConflict

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def quote_identifier(name: str) -> str:
    """Backtick-quote a column name for Spark SQL (backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"


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


def slice_predicates(values: dict[str, Any], alias: str = "t") -> list[str]:
    """``alias.col = literal`` (``IN (…)`` for a list) per entry: a merge's slice of the target."""
    out = []
    for col_name, value in values.items():
        col = f"{alias}.{quote_identifier(col_name)}"
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


class JvmBackend:
    """Delta tables through the delta-spark connector."""

    name = "jvm"

    def __init__(self, spark: SparkSession):
        self.spark = spark

    def _delta_table(self, uri: str) -> Any:
        from delta.tables import DeltaTable

        if not DeltaTable.isDeltaTable(self.spark, uri):
            raise TableNotFound(f"no Delta table at {uri}")
        return DeltaTable.forPath(self.spark, uri)

    def exists(self, uri: str) -> bool:
        from delta.tables import DeltaTable

        return bool(DeltaTable.isDeltaTable(self.spark, uri))

    def version(self, uri: str) -> int:
        return int(self._delta_table(uri).history(1).collect()[0]["version"])

    def partition_columns(self, uri: str) -> list[str]:
        detail = self._delta_table(uri).detail().collect()[0]
        return list(detail["partitionColumns"])

    def history(self, uri: str, limit: int | None = None) -> list[dict[str, Any]]:
        rows = self._delta_table(uri).history(limit).collect() if limit else self._delta_table(uri).history().collect()
        return [r.asDict(recursive=True) for r in rows]

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
            reader = reader.option("timestampAsOf", str(timestamp))
        df = reader.load(uri)
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
        from pyspark.errors import AnalysisException

        writer = df.write.format("delta").mode(mode)
        if partition_by and not self.exists(uri):
            writer = writer.partitionBy(*partition_by)
        for key, value in writer_options(mode, replace_partitions, evolve_schema).items():
            writer = writer.option(key, value)
        if metadata or operation:
            writer = writer.option("userMetadata", str({"operation": operation, **(metadata or {})}))
        try:
            writer.save(uri)
        except AnalysisException as exc:
            if "schema" in str(exc).lower():
                raise SchemaMismatch(f"{uri}: {exc}") from exc
            raise
        return self.version(uri)

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
        if not self.exists(uri):
            return self.write(source, uri, mode="append", partition_by=partition_by)
        target = self._delta_table(uri).alias("t")
        builder = (
            target.merge(source.alias("s"), merge_condition(keys, within=within))
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
        )
        if delete_missing_in:
            cond = " AND ".join(slice_predicates(delete_missing_in))
            builder = builder.whenNotMatchedBySourceDelete(cond)
        try:
            builder.execute()
        except Exception as exc:  # delta raises ConcurrentAppendException & co via Py4J
            if "Concurrent" in type(exc).__name__ or "Concurrent" in str(exc):
                raise WriteConflict(f"{uri}: {exc}") from exc
            raise
        return self.version(uri)

    def delete_where(self, uri: str, condition: Any, operation: str = "DELETE") -> int:
        self._delta_table(uri).delete(condition)
        return self.version(uri)
