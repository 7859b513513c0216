"""Uploaded lists (CSV or Excel) of emails, phones, persona ids or cookie ids → static audience.

The id column is found by its header name first (``email``, ``phone``, ``customer_id``,
``cookie``, …), then by content (email-shaped values, phone-shaped values, or values
that match personas). Values are normalised the same way on both sides of the match:
emails trimmed and lower-cased, phones reduced to their digits, ids trimmed.

Every input row ends up in exactly one bucket: matched, malformed (empty or not the
shape of its id type) or unmatched (well formed, no persona has it). Malformed and
unmatched rows are written to a CSV next to the report with their line number, value
and reason: never dropped silently.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segengine.errors import AudienceError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import Column, DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

ID_TYPES = ("email", "phone", "persona_id", "cookie_id")
HEADER_ALIASES = {
    "email": {"email", "e_mail", "email_address", "emailaddress", "mail", "email_id"},
    "phone": {
        "phone",
        "phone_number",
        "phonenumber",
        "mobile",
        "mobile_phone",
        "mobile_number",
        "telephone",
        "tel",
        "msisdn",
    },
    "persona_id": {"persona_id", "personaid", "persona", "customer_id", "customerid", "customer", "id"},
    "cookie_id": {"cookie_id", "cookieid", "cookie", "visitor_id", "anonymous_id"},
}
EMAIL_RE = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
PHONE_CHARS_RE = r"^\+?[0-9 ()./-]+$"
PHONE_MIN_DIGITS, PHONE_MAX_DIGITS = 7, 15
_SAMPLE = 200


def _norm_header(h: Any) -> str:
    return re.sub(r"[\s\-]+", "_", str(h).strip().lower())


def read_upload(path: str | Path) -> pd.DataFrame:
    """Read an uploaded CSV or Excel (.xlsx) file as strings, keeping every row.

    An upload is a file on the user's side (bounded by what a spreadsheet holds), so
    it is read on the driver; the matching itself runs in Spark.

    Returns:
        pandas DataFrame of strings with a ``_line`` column (1-based file line/row).
    """
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise AudienceError(f"upload file not found: {p}")
    suffix = p.suffix.lower()
    if suffix in {".xlsx", ".xlsm"}:
        from openpyxl import load_workbook

        wb = load_workbook(p, read_only=True, data_only=True)
        rows = list(wb.worksheets[0].iter_rows(values_only=True))
        wb.close()
        if not rows:
            raise AudienceError(f"{p}: the first sheet is empty")
        header = ["" if h is None else str(h) for h in rows[0]]
        body = [["" if v is None else _cell_text(v) for v in r[: len(header)]] for r in rows[1:]]
        df = pd.DataFrame(body, columns=header, dtype=str)
    elif suffix in {".csv", ".txt", ".tsv", ""}:
        text = p.read_text(encoding="utf-8-sig", errors="replace")
        if not text.strip():
            raise AudienceError(f"{p}: the file is empty")
        try:
            dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t|")
            sep = dialect.delimiter
        except csv.Error:
            sep = ","  # one column, or nothing to sniff on
        df = pd.read_csv(p, sep=sep, dtype=str, keep_default_na=False, encoding="utf-8-sig", skip_blank_lines=False)
    else:
        raise AudienceError(f"{p}: unsupported upload type {suffix!r}; use .csv or .xlsx")
    df = df.fillna("")
    df.insert(0, "_line", range(2, len(df) + 2))  # line 1 is the header
    return df


def _cell_text(v: Any) -> str:
    # Excel stores long digit strings (phones, ids) as numbers: 4479460958.0 -> "4479460958".
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def detect_id_column(spark: SparkSession, lake: Lake | None, df: pd.DataFrame, source: str) -> tuple[str, str]:
    """Pick the id column and its type: by header name, then by content.

    Returns:
        (column name, id type).

    Raises:
        AudienceError: naming the file and its headers when nothing is recognisable.
    """
    columns = [c for c in df.columns if c != "_line"]
    for id_type in ID_TYPES:  # header names, in order of matching strength
        for c in columns:
            if _norm_header(c) in HEADER_ALIASES[id_type]:
                return c, id_type
    for c in columns:
        values = [v.strip() for v in df[c].head(_SAMPLE * 5) if v and v.strip()][:_SAMPLE]
        if not values:
            continue
        if _share(values, lambda v: re.match(EMAIL_RE, v) is not None) >= 0.6:
            return c, "email"
        if _share(values, _phone_shaped) >= 0.6:
            return c, "phone"
    if lake is not None and lake.exists("personas"):
        for c in columns:
            values = [v.strip() for v in df[c].head(_SAMPLE * 5) if v and v.strip()][:_SAMPLE]
            if not values:
                continue
            for id_type in ("persona_id", "cookie_id"):
                if _sample_match_share(spark, lake, values, id_type) >= 0.5:
                    return c, id_type
    raise AudienceError(
        f"{source}: no recognisable id column; headers are {columns}. Expected a column of emails, phone numbers, "
        "persona ids or cookie ids (e.g. headed email, phone, persona_id or cookie_id)"
    )


def _share(values: list[str], pred: Any) -> float:
    return sum(1 for v in values if pred(v)) / len(values)


def _phone_shaped(v: str) -> bool:
    digits = re.sub(r"[^0-9]", "", v)
    return re.match(PHONE_CHARS_RE, v) is not None and PHONE_MIN_DIGITS <= len(digits) <= PHONE_MAX_DIGITS


def _sample_match_share(spark: SparkSession, lake: Lake, values: list[str], id_type: str) -> float:
    from pyspark.sql import functions as F

    sample = spark.createDataFrame([(v,) for v in values], "value string")
    personas = lake.read("personas").select(F.col(id_type).alias("value"))
    matched = sample.join(personas, "value", "left_semi").count()
    return matched / len(values)


def normalise(value: Column, id_type: str) -> Column:
    """The normalised key of a raw id value (same rule for uploads and personas)."""
    from pyspark.sql import functions as F

    v = F.trim(value)
    if id_type == "email":
        return F.lower(v)
    if id_type == "phone":
        return F.regexp_replace(v, r"[^0-9]", "")
    return v


def malformed_reason(raw: Column, key: Column, id_type: str) -> Column:
    """Why a raw value cannot be matched (null when it is well formed)."""
    from pyspark.sql import functions as F

    empty = raw.isNull() | (F.trim(raw) == "")
    if id_type == "email":
        bad = ~key.rlike(EMAIL_RE)
        msg = "not an email address"
    elif id_type == "phone":
        bad = (
            (~F.trim(raw).rlike(PHONE_CHARS_RE))
            | (F.length(key) < PHONE_MIN_DIGITS)
            | (F.length(key) > PHONE_MAX_DIGITS)
        )
        msg = f"not a phone number ({PHONE_MIN_DIGITS}-{PHONE_MAX_DIGITS} digits)"
    else:
        bad = F.lit(False)
        msg = ""
    return F.when(empty, F.lit("empty value")).when(bad, F.lit(msg))


def match_upload(
    spark: SparkSession, lake: Lake, rows: pd.DataFrame, column: str, id_type: str
) -> tuple[DataFrame, DataFrame]:
    """Match uploaded values to personas.

    Returns:
        (matched DataFrame(persona_id) distinct, rejected DataFrame(line, value, reason)).
    """
    from pyspark.sql import functions as F

    up = spark.createDataFrame(
        [(int(line), str(val)) for line, val in zip(rows["_line"], rows[column])], "line long, value string"
    )
    up = up.withColumn("key", normalise(F.col("value"), id_type))
    up = up.withColumn("reason", malformed_reason(F.col("value"), F.col("key"), id_type))
    personas = (
        lake.read("personas")
        .select("persona_id", normalise(F.col(id_type), id_type).alias("key"))
        .filter(F.col("key").isNotNull() & (F.col("key") != ""))
    )
    good = up.filter(F.col("reason").isNull())
    hits = good.join(personas, "key", "inner")
    unmatched = good.join(personas.select("key"), "key", "left_anti").withColumn(
        "reason", F.lit(f"no persona with this {id_type}")
    )
    rejected = up.filter(F.col("reason").isNotNull()).unionByName(unmatched).select("line", "value", "reason")
    return hits.select("persona_id").distinct(), rejected


def upload_audience(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    path: str | Path,
    name: str,
    owner: str,
    visibility: str = "shared",
    id_column: str | None = None,
    id_type: str | None = None,
    rejects_path: str | Path | None = None,
    snapshot_date: dt.date | None = None,
) -> dict[str, Any]:
    """Create a static audience from an uploaded CSV/Excel list.

    Args:
        path: the CSV or .xlsx file.
        id_column / id_type: force the column and its type instead of detecting them.
        rejects_path: where the CSV of malformed and unmatched rows goes (default
            ``<file stem>.rejected.csv`` next to the upload).

    Returns:
        {"audience_id", "rows", "column", "id_type", "matched_rows", "members",
        "malformed", "unmatched", "duplicates", "rejects_file"}.
    """
    from pyspark.sql import functions as F

    from segengine.audiences.membership import create_audience

    src = str(path)
    rows = read_upload(path)
    if id_column is not None:
        if id_column not in rows.columns:
            raise AudienceError(
                f"{src}: no column {id_column!r}; headers are {[c for c in rows.columns if c != '_line']}"
            )
        if id_type is None:
            raise AudienceError(f"{src}: give id_type ({', '.join(ID_TYPES)}) with id_column")
        column = id_column
    else:
        column, detected = detect_id_column(spark, lake, rows, src)
        id_type = id_type or detected
    if id_type not in ID_TYPES:
        raise AudienceError(f"{src}: id type must be one of {', '.join(ID_TYPES)}, got {id_type!r}")
    if not lake.exists("personas"):
        raise AudienceError(f"{src}: cannot match an upload: the personas table does not exist yet")
    matched, rejected = match_upload(spark, lake, rows, column, id_type)
    rejected = rejected.orderBy("line").cache()
    counts = {r["reason"]: r["count"] for r in rejected.groupBy("reason").count().collect()}
    unmatched = sum(v for k, v in counts.items() if k.startswith("no persona"))
    malformed = sum(counts.values()) - unmatched
    rejects_file = Path(rejects_path) if rejects_path else Path(path).with_suffix(".rejected.csv")
    if counts:
        _write_rejects(rejected, rejects_file)
    rejected.unpersist()
    definition = {
        "file": Path(path).name,
        "column": column,
        "id_type": id_type,
        "rows": len(rows),
        "malformed": malformed,
        "unmatched": unmatched,
    }
    matched = matched.cache()
    if not matched.limit(1).count():
        matched.unpersist()
        where = f"; rejected rows in {rejects_file}" if counts else ""
        raise AudienceError(
            f"{src}: none of the {len(rows)} rows matches a persona by {id_type} (column {column!r}: "
            f"{unmatched} unmatched, {malformed} malformed){where}; no audience created"
        )
    audience_id = create_audience(
        spark, lake, config, name, owner, "static", "upload", definition, matched, visibility, snapshot_date
    )
    size = matched.count()
    good_keys = len(rows) - malformed - unmatched
    dup = (
        spark.createDataFrame([(str(v),) for v in rows[column]], "value string")
        .select(normalise(F.col("value"), id_type).alias("k"))
        .filter("k != ''")
    )
    duplicates = dup.count() - dup.distinct().count()
    matched.unpersist()
    return {
        "audience_id": audience_id,
        "rows": len(rows),
        "column": column,
        "id_type": id_type,
        "matched_rows": good_keys,
        "members": size,
        "malformed": malformed,
        "unmatched": unmatched,
        "duplicates": duplicates,
        "rejects_file": str(rejects_file) if counts else None,
    }


def _write_rejects(rejected: DataFrame, target: Path) -> None:
    """Stream rejected rows to one CSV on the driver (line, value, reason)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["line", "value", "reason"])
        for r in rejected.toLocalIterator():
            w.writerow([r["line"], r["value"], r["reason"]])
