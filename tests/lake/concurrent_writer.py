"""The writers of the two-process concurrency tests (tests/lake/test_concurrency.py).

Run as ``python tests/lake/concurrent_writer.py <backend> <name>``: it builds its own
``local[1]`` SparkSession once, then reads one JSON spec a line from stdin, for as many
tests as the module has. For each it plans one write on the table, waits on a file
barrier until the other writer has planned its write too, commits, writes the outcome
as JSON to ``spec["result"]`` (``{"status": "ok", "version": n}``, ``{"status":
"conflict", "message": ...}`` for a WriteConflict, ``{"status": "error", ...}`` for
anything else) and prints ``done``. One JVM per writer and backend, not per test: the
JVM start was most of each test's time.

Where each backend waits:

* embedded: on the backend's ``before_commit`` seam, after its data files are written
  and before it commits;
* jvm: inside the Spark job that writes the data (a Python UDF on the rows), which
  delta-spark runs after its transaction has read the snapshot and before it commits."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
import traceback
from pathlib import Path

BARRIER_TIMEOUT_S = 90


def barrier(folder: str, name: str, parties: int = 2) -> None:
    """Arrive at the barrier in ``folder`` and wait until ``parties`` writers have."""
    path = Path(folder)
    (path / name).touch()
    deadline = time.monotonic() + BARRIER_TIMEOUT_S
    while len(list(path.iterdir())) < parties:
        if time.monotonic() > deadline:
            raise TimeoutError(f"barrier {folder}: only {[p.name for p in path.iterdir()]} arrived")
        time.sleep(0.05)


def session(backend: str, name: str):
    """The writer's SparkSession and configuration (the warehouse is set per spec)."""
    import tempfile

    from segengine.config import load_config
    from segengine.session import build_spark

    config = load_config(
        "local",
        overrides=[
            f"warehouse={tempfile.mkdtemp(prefix='segengine-writer-')}",
            "spark.master=local[1]",
            "spark.shuffle_partitions=1",
            "spark.driver_memory=1g",
            f"delta.backend={backend}",
        ],
        environ={},
    )
    return build_spark(config, app_name=f"segengine-concurrency-{backend}-{name}"), config


def write(spark, config, spec: dict) -> dict:
    """Plan the spec's write, meet the other writer at the barrier, commit."""
    from pyspark.sql import functions as F

    from segengine.errors import WriteConflict
    from segengine.lake import Lake
    from segengine.lake.deltalog import commit as log_commit

    lake = Lake.open(spark, config.replace(warehouse=spec["warehouse"]))
    schema = spark.createDataFrame([], spec["schema"]).schema
    dates = [i for i, f in enumerate(schema.fields) if f.dataType.typeName() == "date"]
    data = [tuple(dt.date.fromisoformat(v) if i in dates else v for i, v in enumerate(r)) for r in spec["rows"]]
    df = spark.createDataFrame(data, schema).coalesce(1)
    folder, name = spec["barrier"], spec["name"]
    if spec["backend"] == "embedded" or spec["op"] == "write_rows":
        # write_rows commits through the embedded writer's log protocol on both backends.
        log_commit.before_commit = lambda uri, version: barrier(folder, name)
    else:

        @F.udf("boolean")
        def arrive(_: object) -> bool:
            barrier(folder, name)
            return True

        df = df.filter(arrive(F.col(df.columns[0])))
    try:
        op = spec["op"]
        if op == "append":
            version = lake.write(df, spec["table"])
        elif op == "overwrite_partition":
            version = lake.overwrite_partition(df, spec["table"], **spec["partition"])
        elif op == "overwrite":
            version = lake.write(df, spec["table"], mode="overwrite")
        elif op == "write_rows":
            version = lake.write_rows(data, schema, spec["table"], mode=spec.get("mode", "append"))
        elif op == "merge":
            version = lake.merge(df, spec["table"], keys=spec["keys"], within=spec.get("within"))
        else:
            raise ValueError(f"unknown op {op}")
        return {"status": "ok", "version": version}
    except WriteConflict as exc:
        return {"status": "conflict", "message": str(exc)}
    finally:
        log_commit.before_commit = None


if __name__ == "__main__":
    os.environ["PYSPARK_PYTHON"] = sys.executable
    spark, config = session(sys.argv[1], sys.argv[2])
    print("ready", flush=True)
    for line in sys.stdin:
        spec = json.loads(line)
        try:
            outcome = write(spark, config, spec)
        except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
            outcome = {
                "status": "error",
                "type": type(exc).__name__,
                "message": str(exc)[:2000],
                "trace": traceback.format_exc()[-4000:],
            }
        Path(spec["result"]).write_text(json.dumps(outcome))
        print("done", flush=True)
    spark.stop()
