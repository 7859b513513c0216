"""End-to-end daily pipeline at scale (``make bench-scale``): per-step wall time and peak memory."""

from __future__ import annotations

import datetime as dt
import os
import time
import traceback

from bench.memory import timed_memory

# The exact nearest-neighbour reference of the lookalike bench is a cross join of
# candidates x seeds (~3e9 pairs at 1M): it runs at this scale and below only.
LOOKALIKE_MAX_SCALE = 1_000_000
# Set by ``bench.run --daily-only``.
DAILY_ONLY_ENV = "SEGENGINE_BENCH_DAILY_ONLY"


def create_example_audiences(spark, lake, config) -> list[str]:
    """A dynamic audience per example segment in ``conf/segments`` (not evaluated until refresh)."""
    import yaml

    from segengine.audiences import create_audience, list_audiences
    from segengine.config import conf_dir
    from segengine.rules import parse_segment

    docs = {
        p.name.removesuffix(".yaml"): yaml.safe_load(p.read_text(encoding="utf-8"))
        for p in sorted((conf_dir() / "segments").iterdir(), key=lambda p: p.name)
        if p.name.endswith(".yaml")
    }
    existing = {a["name"] for a in list_audiences(spark, lake)} if lake.exists("audiences") else set()
    names: list[str] = []
    # An audience whose rules use `in_segment: other` is created after `other` (creation
    # compiles the rules, which resolves the names).
    for name in dependency_order({n: parse_segment(d).referenced_segments() for n, d in docs.items()}):
        if name not in existing:  # a --daily-only rerun on the same warehouse keeps them
            create_audience(spark, lake, config, name, "bench", "dynamic", "rules", docs[name])
        names.append(name)
    return names


def dependency_order(uses: dict[str, list[str]]) -> list[str]:
    """The names of ``uses`` (name -> names it uses), each after the ones it uses that are
    among them; alphabetical otherwise. A cycle is an error."""
    done: list[str] = []
    left = sorted(uses)
    while left:
        ready = [n for n in left if all(u in done or u not in uses for u in uses[n])]
        if not ready:
            raise ValueError(f"example segments use each other in a cycle: {', '.join(left)}")
        done.append(ready[0])
        left.remove(ready[0])
    return done


def run(spark, config, workdir: str, scale: int) -> list[dict]:
    from segengine.features import compute_features
    from segengine.generate import generate_bronze
    from segengine.insights.migrations import snapshot_dates
    from segengine.lake import Lake
    from segengine.pipeline.daily import DAILY_STEPS, TRAINING_STEPS

    config = config.replace(warehouse=f"{workdir}/warehouse")
    lake = Lake.open(spark, config)
    end = dt.date.fromisoformat(config.generator.end_date)
    day1, day2 = end - dt.timedelta(days=1), end
    rows: list[dict] = []

    def measure(name: str, fn, *args, notes: str = ""):
        result, secs, mem = timed_memory(fn, *args)
        rows.append(
            {"benchmark": "pipeline", "metric": f"{name} seconds", "value": round(secs, 1), "unit": "s", "notes": notes}
        )
        rows.append(
            {
                "benchmark": "pipeline",
                "metric": f"{name} peak MB",
                "value": mem.peak_mb,
                "unit": "MB",
                "notes": mem.describe(),
            }
        )
        print(f"   {name}: {secs:.1f}s peak {mem.peak_mb} MB")
        return result

    if os.environ.get(DAILY_ONLY_ENV) == "1":
        # `python -m bench.run --scale --daily-only --workdir W`: the daily steps alone, on
        # the warehouse that an earlier run in W generated, featurised and trained (kept
        # when that run failed later, or with --keep).
        if not lake.exists("customer_features") or day1 not in snapshot_dates(lake):
            raise RuntimeError(f"--daily-only: no features for {day1} in {config.warehouse}; run without it first")
    else:
        gen = measure("generate+ingest", generate_bronze, spark, lake, config, scale)
        lines = gen["generate"]["rows"]["order_lines"]
        rows.append(
            {
                "benchmark": "pipeline",
                "metric": "order lines generated",
                "value": str(lines),
                "unit": "rows",
                "notes": "",
            }
        )
        measure(f"features {day1}", compute_features, spark, lake, config, day1)
        for step in TRAINING_STEPS:
            measure(step.name, step.function(), spark, lake, config, day1)
    # The daily refresh has real work to do: every example segment is a dynamic audience
    # (named by its file, so `in_segment: churn_risk` resolves), refreshed by the daily step.
    names = create_example_audiences(spark, lake, config)
    total = 0.0
    for step in DAILY_STEPS:
        t0 = time.time()
        notes = f"{len(names)} dynamic audiences: conf/segments/*.yaml" if step.name == "audiences" else ""
        measure(f"daily {step.name}", step.function(), spark, lake, config, day2, notes=notes)
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
    # After the daily figures, on the same warehouse: the RFM core against DuckDB (#3)
    # and the lookalike search against the exact one (#7), at this scale.
    try:
        rows += _reference_benchmarks(spark, lake, config, day2, scale)
    except Exception:  # noqa: BLE001 - the daily figures above must still be written
        traceback.print_exc()
    return rows


def _reference_benchmarks(spark, lake, config, day: dt.date, scale: int) -> list[dict]:
    from bench.bench_features import core_vs_duckdb
    from bench.bench_recommend import lookalike_vs_exact

    out = core_vs_duckdb(spark, lake, config, day)
    if scale <= LOOKALIKE_MAX_SCALE:
        features = lake.read("customer_features", partitions={"snapshot_date": day})
        out += lookalike_vs_exact(spark, config, features, scale)
    return out
