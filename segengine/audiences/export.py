"""Export an audience to CSV or Excel with chosen attributes and recommended products.

CSV is written by Spark in parallel (a directory of part files); with
``single_file=True`` the parts are then concatenated, under one header, into one file.
Excel rows are streamed partition by partition (``toLocalIterator``) into an openpyxl
write-only workbook, so the driver never holds the whole audience; an audience
larger than ``audiences.excel_max_rows`` is refused before anything is written.
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segengine.audiences.registry import get_audience, latest_refresh_stats, stored_members
from segengine.errors import AudienceError
from segengine.features.snapshots import require_feature_partition

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

DEFAULT_COLUMNS = ("persona_id", "persona_type", "email", "phone", "country", "value_tier", "ai_segment")
TOP_PRODUCTS = 10
FORMATS = ("csv", "xlsx")


def recommended_products(lake: Lake, snapshot_date: dt.date, k: int = TOP_PRODUCTS) -> DataFrame | None:
    """product_1..product_k per persona from ``recommendations`` (None when there are none).

    Built with conditional aggregation (one pass, no pivot value discovery).
    """
    from pyspark.sql import functions as F

    if not lake.exists("recommendations"):
        return None
    recs = lake.read("recommendations", partitions={"snapshot_date": snapshot_date}).filter(F.col("rank") <= k)
    if not recs.limit(1).count():
        return None
    return recs.groupBy("persona_id").agg(
        *[F.max(F.when(F.col("rank") == i, F.col("product_id"))).alias(f"product_{i}") for i in range(1, k + 1)]
    )


def export_frame(
    lake: Lake,
    audience_id: str,
    columns: list[str] | None,
    snapshot_date: dt.date | None,
    with_recommendations: bool = True,
) -> DataFrame:
    """The rows of an export: one per member, the chosen columns, then product_1..10.

    Args:
        columns: catalog attributes (persona_id is always first); default a short
            contact + value set.
        snapshot_date: which feature / recommendation partition to join.

    Returns:
        DataFrame ordered by persona_id.

    Raises:
        FeatureSnapshotMissing: attributes were asked for a date without features.
    """
    from pyspark.sql import functions as F

    from segengine.features.catalog import CATALOG

    cols = list(columns or DEFAULT_COLUMNS)
    unknown = [c for c in cols if c not in CATALOG and c not in {"since"}]
    if unknown:
        raise AudienceError(f"export: unknown column(s) {', '.join(unknown)}; choose attributes of the feature catalog")
    cols = ["persona_id"] + [c for c in cols if c != "persona_id"]
    df = stored_members(lake, audience_id).select("persona_id", "since")
    feature_cols = [c for c in cols if c not in {"persona_id", "since"}]
    if feature_cols:
        if snapshot_date is None:
            raise AudienceError("export: give a snapshot date to take the attributes from")
        require_feature_partition(lake, snapshot_date)
        feats = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
        available = set(feats.columns)
        feature_cols = [c for c in feature_cols if c in available]
        df = df.join(feats.select("persona_id", *feature_cols), "persona_id", "left")
    out_cols = [c for c in cols if c in {"persona_id", "since"} or c in feature_cols]
    if with_recommendations and snapshot_date is not None:
        recs = recommended_products(lake, snapshot_date)
        if recs is not None:
            df = df.join(recs, "persona_id", "left")
            out_cols += [f"product_{i}" for i in range(1, TOP_PRODUCTS + 1)]
    return df.select(*out_cols).orderBy(F.col("persona_id"))


def export_audience(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    audience: str,
    path: str,
    fmt: str = "csv",
    columns: list[str] | None = None,
    user: str | None = None,
    snapshot_date: dt.date | None = None,
    single_file: bool = False,
    with_recommendations: bool = True,
) -> dict[str, Any]:
    """Export an audience ``user`` may use to CSV (directory or single file) or .xlsx.

    Args:
        snapshot_date: default the audience's latest refresh date.
        single_file: CSV only: one file at ``path`` instead of a directory of parts.

    Returns:
        {"audience_id", "path", "format", "rows", "columns"}.
    """
    if fmt not in FORMATS:
        raise AudienceError(f"export format must be csv or xlsx, got {fmt!r}")
    aud = get_audience(spark, lake, audience, user)
    if snapshot_date is None:
        snapshot_date = latest_refresh_stats(spark, lake, [aud.audience_id]).get(aud.audience_id, (None, None))[1]
    rows = stored_members(lake, aud.audience_id).count()
    if fmt == "xlsx" and rows > config.audiences.excel_max_rows:
        raise AudienceError(
            f"audience {aud.name!r} has {rows} members, more than the {config.audiences.excel_max_rows} rows an Excel "
            "sheet holds; export it to CSV instead (--format csv)"
        )
    df = export_frame(lake, aud.audience_id, columns, snapshot_date, with_recommendations)
    if fmt == "xlsx":
        _write_xlsx(df, path, sheet=aud.name)
    elif single_file and "://" not in path:
        _write_single_csv(df, path)
    else:
        df.write.mode("overwrite").option("header", True).csv(path)
    return {"audience_id": aud.audience_id, "path": path, "format": fmt, "rows": rows, "columns": df.columns}


def _write_single_csv(df: DataFrame, path: str) -> None:
    """Spark writes headerless parts in parallel; the driver concatenates them under one header."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    parts_dir = target.parent / f".{target.name}.parts-{uuid.uuid4().hex[:8]}"
    # An ordered DataFrame writes parts in sort order, so concatenating by part name keeps it.
    df.write.mode("overwrite").option("header", False).option("emptyValue", "").csv(str(parts_dir))
    header = ",".join(_csv_quote(c) for c in df.columns)
    with open(target, "wb") as out:
        out.write((header + "\n").encode("utf-8"))
        for part in sorted(parts_dir.glob("part-*")):
            with open(part, "rb") as fh:
                shutil.copyfileobj(fh, out, 1 << 20)
    shutil.rmtree(parts_dir, ignore_errors=True)


def _csv_quote(text: str) -> str:
    return f'"{text}"' if any(ch in text for ch in ',"\n') else text


def _write_xlsx(df: DataFrame, path: str, sheet: str) -> None:
    """Stream rows into a write-only workbook, one partition at a time on the driver."""
    from openpyxl import Workbook

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    wb = Workbook(write_only=True)
    # Excel sheet titles: max 31 chars, none of []:*?/\
    ws = wb.create_sheet(title="".join(ch for ch in sheet if ch not in "[]:*?/\\")[:31] or "audience")
    ws.append(df.columns)
    for row in df.toLocalIterator(prefetchPartitions=False):
        ws.append(list(row))
    wb.save(path)
