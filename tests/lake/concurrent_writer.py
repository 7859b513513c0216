"""One writer of the two-process concurrency tests (tests/lake/test_concurrency.py).

Run as ``python tests/lake/concurrent_writer.py '<json spec>'``. It builds its own
``local[1]`` SparkSession, plans one write on the table, waits on a file barrier until
the other writer has planned its write too, commits, and writes the outcome as JSON to
``spec["result"]``: ``{"status": "ok", "version": n}``, ``{"status": "conflict",
"message": ...}`` (a WriteConflict) or ``{"status": "error", ...}`` (anything else).

Where each backend waits:

* embedded: on the backend's ``before_commit`` seam, after its data files are written
  and before it commits;
* jvm: inside the Spark job that writes the data (a Python UDF on the rows), which
  delta-spark runs after its transaction has read the snapshot and before it commits.
"""

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


def main(spec: dict) -> dict:
    from pyspark.sql import functions as F

    from segengine.config import load_config
    from segengine.errors import WriteConflict
    from segengine.lake import Lake
    from segengine.session import build_spark

    config = load_config(
        "local",
        overrides=[
            f"warehouse={spec['warehouse']}",
            "spark.master=local[1]",
            "spark.shuffle_partitions=1",
            "spark.driver_memory=1g",
            f"delta.backend={spec['backend']}",
        ],
        environ={},
    )
    spark = build_spark(config, app_name=f"segengine-concurrency-{spec['name']}")
    try:
        lake = Lake.open(spark, config)
        schema = spark.createDataFrame([], spec["schema"]).schema
        dates = [i for i, f in enumerate(schema.fields) if f.dataType.typeName() == "date"]
        data = [tuple(dt.date.fromisoformat(v) if i in dates else v for i, v in enumerate(r)) for r in spec["rows"]]
        df = spark.createDataFrame(data, schema).coalesce(1)
        if spec["backend"] == "embedded":
            from segengine.lake import embedded

            embedded.before_commit = lambda uri, version: barrier(spec["barrier"], spec["name"])
        else:
            folder, name = spec["barrier"], spec["name"]

            @F.udf("boolean")
            def arrive(_: object) -> bool:
                barrier(folder, name)
                return True

            first = df.columns[0]
            df = df.filter(arrive(F.col(first)))
        try:
            op = spec["op"]
            if op == "append":
                version = lake.write(df, spec["table"])
            elif op == "overwrite_partition":
                version = lake.overwrite_partition(df, spec["table"], **spec["partition"])
            elif op == "merge":
                version = lake.merge(df, spec["table"], keys=spec["keys"], within=spec.get("within"))
            else:
                raise ValueError(f"unknown op {op}")
            return {"status": "ok", "version": version}
        except WriteConflict as exc:
            return {"status": "conflict", "message": str(exc)}
    finally:
        spark.stop()


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    os.environ["PYSPARK_PYTHON"] = sys.executable
    try:
        outcome = main(spec)
    except Exception as exc:  # noqa: BLE001 - reported to the test, which fails on it
        outcome = {
            "status": "error",
            "type": type(exc).__name__,
            "message": str(exc)[:2000],
            "trace": traceback.format_exc()[-4000:],
        }
    Path(spec["result"]).write_text(json.dumps(outcome))
