"""Reading a Delta table's log with delta-rs: snapshots, features, versions, files, history.

:class:`DeltaLog` opens a snapshot (latest, a version or a timestamp), refuses the
table features neither backend's delta-rs path honours, and answers what the log
alone answers: the version, the partition columns, the history, the data files of a
snapshot (pruned on partition values and statistics), the files changed since a
version and the rows of a small table. No Spark job.
"""

from __future__ import annotations

import datetime as dt
import json
import urllib.parse
from typing import TYPE_CHECKING, Any

from segengine.errors import (
    SegengineError,
    TableFeatureUnsupported,
    TableNotFound,
)
from segengine.lake.deltalog.files import (
    _arrow_schema,
    _logged_file,
    _may_overlap,
    _partition_string,
    _partition_values,
    _strip_file_scheme,
    _typed_stat_columns,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession
    from pyspark.sql.types import StructType


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


class DeltaLog:
    """A Delta table's log through delta-rs: snapshots and what they list, no Spark job."""

    def __init__(self, spark: SparkSession, storage_options: dict[str, str] | None = None, commit_retries: int = 5):
        self.spark = spark
        self.storage_options = dict(storage_options or {})
        self.commit_retries = commit_retries

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
