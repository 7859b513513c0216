"""Customer features: RFMT and 50+ attributes per persona per snapshot date.

Public entry points (imported lazily so ``import segengine.features`` stays cheap):

* :func:`build_features` — the feature DataFrame for a date (pure, no write);
* :func:`compute_features` — write that date's ``customer_features`` partition
  (incremental from the previous date's state when exact, see
  :mod:`segengine.features.refresh`), through the stages in order (see
  :mod:`segengine.features.compute` and the picture in docs/features.md);
* :mod:`segengine.features.catalog` — the feature catalog.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake


def build_features(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> DataFrame:
    """See :func:`segengine.features.build.build_features`."""
    from segengine.features.build import build_features as _build

    return _build(spark, lake, config, snapshot_date)


def compute_features(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """See :func:`segengine.features.compute.compute_features`."""
    from segengine.features.compute import compute_features as _compute

    return _compute(spark, lake, config, snapshot_date)
