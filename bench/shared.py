"""Bronze tables generated once per benchmark run and scale, copied into each bench's warehouse.

Generating and ingesting 1M personas takes minutes; the features, insights, models and
recommend benchmarks all start from the same bronze data (seed 42), so the runner
(``bench.run``) points ``SEGENGINE_BENCH_CACHE`` at a scratch directory and
:func:`bronze` generates into the first caller's warehouse, keeps a copy there and
copies it into the warehouse of every later caller. The data benchmark, which times
the generator itself, does not use it. Without the variable it just generates.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

CACHE_ENV = "SEGENGINE_BENCH_CACHE"
SKIP = ("raw", "spark-warehouse", ".spark-tmp")  # raw files are only needed by ingest


def bronze(spark: Any, lake: Any, config: Any, scale: int, seed: int = 42) -> dict[str, Any]:
    """Fill ``config.warehouse`` with generated bronze tables; returns ``generate_bronze``'s result."""
    from segengine.generate import generate_bronze

    cache_root = os.environ.get(CACHE_ENV)
    warehouse = Path(config.warehouse)
    if not cache_root:
        return generate_bronze(spark, lake, config, personas=scale, seed=seed)
    cache = Path(cache_root) / f"{scale}-{seed}"
    done = cache / "result.json"
    if done.exists():
        for entry in (cache / "warehouse").iterdir():
            shutil.copytree(entry, warehouse / entry.name, dirs_exist_ok=True)
        return json.loads(done.read_text())
    result = generate_bronze(spark, lake, config, personas=scale, seed=seed)
    shutil.rmtree(cache, ignore_errors=True)
    for entry in warehouse.iterdir():
        if entry.name not in SKIP:
            shutil.copytree(entry, cache / "warehouse" / entry.name)
    done.write_text(json.dumps(result, default=str))
    return result
