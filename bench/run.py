"""Benchmark runner: ``make bench`` (and ``make bench-scale``).

Runs every ``bench/bench_<area>.py`` module's ``run(spark, config, workdir, scale)``
and writes the rows to ``bench/results.json`` (all runs, newest last) and
``bench/results.md`` (the latest row per benchmark/metric/scale), with the command
and the machine's core count, so every figure quoted in README or a note can be
traced to a run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_MODULES = [
    "data",
    "features",
    "rules",
    "sequences",
    "audiences",
    "activation",
    "insights",
    "models",
    "propensity",
    "recommend",
]


def _session(workdir: Path, driver_memory: str, backend: str = "auto"):
    from segengine.config import load_config
    from segengine.session import build_spark

    config = load_config(
        "local",
        overrides=[
            f"warehouse={workdir / 'warehouse'}",
            f"spark.driver_memory={driver_memory}",
            f"delta.backend={backend}",
        ],
    )
    return build_spark(config, app_name="segengine-bench"), config


def recorded_command(argv: list[str]) -> str:
    """The command a result row records: the arguments that shape the run, without the
    scratch ``--workdir`` (a machine's path, which does not change what is measured)."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--workdir":
            skip = True
        elif not arg.startswith("--workdir="):
            kept.append(arg)
    return " ".join(["python -m bench.run", *kept])


def write_results(rows: list[dict], command: str) -> None:
    results_json = HERE / "results.json"
    history = json.loads(results_json.read_text()) if results_json.exists() else []
    history.extend(rows)
    results_json.write_text(json.dumps(history, indent=1, default=str) + "\n")
    latest: dict[tuple, dict] = {}
    for row in history:
        latest[(row["benchmark"], row["metric"], row.get("scale"))] = row
    lines = [
        "# Benchmark results",
        "",
        "Latest value per benchmark, metric and scale; every run is kept in `results.json`.",
        "Produced by `make bench` / `make bench-scale` (`python -m bench.run`).",
        "",
        "| benchmark | metric | scale (personas) | value | unit | notes | when | cores |",
        "|---|---|---:|---:|---|---|---|---:|",
    ]
    for key in sorted(latest, key=lambda k: (k[0], str(k[2]), k[1])):
        r = latest[key]
        value = r["value"]
        value = f"{value:,.3f}" if isinstance(value, float) else str(value)
        lines.append(
            f"| {r['benchmark']} | {r['metric']} | {r.get('scale', '')} | {value} | {r.get('unit', '')} | "
            f"{str(r.get('notes', '')).replace('|', '/')} | {str(r.get('when', ''))[:16]} | {r.get('cores', '')} |"
        )
    (HERE / "results.md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default="", help="Comma-separated bench modules (default: all)")
    parser.add_argument("--scale", action="store_true", help="Run the 1M/2M end-to-end pipeline benchmark")
    parser.add_argument("--personas", type=int, default=int(os.environ.get("BENCH_PERSONAS", "200000")))
    parser.add_argument("--scales", default="1000000,2000000", help="Persona counts for --scale")
    parser.add_argument("--driver-memory", default="16g")
    parser.add_argument("--workdir", default=None, help="Scratch directory (default: a temp dir)")
    parser.add_argument(
        "--backend", default="auto", choices=["auto", "jvm", "embedded"], help="Delta backend (auto: jvm with the jars)"
    )
    parser.add_argument(
        "--daily-only",
        action="store_true",
        help="With --scale and --workdir: only the daily steps, on the warehouse an earlier run left in --workdir",
    )
    args = parser.parse_args(argv)
    if args.daily_only:
        os.environ["SEGENGINE_BENCH_DAILY_ONLY"] = "1"  # read by bench_pipeline

    modules = ["pipeline"] if args.scale else [m for m in (args.only.split(",") if args.only else DEFAULT_MODULES) if m]
    scales = [int(s) for s in args.scales.split(",")] if args.scale else [args.personas]
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="segengine-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    spark, config = _session(workdir, args.driver_memory, args.backend)
    os.environ.setdefault("SEGENGINE_BENCH_CACHE", str(workdir / "_bronze"))  # see bench/shared.py
    command = recorded_command(argv if argv is not None else sys.argv[1:])
    failures = 0
    for name in modules:
        for scale in scales:
            try:
                module = importlib.import_module(f"bench.bench_{name}")
            except ModuleNotFoundError as exc:
                print(f"bench_{name}: skipped ({exc})")
                continue
            print(f"== bench_{name} at {scale:,} personas")
            started = time.time()
            try:
                rows = module.run(spark, config, str(workdir / name / str(scale)), scale)
            except Exception:  # noqa: BLE001 - one failing benchmark must not hide the others
                traceback.print_exc()
                failures += 1
                continue
            when = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
            for row in rows:
                row.setdefault("scale", scale)
                row.update(when=when, command=command, cores=os.cpu_count(), python=platform.python_version())
                print(f"  {row['benchmark']:28s} {row['metric']:32s} {row['value']!s:>14} {row.get('unit', '')}")
            write_results(rows, command)
            print(f"   ({time.time() - started:.0f}s)")
            if not args.daily_only:
                shutil.rmtree(workdir / name / str(scale), ignore_errors=True)
    shutil.rmtree(workdir / "_bronze", ignore_errors=True)
    spark.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
