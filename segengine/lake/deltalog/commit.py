"""Committing to the Delta log: one atomic commit after a WriteSerializable check.

:class:`DeltaCommits` commits a write's add and remove actions through delta-rs with
no rebase of its own, after reading every commit made since the write planned and
refusing (:class:`~segengine.errors.WriteConflict`) one that touched what the write
read or replaces (:class:`_Reads`), removed a file it removes, or changed the
table's metadata or protocol. It also refuses removes the table forbids.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from segengine.errors import (
    ConstraintViolation,
    TableFeatureUnsupported,
    WriteConflict,
)
from segengine.lake.deltalog.files import _partition_values
from segengine.lake.deltalog.snapshot import DeltaLog, _commit_actions

if TYPE_CHECKING:
    pass

log = logging.getLogger(__name__)


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


class DeltaCommits(DeltaLog):
    """A :class:`DeltaLog` that also commits: the conflict check and the atomic commit."""

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
        custom: dict[str, str | int | float | bool] = {
            "operation_source": "segengine",
            "segengine.operation": operation,
            "segengine.commit_id": commit_id,
        }
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
            info: dict[str, Any] = next((a["commitInfo"] for a in actions if "commitInfo" in a), {})
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


def _version_of_commit(table: Any, commit_id: str, read_version: int) -> int:
    """The version holding the commit tagged ``commit_id`` (made on top of ``read_version``)."""
    latest = table.version()
    for entry in table.history(max(1, latest - read_version)):
        if entry.get("segengine.commit_id") == commit_id:
            return int(entry["version"])
    return latest
