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

from typing import Any


def build_features(spark: Any, lake: Any, config: Any, snapshot_date: Any) -> Any:
    """See :func:`segengine.features.build.build_features`."""
    from segengine.features.build import build_features as _build

    return _build(spark, lake, config, snapshot_date)


def compute_features(spark: Any, lake: Any, config: Any, snapshot_date: Any) -> dict[str, Any]:
    """See :func:`segengine.features.compute.compute_features`."""
    from segengine.features.compute import compute_features as _compute

    return _compute(spark, lake, config, snapshot_date)
