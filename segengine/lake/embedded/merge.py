"""Merge and delete, copy-on-write: only the data files that hold a matched row are rewritten.

Both plan on the latest snapshot and plan again on the fresh one when a concurrent
commit conflicts (their result depends only on the table and the source).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from segengine.errors import (
    SegengineError,
    WriteConflict,
)
from segengine.lake.deltalog.commit import _Reads, _slice_of
from segengine.lake.deltalog.files import _partition_values, _remove_action
from segengine.lake.embedded.read import PATH_COL, SparkReads
from segengine.lake.embedded.write import SparkWrites, _evolved_schema
from segengine.lake.slices import outside_within

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


class SparkMerges(SparkWrites, SparkReads):
    """Merge and delete over :class:`SparkWrites` and :class:`SparkReads`."""

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
        replaces_slice = bool(within) and bool(delete_missing_in) and set(delete_missing_in or ()) <= set(within or ())
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
            shown = {k: sorted(_partition_values(v)) for k, v in (within or {}).items()}
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


def _join_keys(target: DataFrame, keys_df: DataFrame, keys: list[str], how: str) -> DataFrame:
    """``target`` semi- or anti-joined to ``keys_df`` on null-safe equality of ``keys``.

    A merge matches a null key to a null key on both backends (the JVM backend's ON
    clause uses ``<=>``); a plain equi-join would never match it and keep both rows.
    """
    from pyspark.sql import functions as F

    renamed = keys_df.select(*[F.col(k).alias(f"__key_{i}") for i, k in enumerate(keys)])
    cond = [target[k].eqNullSafe(renamed[f"__key_{i}"]) for i, k in enumerate(keys)]
    return target.join(renamed, cond, how)


def _check_unique_keys(uri: str, keys: list[str], repeated: list[Any]) -> None:
    """Raise when the merge source repeats a key (``repeated``: the key values found, if any)."""
    if repeated:
        values = list(repeated[0])[: len(keys)]
        raise SegengineError(f"{uri}: merge source has more than one row for key {dict(zip(keys, values))}")
