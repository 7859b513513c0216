"""Writing with Spark: append, overwrite, partition overwrite, schema evolution, constraints.

Phase 1 of a write: Spark writes Parquet files under ``data/<write-id>/`` after the
rows are conformed to the table's schema (:meth:`SparkWrites._conform`) and guarded
by its rules (:meth:`SparkWrites._enforce`). Phase 2 is the commit of
:class:`~segengine.lake.deltalog.commit.DeltaCommits`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from segengine.errors import (
    ConstraintViolation,
    SchemaMismatch,
    SegengineError,
    TableFeatureUnsupported,
)
from segengine.lake.deltalog.commit import _Reads, _slice_of
from segengine.lake.deltalog.files import _delta_schema, _join_uri, _partition_string, _remove_action
from segengine.lake.deltalog.writer import DeltaLogWriter
from segengine.lake.embedded.rules import _VIOLATION_MARK, _generation_expressions, _sql_expr, _table_rules

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType


class SparkWrites(DeltaLogWriter):
    """A :class:`DeltaLogWriter` whose data files Spark writes."""

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
        filters: list[tuple[str, str, Any]] | None = None
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
            removes: list[Any] = []  # delta-rs remove actions
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
        guard: Column | None = None
        for label, ok in rules:
            failed = ~F.coalesce(ok, F.lit(False))
            error = F.raise_error(F.concat(F.lit(f"{_VIOLATION_MARK}{uri}: {label} violated by row "), row))
            guard = F.when(failed, error) if guard is None else guard.when(failed, error)
        assert guard is not None  # ``rules`` is not empty here
        try:
            return df.filter(guard.otherwise(F.lit(True)))
        except Exception as exc:  # the expression does not resolve on these columns
            raise TableFeatureUnsupported(
                f"{uri}: a table rule cannot be evaluated by Spark on the written columns; refusing to write ({exc})"
            ) from exc

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


def _evolved_schema(table: Any, new_fields: list[Any]) -> Any:
    """The table's Delta schema, unchanged, plus ``new_fields`` (Spark fields) as nullable columns."""
    import pyarrow as pa
    from deltalake import Field, Schema
    from pyspark.sql.pandas.types import to_arrow_type

    added = [Field.from_arrow(pa.field(f.name, to_arrow_type(f.dataType, timezone="UTC"), True)) for f in new_fields]
    return Schema(list(table.schema().fields) + added)


def _delta_schema_of(df: DataFrame) -> Any:
    """The Delta schema for ``df``; every column nullable, as Delta writers default to."""
    return _delta_schema(df.schema)


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
