"""Data files as the Delta log records them: partition values, statistics, pruning.

Pure helpers over the log's add and remove actions and the Parquet footers of the
files a write made; no Spark job and no table state. Used by the log reader
(:mod:`~segengine.lake.deltalog.snapshot`), the writer and the embedded backend.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import urllib.parse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql.types import StructType


NULL_PARTITION = "__HIVE_DEFAULT_PARTITION__"


def _now_ms() -> int:
    return int(time.time() * 1000)


def _strip_file_scheme(uri: str) -> str:
    if uri.startswith("file://"):
        return uri[len("file://") :]
    if uri.startswith("file:"):
        return uri[len("file:") :]
    return uri


def _join_uri(root: str, rel: str) -> str:
    if "://" in rel or rel.startswith("/"):
        return rel
    return root.rstrip("/") + "/" + urllib.parse.unquote(rel)


def _partition_string(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _partition_values(value: Any) -> set[str]:
    """The accepted partition strings of a ``partitions`` entry (one value or several)."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return {_partition_string(v) for v in value}
    return {_partition_string(value)}


def _range_condition(col: Any, low: Any, high: Any) -> Any:
    """``low <= col <= high`` (a None end is open)."""
    from pyspark.sql import functions as F

    cond = F.lit(True)
    if low is not None:
        cond = cond & (col >= F.lit(low))
    if high is not None:
        cond = cond & (col <= F.lit(high))
    return cond


# Writers truncate timestamp statistics to milliseconds (delta-rs, Delta Spark): a
# file's true maximum may lie up to this much above its recorded maximum.
_TS_MAX_SLACK = dt.timedelta(milliseconds=1)


def _comparable(value: Any, like: Any) -> Any:
    """``value`` converted to compare with the statistic ``like`` (dates, instants, numbers)."""
    if isinstance(like, dt.datetime):
        if isinstance(value, dt.datetime):
            return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        if isinstance(value, dt.date):
            return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
        return dt.datetime.fromisoformat(str(value)).replace(tzinfo=dt.UTC)
    if isinstance(like, dt.date):
        if isinstance(value, dt.datetime):
            return value.date()
        return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
    return value


def _may_overlap(info: dict[str, Any], raw_partition: dict[str, Any], col: str, low: Any, high: Any) -> bool:
    """False only when the file provably holds no row with ``low <= col <= high``.

    A partition column is judged by its value; any other column by the file's min/max
    statistics. A file without statistics for the column is kept (it may match).
    """
    try:
        if col in info["partition"]:
            value = raw_partition.get(col)
            if value is None:
                return False  # a null partition value never satisfies a range
            lo_v, hi_v = value, value
        else:
            lo_v, hi_v = info["min"].get(col), info["max"].get(col)
            if lo_v is None or hi_v is None:
                return True
            if isinstance(hi_v, dt.datetime):
                hi_v = hi_v + _TS_MAX_SLACK
        if low is not None and hi_v < _comparable(low, hi_v):
            return False
        if high is not None and lo_v > _comparable(high, lo_v):
            return False
        return True
    except (TypeError, ValueError):
        return True  # incomparable statistics: never prune on them


def _typed_stat_columns(schema: Any) -> dict[str, str]:
    """Top-level date and timestamp columns of a delta-rs schema: their statistics are
    ISO strings in the log, parsed by :func:`_logged_file`."""
    out = {}
    for field in schema.fields:
        kind = getattr(field.type, "type", None)
        if kind in {"date", "timestamp", "timestamp_ntz"}:
            out[field.name] = kind
    return out


def _logged_file(path: str, entry: dict[str, Any], part_cols: list[str], typed: dict[str, str]) -> dict[str, Any]:
    """An add or remove action of the log as a file of :meth:`EmbeddedBackend.files`."""
    stats: dict[str, Any] = {}
    with contextlib.suppress(ValueError, TypeError):
        stats = json.loads(entry.get("stats") or "{}") or {}
    values = entry.get("partitionValues") or {}

    def parsed(bound: dict[str, Any]) -> dict[str, Any]:
        out = dict(bound or {})
        for name, kind in typed.items():
            text = out.get(name)
            if isinstance(text, str):
                with contextlib.suppress(ValueError):
                    out[name] = (
                        dt.date.fromisoformat(text[:10])
                        if kind == "date"
                        else dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                    )
        return out

    return {
        "path": path,
        "partition": {c: values.get(c) for c in part_cols},
        "size": entry.get("size"),
        "min": parsed(stats.get("minValues") or {}),
        "max": parsed(stats.get("maxValues") or {}),
    }


def _stat_json(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        utc = value.astimezone(dt.UTC) if value.tzinfo else value
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, float) and value != value:
        return None
    return value


def _column_stats(meta: Any) -> dict[str, Any]:
    """minValues / maxValues / nullCount of the prunable top-level columns of a Parquet footer."""
    schema = meta.schema.to_arrow_schema()
    mins: dict[str, Any] = {}
    maxs: dict[str, Any] = {}
    nulls: dict[str, int] = {}
    prunable = {}
    for i, field in enumerate(schema):
        t = field.type
        if t.num_fields == 0 and (
            _pa_is("integer", t) or _pa_is("floating", t) or _pa_is("date", t) or _pa_is("timestamp", t)
        ):
            prunable[field.name] = i
    if meta.num_row_groups == 0:
        return {}
    leaf_of = {meta.schema.column(j).path: j for j in range(meta.num_columns)}
    for name in prunable:
        j = leaf_of.get(name)
        if j is None:
            continue
        lo = hi = None
        count = 0
        ok = True
        for rg in range(meta.num_row_groups):
            st = meta.row_group(rg).column(j).statistics
            if st is None:
                ok = False
                break
            count += st.null_count if st.has_null_count else 0
            if not st.has_null_count:
                ok = False
                break
            if st.has_min_max:
                mn, mx = st.min, st.max
                if isinstance(mn, float) and (mn != mn or mx != mx):
                    ok = False
                    break
                lo = mn if lo is None else min(lo, mn)
                hi = mx if hi is None else max(hi, mx)
            elif st.null_count != meta.row_group(rg).num_rows:
                ok = False  # values present but no bounds recorded
                break
        if not ok:
            continue
        nulls[name] = count
        if lo is not None:
            mins[name], maxs[name] = _stat_json(lo), _stat_json(hi)
    out: dict[str, Any] = {}
    if mins:
        out["minValues"], out["maxValues"] = mins, maxs
    if nulls:
        out["nullCount"] = nulls
    return out


def _pa_is(kind: str, arrow_type: Any) -> bool:
    import pyarrow.types as pt

    return bool(getattr(pt, f"is_{kind}")(arrow_type))


def _remove_action(info: dict[str, Any]) -> Any:
    from deltalake.transaction import RemoveAction

    return RemoveAction(
        path=info["path"],
        data_change=True,
        deletion_timestamp=_now_ms(),
        size=info.get("size"),
        partition_values=info.get("partition"),
    )


def _arrow_schema(delta_schema: Any) -> Any:
    import pyarrow as pa

    schema = delta_schema.to_arrow()
    if not isinstance(schema, pa.Schema):
        schema = pa.schema(schema)
    return schema


def _delta_schema(schema: StructType) -> Any:
    """The Delta schema for a Spark schema; every column nullable, as Delta writers default to."""
    from deltalake import Schema
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructField, StructType

    nullable = StructType([StructField(f.name, f.dataType, True, f.metadata) for f in schema.fields])
    return Schema.from_arrow(to_arrow_schema(nullable, timezone="UTC"))
