"""Small helpers over Spark DataFrames that every layer may use."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row


def one_row(aggregate: DataFrame) -> Row:
    """The row of a global aggregate (``df.agg(...)`` without ``groupBy``: always exactly one).

    ``DataFrame.first()`` is typed ``Row | None``; a global aggregate always has its row,
    so a missing one is a bug, not data.
    """
    row = aggregate.first()
    if row is None:
        raise ValueError("one_row: the aggregate returned no row")
    return row
