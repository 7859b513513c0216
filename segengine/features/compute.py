"""Write one snapshot date's ``customer_features`` partition: the entry of the features flow.

:func:`compute_features` checks there is bronze data for the date, lets the refresh
(:mod:`segengine.features.refresh`) write the partition, incrementally from the feature
state when that is exact, else in full from :mod:`segengine.features.build`, and returns
a summary of what it wrote. It sits above both, so neither imports it back.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from pyspark.sql import functions as F

from segengine.features.refresh import refresh_features
from segengine.features.snapshots import require_bronze_data

log = logging.getLogger(__name__)


def compute_features(spark: Any, lake: Any, config: Any, snapshot_date: dt.date) -> dict[str, Any]:
    """Write the ``customer_features`` partition of ``snapshot_date`` (idempotent).

    Args:
        spark: the SparkSession.
        lake: the Lake.
        config: the Config.
        snapshot_date: the snapshot date.

    The refresh is incremental from the feature state of an earlier date when that is
    exact, else a full recompute (see :mod:`segengine.features.refresh`).

    Returns:
        A summary: snapshot_date, table version, rows, rows per persona type, and the
        refresh ``mode`` (incremental | full) with its ``reason``.

    Raises:
        MissingInput: ``snapshot_date`` is before the first order line or event (or
            there are none), unless ``features.allow_before_first_data``.
    """
    require_bronze_data(lake, config, snapshot_date)

    refresh = refresh_features(spark, lake, config, snapshot_date)
    version = refresh.pop("version")
    written = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    # One small aggregate over the written partition: three numbers.
    by_type = {
        r["persona_type"]: r["n"] for r in written.groupBy("persona_type").agg(F.count("*").alias("n")).collect()
    }
    summary = {
        "snapshot_date": snapshot_date.isoformat(),
        "table": "customer_features",
        "version": version,
        "rows": int(sum(by_type.values())),
        "persona_types": by_type,
        **refresh,
    }
    log.info("features written: %s", summary)
    return summary
