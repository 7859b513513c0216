"""Adding data files to the Delta log, and writing rows the driver holds without Spark.

:class:`DeltaLogWriter` lists the Parquet files a write made (Spark's or pyarrow's)
as add actions with their statistics, and commits small driver-side rows (a registry
row, a run summary) as one Parquet file and one commit. Both backends use it: the
embedded one for every write, the JVM one for :meth:`DeltaLogWriter.write_rows`.
"""

from __future__ import annotations

import json
import os
import urllib.parse
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from segengine.errors import (
    SegengineError,
    TableFeatureUnsupported,
)
from segengine.lake.deltalog.commit import DeltaCommits, _Reads
from segengine.lake.deltalog.files import (
    NULL_PARTITION,
    _column_stats,
    _delta_schema,
    _remove_action,
    _strip_file_scheme,
)
from segengine.session import jvm_of

if TYPE_CHECKING:
    from pyspark.sql.types import StructType


class DeltaLogWriter(DeltaCommits):
    """A :class:`DeltaCommits` that turns written files into add actions and commits driver rows."""

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
    ) -> int:
        """Write rows the driver already holds (a registry row, a run summary, none to create a table).

        The rows become one Parquet file written by pyarrow and one Delta commit, with
        no Spark job: on small metadata tables the job would cost more than the data.
        Only for rows :meth:`can_write_rows` accepts: the caller sends the others
        (a remote table, a partitioned write with rows, nested types, a schema that
        differs from the table's) through its Spark write, which conforms or refuses
        them as usual.
        """
        if mode not in {"append", "overwrite"}:
            raise SegengineError(f"{uri}: unknown write mode {mode!r}")
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
        jvm = jvm_of(self.spark, f"listing {target}")
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


def _same_columns(table: StructType, data: StructType) -> bool:
    """Same column names, order and types (nullability aside)."""
    return [(f.name, f.dataType) for f in table.fields] == [(f.name, f.dataType) for f in data.fields]


def _has_rules(table: Any) -> bool:
    """Whether the table declares anything a write must check on its rows."""
    if table is None:
        return False
    config = table.metadata().configuration or {}
    if any(k.startswith("delta.constraints.") for k in config):
        return True
    text = json.dumps(json.loads(table.schema().to_json()))
    return '"nullable": false' in text or "delta.invariants" in text or "delta.generationExpression" in text
