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

The package, module by module: :mod:`.backend` (:class:`EmbeddedBackend`),
:mod:`.read` (snapshots read by Spark), :mod:`.write` (Spark writes, schema
conformance and evolution), :mod:`.rules` (constraints, invariants, generated
columns), :mod:`.merge` (merge and delete). The Delta log itself (snapshots, file
statistics, commits and their conflict check) is :mod:`segengine.lake.deltalog`,
which the JVM backend shares.
"""

from __future__ import annotations

from segengine.lake.deltalog import SUPPORTED_READER_FEATURES, SUPPORTED_WRITER_FEATURES
from segengine.lake.embedded.backend import EmbeddedBackend
from segengine.lake.embedded.read import PATH_COL

__all__ = ["PATH_COL", "SUPPORTED_READER_FEATURES", "SUPPORTED_WRITER_FEATURES", "EmbeddedBackend"]
