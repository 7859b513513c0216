"""The embedded Delta backend: delta-rs keeps the log, Spark moves the data.

:class:`EmbeddedBackend` is the Delta log of :mod:`segengine.lake.deltalog` with
Spark's reads (:mod:`.read`), writes (:mod:`.write`) and merges and deletes
(:mod:`.merge`) on top; the package's docstring describes the protocol.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from segengine.errors import SegengineError
from segengine.lake.embedded.merge import SparkMerges

if TYPE_CHECKING:
    from pyspark.sql.types import StructType


class EmbeddedBackend(SparkMerges):
    """Delta tables through delta-rs (log) + Spark (Parquet data)."""

    name = "embedded"

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
        no Spark job (:meth:`DeltaLogWriter.write_rows`): on small metadata tables the
        job would cost more than the data. Whatever this path does not cover (a remote
        table, a partitioned write with rows, nested types, a schema that differs from
        the table's) goes through :meth:`write`, which conforms or refuses it as usual.
        """
        if mode not in {"append", "overwrite"}:
            raise SegengineError(f"{uri}: unknown write mode {mode!r}")
        if not self.can_write_rows(uri, rows, schema, partition_by):
            df = self.spark.createDataFrame(list(rows), schema)
            return self.write(df, uri, mode, partition_by, None, evolve_schema, operation, metadata)
        return super().write_rows(rows, schema, uri, mode, partition_by, operation, metadata)
