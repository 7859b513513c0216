"""Benchmark: the RFM core against DuckDB alone (``python -m bench.run --only core``).

The same comparison the features and scale benchmarks end with
(:func:`bench.bench_features.core_vs_duckdb`), on the shared generated bronze data,
without timing the features job first.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any


def run(spark: Any, config: Any, workdir: str, scale: int) -> list[dict]:
    """Generate (or reuse) ``scale`` personas, then time the RFM core in Spark and DuckDB."""
    from bench.bench_features import core_vs_duckdb
    from bench.shared import bronze
    from segengine.lake import Lake

    config = config.replace(warehouse=os.path.join(workdir, "core_warehouse"))
    lake = Lake.open(spark, config)
    bronze(spark, lake, config, scale)
    return core_vs_duckdb(spark, lake, config, dt.date.fromisoformat(config.generator.end_date))
