"""`segengine maintain`: one line per table with the figures; a short retention needs --force."""

from __future__ import annotations

import os
import time
from pathlib import Path


def _three_appends_and_a_leftover(lake) -> Path:
    for i in range(3):
        df = lake.spark.createDataFrame([("a", i)], "audience_id string, persona_id long").coalesce(1)
        lake.write(df, "audience_members")
    leftover = Path(lake.uri("audience_members")) / "data" / "failed-write" / "part-00000-x.snappy.parquet"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"never committed")
    stamp = time.time() - 3600
    os.utime(leftover, (stamp, stamp))
    return leftover


def test_maintain_compacts_vacuums_and_prints_one_line_per_table(invoke, lake):
    leftover = _three_appends_and_a_leftover(lake)

    result = invoke("maintain", "--table", "audience_members", "--retention-hours", "0", "--force")

    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    # Removed: the 3 compacted files and the leftover; on the embedded backend also the
    # 3 Hadoop checksum files Spark wrote beside the appends.
    removed = 4 if lake.backend.name == "jvm" else 7
    assert line.startswith("audience_members ")
    assert "optimize (compaction) files 3 -> 1, 3 compacted into 1, version 3" in line
    crc = "" if lake.backend.name == "jvm" else " (3 .crc checksums)"
    assert f"vacuum removed {removed} files{crc}, " in line and line.endswith("version 5")
    assert not leftover.exists()
    assert sorted(r["persona_id"] for r in lake.read("audience_members").collect()) == [0, 1, 2]


def test_maintain_refuses_a_day_of_retention_without_force_in_one_line(invoke, lake):
    leftover = _three_appends_and_a_leftover(lake)

    result = invoke("maintain", "--retention-hours", "24")

    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: VACUUM retention of 24 hours is shorter than the 168")
    assert leftover.exists() and lake.version("audience_members") == 2


def test_maintain_dry_run_changes_nothing(invoke, lake):
    leftover = _three_appends_and_a_leftover(lake)

    result = invoke("maintain", "--table", "audience_members", "--dry-run", "--retention-hours", "0", "--force")

    assert result.exit_code == 0, result.output
    (line,) = result.output.splitlines()
    # The leftover; on the embedded backend also the checksum files of the live appends
    # (no log names them).
    would = 1 if lake.backend.name == "jvm" else 4
    assert "optimize skipped (dry run)" in line and f"vacuum would remove {would} files" in line
    assert leftover.exists() and lake.version("audience_members") == 2
