"""Top-N of any audience by any catalog attribute: the member frame (saved by :mod:`.derived`)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from segengine.errors import AudienceError
from segengine.features.snapshots import require_feature_partition

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from segengine.lake import Lake

ORDERS = ("asc", "desc")


def check_top_n(n: int, by: str, order: str) -> None:
    from segengine.features.catalog import CATALOG

    if by not in CATALOG:
        raise AudienceError(f"top-N by {by!r}: not an attribute of the feature catalog")
    if order not in ORDERS:
        raise AudienceError(f"top-N order: expected asc or desc, got {order!r}")
    if n <= 0:
        raise AudienceError(f"top-N needs n >= 1, got {n}")


def top_n_frame(lake: Lake, members_df: DataFrame, n: int, by: str, order: str, snapshot_date: dt.date) -> DataFrame:
    """The ``n`` members with the highest (desc) or lowest (asc) ``by`` on the date.

    Members missing from the feature partition, or with a null value, rank last;
    ties are broken by persona_id ascending, so the result is deterministic.

    Returns:
        DataFrame(persona_id, <by>) of at most ``n`` rows.

    Raises:
        FeatureSnapshotMissing: no ``customer_features`` partition for the date.
    """
    from pyspark.sql import functions as F

    check_top_n(n, by, order)
    require_feature_partition(lake, snapshot_date)
    feats = lake.read("customer_features", partitions={"snapshot_date": snapshot_date}).select("persona_id", by)
    ranked = members_df.select("persona_id").distinct().join(feats, "persona_id", "left")
    key = F.col(by).desc_nulls_last() if order == "desc" else F.col(by).asc_nulls_last()
    return ranked.orderBy(key, F.col("persona_id").asc()).limit(n)
