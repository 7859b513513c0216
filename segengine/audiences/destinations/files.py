"""``files`` delivery: a drop folder per version range, its manifest written last."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from segengine.audiences.destinations.registry import FIRST_SYNC, Destination
from segengine.audiences.destinations.watermarks import Outcome
from segengine.audiences.registry import Audience, _now, latest_refresh_stats
from segengine.errors import AudienceError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.lake import Lake


def _deliver_files(
    spark: SparkSession, lake: Lake, dest: Destination, aud: Audience, span: tuple[int, int], diff: DataFrame
) -> tuple[Outcome, dict[str, int]]:
    """Write the drop folder of a version range, its manifest last (a rerun rewrites it whole)."""
    from pyspark.sql import functions as F

    s = dest.settings
    fmt = s["format"]
    folder = (
        Path(str(s["path"]).removeprefix("file://").removeprefix("file:")) / aud.audience_id / f"v{span[0]}-{span[1]}"
    )
    if folder.exists():
        shutil.rmtree(folder)  # a rerun of an unfinished drop starts over
    folder.mkdir(parents=True)
    joins = _with_columns(spark, lake, aud, diff.where(F.col("change") == "join"), s["columns"])
    parts = (
        [("snapshot", joins)]
        if span[0] == FIRST_SYNC
        else [
            ("adds", joins),
            ("removes", diff.where(F.col("change") == "leave").select("persona_id")),
        ]
    )
    files, counts = [], {}
    for label, df in parts:
        target = folder / f"{label}.{fmt}"
        rows = _write_one_file(df, target, fmt)
        counts[label] = rows
        files.append({"name": target.name, "change": label, "rows": rows, "sha256": _sha256(target)})
    manifest = {
        "destination": dest.name,
        "audience_id": aud.audience_id,
        "audience": aud.name,
        "from_version": None if span[0] == FIRST_SYNC else span[0],
        "to_version": span[1],
        "kind": "snapshot" if span[0] == FIRST_SYNC else "diff",
        "format": fmt,
        "columns": list(joins.columns),
        "files": files,
        "written_at": _now().isoformat() + "Z",
    }
    tmp = folder / ".manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    os.replace(tmp, folder / "manifest.json")
    adds = counts.get("snapshot", counts.get("adds", 0))
    return Outcome(True), {"adds": adds, "removes": counts.get("removes", 0)}


def _with_columns(spark: SparkSession, lake: Lake, aud: Audience, joins: DataFrame, columns: list[str]) -> DataFrame:
    """The joins with the chosen columns: persona_id, since, and attributes of the latest refresh's features."""
    extra = [c for c in columns if c not in ("persona_id", "since")]
    if extra:
        day = latest_refresh_stats(spark, lake, [aud.audience_id]).get(aud.audience_id, (None, None))[1]
        if day is None or not lake.exists("customer_features"):
            raise AudienceError(
                f"audience {aud.name!r}: columns {', '.join(extra)} need a refreshed audience and features"
            )
        feats = lake.read("customer_features", partitions={"snapshot_date": day})
        unknown = [c for c in extra if c not in feats.columns]
        if unknown:
            raise AudienceError(f"destination columns {', '.join(unknown)} are not in customer_features")
        joins = joins.join(feats.select("persona_id", *extra), "persona_id", "left")
    return joins.select(*columns)


def _write_one_file(df: DataFrame, target: Path, fmt: str) -> int:
    """One file (Spark writes one part, which is moved to ``target``); returns its rows."""
    parts = target.parent / f".{target.name}.parts-{uuid.uuid4().hex[:8]}"
    df = df.orderBy("persona_id").coalesce(1).localCheckpoint(eager=True)
    rows = df.count()
    writer = df.write.mode("overwrite")
    if fmt == "parquet":
        writer.parquet(str(parts))
    else:
        writer.option("header", True).csv(str(parts))
    produced = sorted(parts.glob("part-*"))
    if produced:
        os.replace(produced[0], target)
    elif fmt == "csv":  # Spark writes a header-only part for an empty frame; this is a fallback
        target.write_text(",".join(df.columns) + "\n", encoding="utf-8")
    else:
        raise AudienceError(f"{target}: Spark wrote no Parquet file for {rows} rows")
    shutil.rmtree(parts, ignore_errors=True)
    return rows


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
