"""Export an audience to CSV or Excel with chosen attributes and recommended products.

CSV is written by Spark in parallel (a directory of part files); with
``single_file=True`` the parts are then concatenated, under one header, into one file.
Excel rows are streamed partition by partition (``toLocalIterator``) into an openpyxl
write-only workbook, so the driver never holds the whole audience; an audience
larger than ``audiences.excel_max_rows`` is refused before anything is written. The
sheet has a styled header with a filter, frozen panes, sized columns and number formats.

An export can keep only the members with email or SMS consent (``consent``), and
refuses a folder that does not exist unless asked to create it (``mkdir``).
"""

from __future__ import annotations

import datetime as dt
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segengine.audiences.holdout import get_holdout, without_holdout
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
    consent: str | None = None,
) -> DataFrame:
    """The rows of an export: one per member, the chosen columns, then product_1..10.

    Args:
        columns: catalog attributes (persona_id is always first); default a short
            contact + value set.
        snapshot_date: which feature / recommendation partition to join.
        consent: ``email`` or ``sms``: only the members whose ``consent_email`` /
            ``consent_sms`` is true on ``snapshot_date`` (no record is no consent).

    Returns:
        DataFrame ordered by persona_id.

    Raises:
        FeatureSnapshotMissing: attributes were asked for a date without features.
        AudienceError: an unknown consent channel, or a feature table without its column.
    """
    from pyspark.sql import functions as F

    from segengine.features.catalog import CATALOG

    cols = list(columns or DEFAULT_COLUMNS)
    unknown = [c for c in cols if c not in CATALOG and c not in {"since"}]
    if unknown:
        raise AudienceError(f"export: unknown column(s) {', '.join(unknown)}; choose attributes of the feature catalog")
    cols = ["persona_id"] + [c for c in cols if c != "persona_id"]
    df = without_holdout(lake, audience_id, stored_members(lake, audience_id).select("persona_id", "since"))
    if consent is not None:
        df = _with_consent(lake, df, consent, snapshot_date)
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


CONSENT_COLUMNS = {"email": "consent_email", "sms": "consent_sms"}


def _with_consent(lake: Lake, members: DataFrame, consent: str, snapshot_date: dt.date | None) -> DataFrame:
    """Only the members who opted in to ``consent`` on ``snapshot_date``."""
    from pyspark.sql import functions as F

    column = CONSENT_COLUMNS.get(consent)
    if column is None:
        raise AudienceError(f"export: unknown consent {consent!r}; expected one of {', '.join(CONSENT_COLUMNS)}")
    if snapshot_date is None:
        raise AudienceError("export: consent is read from the features of a date; give one (--date)")
    require_feature_partition(lake, snapshot_date)
    feats = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    if column not in feats.columns:
        raise AudienceError(f"export: customer_features has no {column} column; cannot check {consent} consent")
    opted_in = feats.where(F.col(column) == F.lit(True)).select("persona_id")
    return members.join(opted_in, "persona_id", "left_semi")


def check_folder(path: str, mkdir: bool = False) -> None:
    """Refuse to write under a local folder that does not exist, unless ``mkdir`` (then create it).

    A mistyped folder would otherwise be created silently and the file lost in it.
    Remote URIs (s3://, abfss://) have no folders to check.
    """
    if "://" in path and not path.startswith("file:"):
        return
    parent = Path(path.removeprefix("file://").removeprefix("file:")).expanduser().absolute().parent
    if parent.is_dir():
        return
    if not mkdir:
        raise AudienceError(f"export: folder {parent} does not exist; create it or add --mkdir")
    parent.mkdir(parents=True)


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
    consent: str | None = None,
    mkdir: bool = False,
) -> dict[str, Any]:
    """Export an audience ``user`` may use to CSV (directory or single file) or .xlsx.

    Args:
        snapshot_date: default the audience's latest refresh date.
        single_file: CSV only: one file at ``path`` instead of a directory of parts.
        consent: ``email`` or ``sms``: leave out the members without that consent.
        mkdir: create the folder of ``path`` when it does not exist (else an error).

    Returns:
        {"audience_id", "path", "format", "rows", "columns"}; with ``consent`` also
        ``members`` and ``without_consent`` (left out).
    """
    if fmt not in FORMATS:
        raise AudienceError(f"export format must be csv or xlsx, got {fmt!r}")
    if consent is not None and consent not in CONSENT_COLUMNS:
        raise AudienceError(f"export: unknown consent {consent!r}; expected one of {', '.join(CONSENT_COLUMNS)}")
    aud = get_audience(spark, lake, audience, user)
    check_folder(path, mkdir)
    if snapshot_date is None:
        snapshot_date = latest_refresh_stats(spark, lake, [aud.audience_id]).get(aud.audience_id, (None, None))[1]
    rows = stored_members(lake, aud.audience_id).count()
    if fmt == "xlsx" and rows > config.audiences.excel_max_rows:
        raise AudienceError(
            f"audience {aud.name!r} has {rows} members, more than the {config.audiences.excel_max_rows} rows an Excel "
            "sheet holds; export it to CSV instead (--format csv)"
        )
    df = export_frame(lake, aud.audience_id, columns, snapshot_date, with_recommendations, consent)
    members = rows
    holdout = get_holdout(lake, aud.audience_id)
    filtered = consent is not None or holdout is not None
    if filtered:
        df = df.cache()
        rows = df.count()
    try:
        if fmt == "xlsx":
            _write_xlsx(df, path, sheet=aud.name)
        elif single_file and "://" not in path:
            _write_single_csv(df, path)
        else:
            df.write.mode("overwrite").option("header", True).csv(path)
    finally:
        if filtered:
            df.unpersist()
    out = {"audience_id": aud.audience_id, "path": path, "format": fmt, "rows": rows, "columns": df.columns}
    if filtered:
        out["members"] = members
    if holdout is not None:
        out["holdout_share"] = holdout.share
    if consent is not None:
        # Members without consent: those the holdout left out are not counted twice.
        treated = members if holdout is None else _treated(lake, aud.audience_id)
        out.update(consent=consent, without_consent=treated - rows)
    return out


def _treated(lake: Lake, audience_id: str) -> int:
    return without_holdout(lake, audience_id, stored_members(lake, audience_id).select("persona_id")).count()


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
    kinds = [column_kind(f.dataType.typeName()) for f in df.schema.fields]
    write_xlsx(path, sheet, df.columns, kinds, (list(r) for r in df.toLocalIterator(prefetchPartitions=False)))


# Excel number formats by column kind (the Spark type's name).
NUMBER_FORMATS = {"integer": "#,##0", "decimal": "#,##0.00", "date": "yyyy-mm-dd", "timestamp": "yyyy-mm-dd hh:mm"}
WIDTH_SAMPLE_ROWS = 200
MIN_WIDTH, MAX_WIDTH = 8, 50


def column_kind(spark_type: str) -> str:
    """integer | decimal | date | timestamp | text, from a Spark type name (``long``, ``double`` …)."""
    if spark_type in ("integer", "long", "short", "byte"):
        return "integer"
    if spark_type in ("double", "float") or spark_type.startswith("decimal"):
        return "decimal"
    if spark_type == "date":
        return "date"
    if spark_type.startswith("timestamp"):
        return "timestamp"
    return "text"


def _shown_width(value: Any, kind: str) -> int:
    if value is None:
        return 0
    if kind == "decimal":
        return len(f"{value:,.2f}")
    if kind == "integer":
        return len(f"{value:,d}")
    if kind == "date":
        return 10
    if kind == "timestamp":
        return 16
    return len(str(value))


def write_xlsx(path: str, sheet: str, columns: list[str], kinds: list[str], rows: Iterator[list[Any]]) -> int:
    """A workbook a person can read: bold filled header, a filter on it, frozen first row
    and column, widths from the header and the first rows, number and date formats.

    Rows are streamed (write-only workbook): only the first ``WIDTH_SAMPLE_ROWS`` are held
    to size the columns.

    Args:
        path: the .xlsx file.
        sheet: the sheet title (cut to Excel's 31 characters, without ``[]:*?/\\``).
        columns: header names.
        kinds: one of :func:`column_kind`'s answers per column.
        rows: the data rows.

    Returns:
        The number of data rows written.
    """
    import itertools

    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title="".join(ch for ch in sheet if ch not in "[]:*?/\\")[:31] or "audience")
    rows = iter(rows)
    sample = list(itertools.islice(rows, WIDTH_SAMPLE_ROWS))
    for i, (name, kind) in enumerate(zip(columns, kinds, strict=True), start=1):
        widest = max([len(name) + 2, *(_shown_width(r[i - 1], kind) + 1 for r in sample)])
        ws.column_dimensions[get_column_letter(i)].width = min(max(widest, MIN_WIDTH), MAX_WIDTH)
    ws.freeze_panes = "B2"
    bold, fill = Font(bold=True, color="FFFFFF"), PatternFill("solid", fgColor="305496")
    header = []
    for name in columns:
        cell = WriteOnlyCell(ws, value=name)
        cell.font, cell.fill, cell.alignment = bold, fill, Alignment(vertical="center")
        header.append(cell)
    ws.append(header)
    formats = [NUMBER_FORMATS.get(k) for k in kinds]
    count = 0
    for row in itertools.chain(sample, rows):
        out = []
        for value, fmt in zip(row, formats, strict=True):
            if fmt is None or value is None:
                out.append(value)
                continue
            cell = WriteOnlyCell(ws, value=value)
            cell.number_format = fmt
            out.append(cell)
        ws.append(out)
        count += 1
    ws.auto_filter.ref = f"A1:{get_column_letter(max(len(columns), 1))}{count + 1}"
    wb.save(path)
    return count
