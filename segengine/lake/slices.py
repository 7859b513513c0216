"""A merge's slice of a table (``within``): partition-value strings and the source check.

Both Delta backends refuse a merge source row outside ``within`` with the Column of
:func:`outside_within`, so the two share it here rather than one borrowing it from
the other.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from segengine.errors import SegengineError


def quote_identifier(name: str) -> str:
    """Backtick-quote a column name for Spark SQL (backticks doubled)."""
    return "`" + name.replace("`", "``") + "`"


def partition_texts(value: Any) -> set[str]:
    """The partition-value strings of one value or a list of them (dates as ISO dates)."""
    values = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
    out = set()
    for v in values:
        if isinstance(v, dt.datetime):
            out.add(v.isoformat(sep=" "))
        elif isinstance(v, dt.date):
            out.add(v.isoformat())
        elif isinstance(v, bool):
            out.add(str(v).lower())
        else:
            out.add(str(v))
    return out


def outside_within(
    uri: str, within: dict[str, Any] | None, part_cols: list[str], delete_missing_in: dict[str, Any] | None
) -> Any:
    """The Column true for a source row outside ``within`` (None without ``within``).

    Both backends' merges check their source with it. ``within`` must name partition columns, and a ``delete_missing_in`` value on one
    of them must agree with it (the merge never sees the target outside the slice).
    """
    from pyspark.sql import functions as F

    if not within:
        return None
    unknown = sorted(set(within) - set(part_cols))
    if unknown:
        raise SegengineError(f"{uri}: within names non-partition column(s) {', '.join(unknown)}")
    for col_name, value in (delete_missing_in or {}).items():
        if col_name in within and partition_texts(within[col_name]) != partition_texts(value):
            raise SegengineError(f"{uri}: delete_missing_in {col_name}={value!r} lies outside within={within}")
    inside = F.lit(True)
    for col_name, value in within.items():
        values = list(value) if isinstance(value, (list, tuple, set, frozenset)) else [value]
        inside = inside & F.col(quote_identifier(col_name)).isin(*[F.lit(v) for v in values])
    return ~F.coalesce(inside, F.lit(False))
