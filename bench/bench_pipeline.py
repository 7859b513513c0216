"""End-to-end daily pipeline at scale (``make bench-scale``): per-step wall time and peak memory."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time

from bench.memory import PeakMemory


def run(spark, config, workdir: str, scale: int) -> list[dict]:
    from segengine.features import compute_features
    from segengine.generate import generate_bronze
    from segengine.lake import Lake
    from segengine.pipeline.daily import DAILY_STEPS, TRAINING_STEPS

    config = dataclasses.replace(config, warehouse=f"{workdir}/warehouse")
    lake = Lake.open(spark, config)
    end = dt.date.fromisoformat(config.generator.end_date)
    day1, day2 = end - dt.timedelta(days=1), end
    rows: list[dict] = []

    def measure(name: str, fn, *args):
        with PeakMemory() as mem:
            t0 = time.time()
            result = fn(*args)
            secs = time.time() - t0
        rows.append(
            {"benchmark": "pipeline", "metric": f"{name} seconds", "value": round(secs, 1), "unit": "s", "notes": ""}
        )
        rows.append(
            {
                "benchmark": "pipeline",
                "metric": f"{name} peak MB",
                "value": mem.peak_mb,
                "unit": "MB",
                "notes": "driver python + JVM RSS",
            }
        )
        print(f"   {name}: {secs:.1f}s peak {mem.peak_mb} MB")
        return result

    gen = measure("generate+ingest", generate_bronze, spark, lake, config, scale)
    lines = gen["generate"]["rows"]["order_lines"]
    rows.append(
        {"benchmark": "pipeline", "metric": "order lines generated", "value": str(lines), "unit": "rows", "notes": ""}
    )
    measure(f"features {day1}", compute_features, spark, lake, config, day1)
    for step in TRAINING_STEPS:
        measure(step.name, step.function(), spark, lake, config, day1)
    total = 0.0
    for step in DAILY_STEPS:
        t0 = time.time()
        measure(f"daily {step.name}", step.function(), spark, lake, config, day2)
        total += time.time() - t0
    rows.append(
        {
            "benchmark": "pipeline",
            "metric": "daily refresh total seconds",
            "value": round(total, 1),
            "unit": "s",
            "notes": "goal <= 300 s at 1M",
        }
    )
    return rows
