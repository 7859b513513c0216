"""Table maintenance: OPTIMIZE (compaction, optional Z-order) and VACUUM, on both backends.

Each operation dispatches on ``lake.backend.name``:

* ``jvm``: delta-spark's ``DeltaTable.optimize().executeCompaction()`` /
  ``executeZOrderBy(...)`` and ``DeltaTable.vacuum(hours)`` (``VACUUM … DRY RUN`` in SQL
  for a dry run, which the Python ``DeltaTable`` does not offer).
* ``embedded``: delta-rs's ``DeltaTable.optimize.compact()`` / ``.z_order([...])`` and
  ``DeltaTable.vacuum(..., full=True)``; see :func:`optimize` and :func:`vacuum` for why
  delta-rs and what is done on top of it.

Every report carries the figures the library itself recorded in the commit it made
(``operationMetrics`` of OPTIMIZE, VACUUM START and VACUUM END), so the two backends
report the same quantities the same way.

Example::

    for outcome in maintain(lake, retention_hours=168):
        print(outcome.line())
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from segengine.errors import SegengineError, TableNotFound
from segengine.lake import TABLES, table_spec
from segengine.session import jvm_of

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.lake import Lake

log = logging.getLogger(__name__)

# Delta's default ``delta.deletedFileRetentionDuration``: files a version of the last
# 7 days reads, and files a writer may still be writing, are never removed.
MIN_RETENTION_HOURS = 168
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"
# delta-spark 4.4 ignores VACUUM's RETAIN n HOURS unless n is 0 (this internal setting,
# on by default) and applies the table's delta.deletedFileRetentionDuration instead.
RETENTION_WINDOW_IGNORE = "spark.databricks.delta.vacuum.retentionWindowIgnore.enabled"
# Delta's VACUUM lists the table directory in a Spark job this wide (Spark's default
# 10,000 tasks: 10,000 tasks for a table of a few files on a local master).
LISTING_PARALLELISM = "spark.sql.sources.parallelPartitionDiscovery.parallelism"
MAX_FILE_SIZE = "spark.databricks.delta.optimize.maxFileSize"
DEFAULT_TARGET_FILE_MB = 128


@dataclass(frozen=True)
class MaintenanceReport:
    """What one OPTIMIZE or VACUUM did to one table.

    Attributes:
        table: the table name (or URI).
        operation: ``OPTIMIZE`` or ``VACUUM``.
        backend: ``jvm`` or ``embedded``.
        version: the table version the operation committed (VACUUM: its VACUUM END
            commit); None when it committed nothing.
        files_before: data files in the snapshot before OPTIMIZE.
        files_after: data files in the snapshot after OPTIMIZE.
        files_compacted: data files OPTIMIZE rewrote (removed from the snapshot).
        files_added: data files OPTIMIZE wrote in their place.
        files_removed: files VACUUM deleted (or would delete, in a dry run); on ``jvm``
            Delta's own count, which includes the empty directories it deleted.
        checksums_removed: how many of them were Hadoop ``.<file>.crc`` checksum files
            (embedded only: delta-spark deletes a checksum with its file, uncounted).
        bytes_removed: their size in bytes (None when it cannot be known).
        dirs_removed: empty directories removed after VACUUM (``embedded``).
        dry_run: True when nothing was deleted.
        zorder_by: the columns OPTIMIZE Z-ordered by (empty: plain compaction).
    """

    table: str
    operation: str
    backend: str
    version: int | None = None
    files_before: int | None = None
    files_after: int | None = None
    files_compacted: int = 0
    files_added: int = 0
    files_removed: int = 0
    checksums_removed: int = 0
    bytes_removed: int | None = 0
    dirs_removed: int = 0
    dry_run: bool = False
    zorder_by: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TableMaintenance:
    """OPTIMIZE and VACUUM of one table (``optimize`` is None in a dry run or when skipped)."""

    table: str
    optimize: MaintenanceReport | None
    vacuum: MaintenanceReport | None
    skipped: str = ""
    note: str = ""

    def line(self) -> str:
        """One line with the figures, as ``segengine maintain`` prints it."""
        if self.skipped:
            return f"{self.table:20s} skipped: {self.skipped}"
        parts = [f"{self.table:20s}"]
        opt = self.optimize
        if opt is None:
            parts.append("optimize skipped (dry run)")
        else:
            how = f"z-order by {','.join(opt.zorder_by)}" if opt.zorder_by else "compaction"
            parts.append(
                f"optimize ({how}) files {opt.files_before} -> {opt.files_after}, "
                f"{opt.files_compacted} compacted into {opt.files_added}, {_version_text(opt.version)}"
            )
        vac = self.vacuum
        if vac is not None:
            verb = "would remove" if vac.dry_run else "removed"
            size = "? bytes" if vac.bytes_removed is None else f"{vac.bytes_removed} bytes"
            crc = f" ({vac.checksums_removed} .crc checksums)" if vac.checksums_removed else ""
            dirs = f", {vac.dirs_removed} empty dirs" if vac.dirs_removed else ""
            parts.append(f"vacuum {verb} {vac.files_removed} files{crc}, {size}{dirs}, {_version_text(vac.version)}")
        if self.note:
            parts.append(self.note)
        return " | ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "skipped": self.skipped,
            "note": self.note,
            "optimize": self.optimize.as_dict() if self.optimize else None,
            "vacuum": self.vacuum.as_dict() if self.vacuum else None,
        }


def _version_text(version: int | None) -> str:
    return "no commit" if version is None else f"version {version}"


# ---------------------------------------------------------------- public operations


def check_retention(retention_hours: float, force: bool, table: str = "") -> None:
    """Refuse a retention shorter than 7 days unless ``force`` (and any negative one).

    Raises:
        SegengineError: naming the table, the retention asked for and the minimum.
    """
    where = f"{table}: " if table else ""
    if retention_hours < 0:
        raise SegengineError(f"{where}VACUUM retention must be >= 0 hours, got {retention_hours}")
    if retention_hours < MIN_RETENTION_HOURS and not force:
        raise SegengineError(
            f"{where}VACUUM retention of {retention_hours} hours is shorter than the {MIN_RETENTION_HOURS} hours "
            "(7 days) Delta keeps by default: time travel to older versions would fail and files a running "
            "writer has not committed yet could be deleted. Pass force=True (--force) to vacuum anyway"
        )


def optimize(
    lake: Lake,
    name: str,
    zorder_by: Sequence[str] | None = None,
    target_file_mb: int | None = None,
) -> MaintenanceReport:
    """Compact the small files of a table (and Z-order them by ``zorder_by``).

    Columns of ``zorder_by`` that the table lacks, or that partition it, are dropped
    (``persona_id`` applies to the tables that have it); with none left, plain
    compaction runs. Readers are unaffected: the commit removes the small files and
    adds the large ones with ``dataChange=false``, and time travel still reads them
    until VACUUM.

    On the embedded backend delta-rs does the work (``optimize.compact`` /
    ``optimize.z_order``): it plans the bins per partition, writes the files with
    statistics and commits in one transaction with its conflict checks. Spark could
    write the files, but the bin planning and the conflict-checked commit would be a
    hand-written copy of what delta-rs does. The cost: delta-rs rewrites on the driver
    (DataFusion, bins processed in parallel on the driver's cores), not on the
    executors; each bin holds at most ``target_file_mb`` of data.

    Args:
        lake: the lake.
        name: a table name of ``TABLES`` (or a table URI).
        zorder_by: columns to Z-order by; None or empty: compaction only.
        target_file_mb: the size files are compacted to (default
            ``maintenance.target_file_mb``); the JVM connector's
            ``spark.databricks.delta.optimize.maxFileSize`` is set to it for the call.

    Returns:
        The :class:`MaintenanceReport` (files before/after, compacted, added, version).
    """
    uri = _uri(lake, name)
    if not lake.backend.exists(uri):
        raise TableNotFound(f"{name}: no Delta table at {uri}")
    target = (target_file_mb or _setting(lake, "target_file_mb", DEFAULT_TARGET_FILE_MB)) * 1024 * 1024
    backend = lake.backend.name
    if backend == "jvm":
        return _optimize_jvm(lake.spark, name, uri, zorder_by or (), target)
    if backend == "embedded":
        return _optimize_embedded(lake, name, uri, zorder_by or (), target)
    raise SegengineError(f"{name}: maintenance does not know the {backend!r} Delta backend")


def vacuum(
    lake: Lake,
    name: str,
    retention_hours: int = MIN_RETENTION_HOURS,
    force: bool = False,
    dry_run: bool = False,
) -> MaintenanceReport:
    """Delete the files no version inside the retention window needs.

    Removed: files that versions older than the retention replaced (tombstones whose
    deletion is older than ``retention_hours``), and files under the table directory
    that no version of the log references (the leftovers of writes that failed before
    their commit) once their modification time is older than the retention. Never
    removed: a file the current snapshot or any version inside the window references,
    anything under ``_delta_log``, or an uncommitted file younger than the retention
    (a writer may be about to commit it).

    * ``jvm``: Delta's VACUUM already lists the table directory and does all of that.
      delta-spark 4.4 ignores ``RETAIN n HOURS`` unless n is 0 (its internal
      ``spark.databricks.delta.vacuum.retentionWindowIgnore.enabled``, on by default) and
      keeps the table's ``delta.deletedFileRetentionDuration`` instead; that setting is
      turned off for the call so that ``retention_hours`` is the retention applied (a
      retention shorter than the table's still needs ``force``).
      A retention under 7 days needs ``spark.databricks.delta.retentionDurationCheck.enabled``
      off: with ``force`` it is turned off for this call only and restored afterwards
      (the setting is session-wide, so a concurrent VACUUM on the same session would
      see it too). On a local master the listing job is also narrowed, for the call, from
      Spark's 10,000 tasks to the default parallelism, unless the session sets
      ``spark.sql.sources.parallelPartitionDiscovery.parallelism`` itself.
    * ``embedded``: delta-rs's default (``lite``) VACUUM only deletes tombstoned files;
      the ``data/<write-id>/`` folders of failed embedded writes are never in the log.
      ``full=True`` makes delta-rs list the table directory as well and delete the files
      the log does not reference, keeping those with a tombstone inside the window and
      those younger than the retention (delta-rs checks their modification time), so no
      hand-written listing is needed. delta-rs deletes files only; the directories left
      empty (``data/<write-id>/`` and partition folders inside it) are removed here, for
      a local warehouse (object stores have no directories). Hadoop's local file system
      writes a ``.<file>.crc`` checksum beside every file Spark writes; the log never
      names those, so delta-rs removes them like any unreferenced file (including the
      checksum of a live file once it is older than the retention, which readers do not
      need) and they count in ``files_removed``. On the JVM backend a checksum goes with
      its file and is not counted.

    Args:
        lake: the lake.
        name: a table name of ``TABLES`` (or a table URI).
        retention_hours: keep what the versions of the last this many hours need.
        force: allow a retention under 168 hours (7 days).
        dry_run: only list what would be deleted.

    Returns:
        The :class:`MaintenanceReport` (files and bytes removed, the VACUUM END version).

    Raises:
        SegengineError: a retention under 7 days without ``force``, or shorter than the
            table's own ``delta.deletedFileRetentionDuration`` without ``force``.
    """
    check_retention(retention_hours, force, name)
    uri = _uri(lake, name)
    if not lake.backend.exists(uri):
        raise TableNotFound(f"{name}: no Delta table at {uri}")
    backend = lake.backend.name
    if backend == "jvm":
        return _vacuum_jvm(lake.spark, name, uri, retention_hours, force, dry_run)
    if backend == "embedded":
        return _vacuum_embedded(lake, name, uri, retention_hours, force, dry_run)
    raise SegengineError(f"{name}: maintenance does not know the {backend!r} Delta backend")


def maintain(
    lake: Lake,
    tables: Sequence[str] | None = None,
    retention_hours: int | None = None,
    force: bool = False,
    zorder: bool = False,
    zorder_by: Sequence[str] | None = None,
    dry_run: bool = False,
    keep_versions: Mapping[str, int] | None = None,
) -> list[TableMaintenance]:
    """OPTIMIZE then VACUUM every existing table of ``TABLES`` (or the ``tables`` named).

    A named table that does not exist yet is reported as skipped; an unknown name is an
    error before any work. A dry run skips OPTIMIZE (neither library can plan one
    without writing it) and lists what VACUUM would delete.

    Args:
        lake: the lake.
        tables: table names; None or empty: ``maintenance.tables`` of the config, and
            when that is empty too, every table of ``TABLES``.
        retention_hours: VACUUM retention (default ``maintenance.retention_hours``).
        force: allow a retention under 7 days.
        zorder: Z-order by ``zorder_by`` (default ``maintenance.zorder_by``) where the
            table has those columns, instead of plain compaction.
        zorder_by: the Z-order columns.
        dry_run: delete nothing, commit nothing.
        keep_versions: table name -> a version that must stay readable (a destination
            sync still has to diff from it): that table's VACUUM retention is lengthened
            to cover the version's commit (:func:`retention_keeping`), and the outcome
            says so in its ``note``.

    Returns:
        One :class:`TableMaintenance` per table, in ``TABLES`` order.
    """
    names = list(tables or _setting(lake, "tables", []) or TABLES)
    for table in names:
        table_spec(table)  # unknown names fail before any work
    hours = _setting(lake, "retention_hours", MIN_RETENTION_HOURS) if retention_hours is None else retention_hours
    check_retention(hours, force)
    columns = tuple(zorder_by or _setting(lake, "zorder_by", ["persona_id"])) if zorder else ()
    out = []
    for table in names:
        if not lake.exists(table):
            out.append(TableMaintenance(table, None, None, skipped="no table yet"))
            continue
        table_hours, note = hours, ""
        if keep_versions and table in keep_versions:
            table_hours, note = retention_keeping(lake, table, keep_versions[table], hours)
        compacted = None if dry_run else optimize(lake, table, zorder_by=columns)
        cleaned = vacuum(lake, table, retention_hours=table_hours, force=force, dry_run=dry_run)
        outcome = TableMaintenance(table, compacted, cleaned, note=note)
        log.info("maintenance %s", outcome.line())
        out.append(outcome)
    return out


def retention_keeping(lake: Lake, name: str, version: int, hours: int) -> tuple[int, str]:
    """The VACUUM retention (hours) under which ``version`` of ``name`` stays readable.

    A file that version reads was removed by a later commit, so its tombstone is no
    older than the version's own commit: a retention longer than the version's age
    keeps every such file. Returns ``hours`` when it already is, else the whole hours of
    that age plus one (longer than the age), with a note saying why.
    """
    entry = next((h for h in lake.history(name) if h.get("version") == version), None)
    if entry is None or entry.get("timestamp") is None:
        return hours, f"version {version} is no longer in the log; retention left at {hours} h"
    age_hours = (time.time() * 1000 - float(entry["timestamp"])) / 3_600_000
    if age_hours < hours:
        return hours, ""
    kept = math.floor(age_hours) + 1
    return kept, f"retention {kept} h instead of {hours} h: a destination still syncs from version {version}"


def totals(outcomes: Sequence[TableMaintenance]) -> dict[str, Any]:
    """The sums over tables: what the daily pipeline's step returns."""
    vacs = [o.vacuum for o in outcomes if o.vacuum]
    opts = [o.optimize for o in outcomes if o.optimize]
    return {
        "tables": len([o for o in outcomes if not o.skipped]),
        "files_compacted": sum(r.files_compacted for r in opts),
        "files_added": sum(r.files_added for r in opts),
        "files_removed": sum(r.files_removed for r in vacs),
        "bytes_removed": sum(r.bytes_removed or 0 for r in vacs),
    }


# ---------------------------------------------------------------- shared helpers


def _uri(lake: Lake, name: str) -> str:
    if "/" in name or "://" in name:
        return name
    return lake.uri(name)


def _setting(lake: Lake, key: str, default: Any) -> Any:
    section = getattr(lake.config, "maintenance", None)
    return getattr(section, key, default) if section is not None else default


@contextlib.contextmanager
def _session_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Set session settings for the duration of the block, then restore (or unset) them."""
    previous = {key: spark.conf.get(key, None) for key in settings}
    try:
        for key, value in settings.items():
            spark.conf.set(key, value)
        yield
    finally:
        for key, old in previous.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def _commits_after(history: list[dict[str, Any]], version: int, operations: set[str]) -> list[dict[str, Any]]:
    """The history entries newer than ``version`` whose operation is one of ``operations``, newest first."""
    found = [h for h in history if int(h["version"]) > version and h.get("operation") in operations]
    return sorted(found, key=lambda h: -int(h["version"]))


def _metric(entry: dict[str, Any] | None, key: str) -> int | None:
    if not entry:
        return None
    value = (entry.get("operationMetrics") or {}).get(key)
    return None if value is None else int(value)


def _zorder_columns(name: str, columns: Sequence[str], schema: Sequence[str], partitions: Sequence[str]) -> tuple:
    usable = tuple(c for c in columns if c in schema and c not in partitions)
    skipped = [c for c in columns if c not in usable]
    if skipped:
        log.info("%s: not Z-ordering by %s (absent or a partition column)", name, ", ".join(skipped))
    return usable


def _local_path(uri: str) -> str | None:
    """The local path of a table URI, or None for a remote store."""
    for prefix in ("file://", "file:"):
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    return None if "://" in uri else uri


def _sizes(spark: SparkSession, paths: Sequence[str]) -> int | None:
    """Total bytes of existing files (local paths by ``os.stat``, others through Hadoop's FileSystem)."""
    total = 0
    for path in paths:
        local = _local_path(path)
        try:
            if local is not None:
                total += os.stat(local).st_size
            else:
                jvm = jvm_of(spark, f"measuring {path}")
                hpath = jvm.org.apache.hadoop.fs.Path(path)
                fs = hpath.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration())  # type: ignore[attr-defined]
                total += int(fs.getFileStatus(hpath).getLen())
        except Exception:  # noqa: BLE001 - a file gone meanwhile, or a store we cannot stat
            return None
    return total


# ---------------------------------------------------------------- jvm


def _optimize_jvm(spark: SparkSession, name: str, uri: str, zorder_by: Sequence[str], target: int) -> MaintenanceReport:
    from delta.tables import DeltaTable

    table = DeltaTable.forPath(spark, uri)
    detail = table.detail().select("numFiles", "partitionColumns").collect()[0]
    before_version = _jvm_version(table)
    columns = _zorder_columns(name, zorder_by, table.toDF().columns, list(detail["partitionColumns"]))
    with _session_conf(spark, {MAX_FILE_SIZE: str(target)}):
        builder = table.optimize()
        result = builder.executeZOrderBy(*columns) if columns else builder.executeCompaction()
        metrics = result.select("metrics.numFilesAdded", "metrics.numFilesRemoved").collect()[0]
    commits = _commits_after(_jvm_history(table, before_version), before_version, {"OPTIMIZE"})
    after = table.detail().select("numFiles").collect()[0]["numFiles"]
    return MaintenanceReport(
        table=name,
        operation="OPTIMIZE",
        backend="jvm",
        version=int(commits[0]["version"]) if commits else None,
        files_before=int(detail["numFiles"]),
        files_after=int(after),
        files_compacted=int(metrics["numFilesRemoved"] or 0),
        files_added=int(metrics["numFilesAdded"] or 0),
        zorder_by=tuple(columns),
    )


def _vacuum_jvm(
    spark: SparkSession, name: str, uri: str, hours: float, force: bool, dry_run: bool
) -> MaintenanceReport:
    from delta.tables import DeltaTable

    from segengine.lake.jvm import sql_literal

    table = DeltaTable.forPath(spark, uri)
    before_version = _jvm_version(table)
    settings = {RETENTION_WINDOW_IGNORE: "false"}
    if force:
        settings[RETENTION_CHECK] = "false"
    if (spark.sparkContext.master or "").startswith("local") and spark.conf.get(LISTING_PARALLELISM, None) is None:
        settings[LISTING_PARALLELISM] = str(spark.sparkContext.defaultParallelism)
    try:
        with _session_conf(spark, settings):
            if dry_run:
                # The Python DeltaTable has no dry run; the SQL command does (paths as literals).
                query = f"VACUUM {sql_literal(uri)} RETAIN {float(hours)!r} HOURS DRY RUN"
                paths = [r["path"] for r in spark.sql(query).collect()]  # bounded by files
            else:
                table.vacuum(float(hours))
    except Exception as exc:  # noqa: BLE001 - Delta's retention check arrives through Py4J
        if "retention" in str(exc).lower():
            raise SegengineError(f"{name}: {str(exc).splitlines()[0]}") from exc
        raise
    if dry_run:
        return MaintenanceReport(
            name, "VACUUM", "jvm", files_removed=len(paths), bytes_removed=_sizes(spark, paths), dry_run=True
        )
    history = _jvm_history(table, before_version)
    end = next(iter(_commits_after(history, before_version, {"VACUUM END"})), None)
    start = next(iter(_commits_after(history, before_version, {"VACUUM START"})), None)
    return MaintenanceReport(
        table=name,
        operation="VACUUM",
        backend="jvm",
        version=int(end["version"]) if end else None,
        # Delta's numDeletedFiles counts the empty directories it deleted too; its
        # numVacuumedDirectories is the number of directories it listed, not removed.
        files_removed=_metric(end, "numDeletedFiles") or 0,
        bytes_removed=_metric(start, "sizeOfDataToDelete") if start else (0 if end is None else None),
    )


def _jvm_version(table: Any) -> int:
    return int(table.history(1).select("version").collect()[0]["version"])


def _jvm_history(table: Any, since: int) -> list[dict[str, Any]]:
    from pyspark.sql import functions as F

    rows = (
        table.history()
        .filter(F.col("version") > F.lit(since))
        .select("version", "operation", "operationMetrics")
        .collect()  # the commits made since ``since``: a handful
    )
    return [r.asDict() for r in rows]


# ---------------------------------------------------------------- embedded


def _embedded_table(lake: Lake, uri: str, writing: bool) -> Any:
    """The delta-rs table through the backend, which refuses features it cannot honour."""
    backend = lake.backend
    table = backend._table(uri)
    if writing:
        backend._check_features(uri, table, writing=True)
    return table


def _segengine_commit() -> Any:
    from deltalake import CommitProperties

    return CommitProperties(custom_metadata={"operation_source": "segengine", "segengine.operation": "MAINTENANCE"})


def _optimize_embedded(lake: Lake, name: str, uri: str, zorder_by: Sequence[str], target: int) -> MaintenanceReport:
    table = _embedded_table(lake, uri, writing=True)
    before_version = table.version()
    before = table.get_add_actions(flatten=False).num_rows
    part_cols = list(table.metadata().partition_columns)
    schema = [f.name for f in table.schema().fields]
    columns = _zorder_columns(name, zorder_by, schema, part_cols)
    if columns:
        metrics = table.optimize.z_order(list(columns), target_size=target, commit_properties=_segengine_commit())
    else:
        metrics = table.optimize.compact(target_size=target, commit_properties=_segengine_commit())
    after_table = _embedded_table(lake, uri, writing=False)
    history = after_table.history(max(1, after_table.version() - before_version))
    commits = _commits_after(history, before_version, {"OPTIMIZE"})
    return MaintenanceReport(
        table=name,
        operation="OPTIMIZE",
        backend="embedded",
        version=int(commits[0]["version"]) if commits else None,
        files_before=int(before),
        files_after=int(after_table.get_add_actions(flatten=False).num_rows),
        files_compacted=int(metrics.get("numFilesRemoved", 0)),
        files_added=int(metrics.get("numFilesAdded", 0)),
        zorder_by=tuple(columns),
    )


def _vacuum_embedded(lake: Lake, name: str, uri: str, hours: int, force: bool, dry_run: bool) -> MaintenanceReport:
    if int(hours) != hours:
        raise SegengineError(f"{name}: the embedded backend vacuums whole hours, got {hours}")
    table = _embedded_table(lake, uri, writing=True)
    before_version = table.version()
    started = time.time()
    try:
        paths = table.vacuum(
            retention_hours=int(hours),
            dry_run=dry_run,
            enforce_retention_duration=not force,
            full=True,
            commit_properties=_segengine_commit(),
        )
    except Exception as exc:  # noqa: BLE001 - delta-rs raises a generic DeltaError
        if "retention" in str(exc).lower():
            raise SegengineError(f"{name}: {exc}") from exc
        raise
    root = _local_path(table.table_uri.rstrip("/"))
    if dry_run:
        sizes = _sizes(lake.spark, [f"{table.table_uri.rstrip('/')}/{p}" for p in paths]) if root else None
        return MaintenanceReport(
            name,
            "VACUUM",
            "embedded",
            files_removed=len(paths),
            checksums_removed=_checksums(paths),
            bytes_removed=sizes,
            dry_run=True,
        )
    after = _embedded_table(lake, uri, writing=False)
    history = after.history(max(1, after.version() - before_version))
    end = next(iter(_commits_after(history, before_version, {"VACUUM END"})), None)
    start = next(iter(_commits_after(history, before_version, {"VACUUM START"})), None)
    dirs = _remove_empty_dirs(root, paths, cutoff=started - hours * 3600) if root else 0
    return MaintenanceReport(
        table=name,
        operation="VACUUM",
        backend="embedded",
        version=int(end["version"]) if end else None,
        files_removed=len(paths),
        checksums_removed=_checksums(paths),
        bytes_removed=_metric(start, "sizeOfDataToDelete") if start else 0,
        dirs_removed=dirs,
    )


def _checksums(paths: Sequence[str]) -> int:
    """How many of ``paths`` are Hadoop checksum files (``.<name>.crc`` beside ``<name>``)."""
    return sum(1 for p in paths if p.rsplit("/", 1)[-1].startswith(".") and p.endswith(".crc"))


def _remove_empty_dirs(root: str, deleted: Sequence[str], cutoff: float) -> int:
    """Remove the directories under ``root`` that VACUUM left empty; return how many.

    delta-rs deletes files, never directories, so each embedded write's
    ``data/<write-id>/`` folder (and the partition folders inside it) would stay
    behind, empty, forever. A directory goes when it is empty and either held a file
    VACUUM just deleted (or such a directory), or was last modified before ``cutoff``
    (a failed write that left only folders). A fresh empty directory is kept: a
    writer may be about to put its files there. ``_delta_log`` and other names starting
    with ``_`` or ``.`` at the top are never touched.
    """
    emptied = {os.path.normpath(os.path.join(root, os.path.dirname(p))) for p in deleted}
    removed = 0
    root = os.path.normpath(root)
    for dirpath, _dirnames, filenames in os.walk(root, topdown=False):
        dirpath = os.path.normpath(dirpath)
        if dirpath == root:
            continue
        top = os.path.relpath(dirpath, root).split(os.sep)[0]
        if top.startswith(("_", ".")):
            continue
        if filenames:
            continue
        try:
            eligible = dirpath in emptied or os.stat(dirpath).st_mtime < cutoff
            if eligible and not os.listdir(dirpath):
                os.rmdir(dirpath)  # fails (and is skipped) if a writer just put a file here
                removed += 1
                emptied.add(os.path.dirname(dirpath))
        except OSError:
            continue
    return removed
