"""Top-N of any audience by any catalog attribute."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from segengine.errors import AudienceError
from segengine.features.snapshots import require_feature_partition

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

ORDERS = ("asc", "desc")


def _check(n: int, by: str, order: str) -> None:
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

    _check(n, by, order)
    require_feature_partition(lake, snapshot_date)
    feats = lake.read("customer_features", partitions={"snapshot_date": snapshot_date}).select("persona_id", by)
    ranked = members_df.select("persona_id").distinct().join(feats, "persona_id", "left")
    key = F.col(by).desc_nulls_last() if order == "desc" else F.col(by).asc_nulls_last()
    return ranked.orderBy(key, F.col("persona_id").asc()).limit(n)


def top_n_audience(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    source: str,
    n: int,
    by: str,
    order: str,
    name: str,
    owner: str,
    kind: str = "static",
    visibility: str = "shared",
    snapshot_date: dt.date | None = None,
    evaluator=None,
) -> str:
    """Save the top ``n`` of audience ``source`` by ``by`` as a new audience.

    Returns:
        The new audience_id.
    """
    from segengine.audiences.membership import create_audience
    from segengine.audiences.registry import get_audience, stored_members

    _check(n, by, order)
    if snapshot_date is None:
        raise AudienceError("top-N needs a snapshot date (which features to rank by)")
    src = get_audience(spark, lake, source, owner)
    definition = {"from": src.audience_id, "n": n, "by": by, "order": order}
    members = None
    if kind == "static":
        members = top_n_frame(lake, stored_members(lake, src.audience_id), n, by, order, snapshot_date)
    return create_audience(
        spark, lake, config, name, owner, kind, "top_n", definition, members, visibility, snapshot_date, evaluator
    )
