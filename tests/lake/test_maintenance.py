"""OPTIMIZE and VACUUM on both backends, on hand-written tables of a few one-row files."""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest

from segengine.errors import EnvironmentProblem, SegengineError
from segengine.lake import Lake
from segengine.lake.maintenance import maintain, optimize, vacuum

SCHEMA = "audience_id string, persona_id long"


@pytest.fixture(params=["jvm", "embedded"])
def backend_lake(request, spark, config):
    """A Lake on each backend over a fresh warehouse (jvm skipped without Delta's jars)."""
    cfg = config.replace(delta=config.delta.replace(backend=request.param))
    try:
        return Lake.open(spark, cfg)
    except EnvironmentProblem as exc:
        pytest.skip(str(exc))


def _append(lake: Lake, name: str, rows: list[tuple], mode: str = "append") -> int:
    """One commit of exactly one data file (a single partition of rows)."""
    return lake.write(lake.spark.createDataFrame(rows, SCHEMA).coalesce(1), name, mode=mode)


def _rows(lake: Lake, name: str, version: int | None = None) -> list[tuple]:
    return sorted(tuple(r) for r in lake.read(name, version=version).select("audience_id", "persona_id").collect())


def _files_on_disk(root: str) -> dict[str, int]:
    """Every file under the table directory except the Delta log: path relative to the table -> bytes."""
    out = {}
    for dirpath, _, names in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        if rel_dir.split(os.sep)[0] == "_delta_log":
            continue
        for n in names:
            out[os.path.normpath(os.path.join(rel_dir, n))] = os.path.getsize(os.path.join(dirpath, n))
    return out


def _leftover(root: str, folder: str, age_hours: float) -> Path:
    """A Parquet-named file no commit references (a write that failed before its commit)."""
    path = Path(root) / "data" / folder / "part-00000-leftover.snappy.parquet"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"PAR1 never committed PAR1")
    stamp = time.time() - age_hours * 3600
    os.utime(path, (stamp, stamp))
    return path


def _replaced_table(lake: Lake, name: str) -> str:
    """Two appends, then an overwrite: two files tombstoned now, one current file."""
    _append(lake, name, [("a", 1)])
    _append(lake, name, [("a", 2)])
    _append(lake, name, [("b", 3)], mode="overwrite")
    return lake.uri(name)


# ---------------------------------------------------------------- optimize


def test_optimize_compacts_six_small_appends_into_one_file_per_partition(backend_lake):
    lake = backend_lake
    for i in range(6):
        _append(lake, "audience_members", [("a" if i % 2 else "b", i)])
    before_version = lake.version("audience_members")

    report = optimize(lake, "audience_members")

    assert (report.files_before, report.files_after) == (6, 2)
    assert (report.files_compacted, report.files_added) == (6, 2)
    assert report.version == before_version + 1 == lake.version("audience_members")
    assert report.zorder_by == ()
    assert _rows(lake, "audience_members") == [("a", 1), ("a", 3), ("a", 5), ("b", 0), ("b", 2), ("b", 4)]
    assert _rows(lake, "audience_members", version=before_version) == _rows(lake, "audience_members")


def test_optimize_twice_commits_nothing_the_second_time(backend_lake):
    lake = backend_lake
    for i in range(3):
        _append(lake, "audience_members", [("a", i)])
    optimize(lake, "audience_members")
    version = lake.version("audience_members")

    again = optimize(lake, "audience_members")

    assert (again.files_before, again.files_after, again.files_compacted, again.version) == (1, 1, 0, None)
    assert lake.version("audience_members") == version


def test_zorder_uses_only_columns_the_table_has_outside_its_partitions(backend_lake):
    lake = backend_lake
    for i in range(4):
        _append(lake, "audience_members", [("a", 10 - i)])

    report = optimize(lake, "audience_members", zorder_by=["persona_id", "no_such_column", "audience_id"])

    assert report.zorder_by == ("persona_id",)
    assert (report.files_before, report.files_after) == (4, 1)
    assert _rows(lake, "audience_members") == [("a", 7), ("a", 8), ("a", 9), ("a", 10)]


# ---------------------------------------------------------------- vacuum


def test_vacuum_forced_to_zero_hours_removes_replaced_and_uncommitted_files(backend_lake):
    lake = backend_lake
    root = _replaced_table(lake, "audience_members")
    leftover = _leftover(root, "failed-write", age_hours=1)
    current = {os.path.normpath(f["path"]) for f in lake.files("audience_members")}
    on_disk = _files_on_disk(root)
    before_version = lake.version("audience_members")

    report = vacuum(lake, "audience_members", retention_hours=0, force=True)

    gone = set(on_disk) - set(_files_on_disk(root))
    # Both: the 2 replaced data files and the leftover. Embedded: delta-rs also deletes the
    # Hadoop checksum files beside the 3 files Spark wrote (the log names none of them);
    # delta-spark deletes a checksum with its file and does not count it.
    expected = 3 if lake.backend.name == "jvm" else 6
    assert report.files_removed == expected
    assert report.checksums_removed == (0 if lake.backend.name == "jvm" else 3)
    assert not leftover.exists()
    assert current <= set(_files_on_disk(root))
    # The sizes the commit recorded: delta-spark counts no checksum file, delta-rs counts all.
    counted = [p for p in gone if lake.backend.name == "embedded" or not p.endswith(".crc")]
    assert report.bytes_removed == sum(on_disk[p] for p in counted)
    assert report.version == before_version + 2 == lake.version("audience_members")  # VACUUM START, END
    assert _rows(lake, "audience_members") == [("b", 3)]
    if lake.backend.name == "embedded":
        # The two replaced writes' folders, the audience_id= folder inside each, and the
        # failed write's folder. (delta-spark removes an emptied folder on its next
        # VACUUM, once the folder itself is older than the retention.)
        assert report.dirs_removed == 5 and not leftover.parent.exists()
        assert sorted(os.listdir(Path(root) / "data")) == [Path(next(iter(current))).parts[1]]


def test_vacuum_under_seven_days_is_refused_without_force(backend_lake):
    lake = backend_lake
    root = _replaced_table(lake, "audience_members")
    leftover = _leftover(root, "failed-write", age_hours=24 * 30)

    with pytest.raises(SegengineError, match="167 hours is shorter than the 168 hours"):
        vacuum(lake, "audience_members", retention_hours=167)
    with pytest.raises(SegengineError, match="168 hours"):
        maintain(lake, tables=["audience_members"], retention_hours=0)

    assert leftover.exists()
    assert lake.history("audience_members", 1)[0]["operation"] not in {"VACUUM START", "VACUUM END", "OPTIMIZE"}


def test_default_retention_keeps_versions_of_the_week_and_removes_month_old_leftovers(backend_lake):
    lake = backend_lake
    root = _replaced_table(lake, "audience_members")
    old = _leftover(root, "failed-last-month", age_hours=24 * 30)

    report = vacuum(lake, "audience_members")

    assert report.files_removed == 1 and not old.exists()
    assert _rows(lake, "audience_members", version=0) == [("a", 1)]
    assert _rows(lake, "audience_members", version=1) == [("a", 1), ("a", 2)]


def test_files_younger_than_the_retention_are_kept(backend_lake):
    lake = backend_lake
    root = _replaced_table(lake, "audience_members")
    old = _leftover(root, "failed-3h-ago", age_hours=3)
    young = _leftover(root, "still-writing", age_hours=0)

    report = vacuum(lake, "audience_members", retention_hours=2, force=True)

    assert report.files_removed == 1
    assert not old.exists() and young.exists()
    # The appends were replaced seconds ago: their versions lie inside the 2 hours.
    assert _rows(lake, "audience_members", version=1) == [("a", 1), ("a", 2)]


def test_dry_run_reports_the_files_and_removes_nothing(backend_lake):
    lake = backend_lake
    root = _replaced_table(lake, "audience_members")
    leftover = _leftover(root, "failed-write", age_hours=1)
    on_disk = _files_on_disk(root)
    version = lake.version("audience_members")

    report = vacuum(lake, "audience_members", retention_hours=0, force=True, dry_run=True)

    assert report.dry_run and report.files_removed == (3 if lake.backend.name == "jvm" else 6)
    assert report.bytes_removed > 0 and report.version is None
    assert _files_on_disk(root) == on_disk and leftover.exists()
    assert lake.version("audience_members") == version
    assert _rows(lake, "audience_members", version=0) == [("a", 1)]


# ---------------------------------------------------------------- every table


def test_maintain_optimizes_and_vacuums_existing_tables_and_skips_the_rest(backend_lake):
    lake = backend_lake
    for i in range(3):
        _append(lake, "audience_members", [("a", i)])
    lake.write_rows([(dt.date(2025, 6, 30), "x", 1)], "snapshot_date date, segment string, customers long", "runs")

    outcomes = {o.table: o for o in maintain(lake, retention_hours=0, force=True)}

    members = outcomes["audience_members"]
    assert (members.optimize.files_before, members.optimize.files_after) == (3, 1)
    assert members.vacuum.files_removed == (3 if lake.backend.name == "jvm" else 6)
    assert "files 3 -> 1, 3 compacted into 1" in members.line()
    assert outcomes["runs"].optimize.files_compacted == 0
    assert outcomes["events"].skipped == "no table yet" and outcomes["events"].line().endswith("no table yet")
    assert _rows(lake, "audience_members") == [("a", 0), ("a", 1), ("a", 2)]
