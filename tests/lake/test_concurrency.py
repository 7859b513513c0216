"""Two processes writing one Delta table at once, on each backend.

Two writer processes per backend (tests/lake/concurrent_writer.py, each with its own
``local[1]`` SparkSession, started once for the module) plan their write on the same snapshot, meet at a file
barrier, then commit together. Whatever the interleaving, the outcome must be both
writes in some serial order, or exactly one clear WriteConflict with the table as the
winner left it: never a lost or doubled row.

SEGENGINE_CHILD_PYTHONPATH points the writers at another copy of segengine (for
example the embedded writer before its conflict check) with the same assertions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from segengine.lake import Lake
from segengine.lake.embedded import EmbeddedBackend

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WRITER = Path(__file__).with_name("concurrent_writer.py")
D1 = "2025-01-01"
D2 = "2025-01-02"
FEATURES = "persona_id string, value double, snapshot_date date"
MEMBERS = "audience_id string, persona_id string, score int"
TIMEOUT_S = 300  # a writer took 120 s on 2 busy cores (load average 10); 30 s when idle


class Writer:
    """One long-lived writer process (concurrent_writer.py) with its own SparkSession."""

    def __init__(self, backend: str, name: str):
        env = dict(os.environ)
        env["PYTHONPATH"] = os.environ.get("SEGENGINE_CHILD_PYTHONPATH", str(REPO))
        self.proc = subprocess.Popen(
            [sys.executable, str(WRITER), backend, name],
            env=env,
            cwd=str(REPO),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.expect("ready")

    def expect(self, word: str) -> None:
        """Wait for the writer's next status line (``ready`` or ``done``)."""
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(TIMEOUT_S)
        line = (box[0] if box else "").strip()
        if line != word:
            self.proc.kill()
            raise AssertionError(f"concurrency writer: expected {word!r}, got {line!r} (exit {self.proc.poll()})")

    def send(self, spec: dict) -> None:
        self.proc.stdin.write(json.dumps(spec) + "\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture(scope="module")
def writers():
    """Two writer processes per backend, started at first use and shared by the module's tests."""
    pool: dict[str, tuple[Writer, Writer]] = {}

    def get(backend: str) -> tuple[Writer, Writer]:
        pair = pool.get(backend)
        if pair is None or any(w.proc.poll() is not None for w in pair):
            pair = pool[backend] = (Writer(backend, "first"), Writer(backend, "second"))
        return pair

    yield get
    for pair in pool.values():
        for writer in pair:
            writer.close()


@pytest.fixture(params=["embedded", "jvm"])
def backend(request, base_config, writers):
    if request.param == "jvm":
        from segengine.session import delta_jars

        if not delta_jars(base_config):
            pytest.skip("the JVM backend needs the delta-spark jars (make setup)")
    writers(request.param)  # started here, so the pair's JVM start is not inside run_two
    return request.param


@pytest.fixture
def elake(spark, config):
    return Lake(spark, config, EmbeddedBackend(spark))


def day(text):
    return dt.date.fromisoformat(text)


def features(spark, data):
    return spark.createDataFrame([(p, v, day(d)) for p, v, d in data], FEATURES)


@pytest.fixture
def run_two(writers, backend, tmp_path):
    """Run two writes at once; their outcomes (dicts, see concurrent_writer)."""

    def run(table, first, second):
        barrier = tmp_path / "barrier"
        barrier.mkdir()
        pair = writers(backend)
        for writer, (name, spec) in zip(pair, (("first", first), ("second", second))):
            writer.send(
                {
                    "backend": backend,
                    "warehouse": str(tmp_path / f"warehouse-{name}"),
                    "table": table,
                    "barrier": str(barrier),
                    "name": name,
                    "result": str(tmp_path / f"{name}.json"),
                    **spec,
                }
            )
        for writer in pair:
            writer.expect("done")
        outcomes = [json.loads((tmp_path / f"{name}.json").read_text()) for name in ("first", "second")]
        for outcome in outcomes:
            assert outcome["status"] in {"ok", "conflict"}, outcome
            if outcome["status"] == "conflict":
                assert table.rstrip("/") in outcome["message"] or "Concurrent" in outcome["message"], outcome
        return outcomes

    return run


def rows_of(lake, table, **partition):
    df = lake.read(table, partitions=partition or None)
    return sorted(tuple(str(v) if isinstance(v, dt.date) else v for v in r) for r in df.collect())


def test_two_partition_overwrites_of_one_date_leave_one_writers_rows(spark, elake, run_two, tmp_path):
    table = str(tmp_path / "customer_features")
    elake.write(features(spark, [("x", 0.0, D1), ("keep", 5.0, D2)]), table, partition_by=["snapshot_date"])
    a = [("a1", 1.0, D1), ("a2", 1.0, D1)]
    b = [("b1", 2.0, D1)]
    spec = {"op": "overwrite_partition", "schema": FEATURES, "partition": {"snapshot_date": D1}}
    first, second = run_two(table, {**spec, "rows": [list(r) for r in a]}, {**spec, "rows": [list(r) for r in b]})
    statuses = sorted([first["status"], second["status"]])
    got = rows_of(elake, table, snapshot_date=day(D1))
    assert rows_of(elake, table, snapshot_date=day(D2)) == [("keep", 5.0, D2)]
    if statuses == ["conflict", "ok"]:
        winner = a if first["status"] == "ok" else b
        assert got == sorted(winner)
    else:  # both committed: the later one replaced the earlier one's rows
        assert statuses == ["ok", "ok"]
        later = a if first["version"] > second["version"] else b
        assert got == sorted(later)


def test_append_beside_a_partition_overwrite_of_the_same_date_is_kept_or_conflicts(spark, elake, run_two, tmp_path):
    table = str(tmp_path / "customer_features")
    elake.write(features(spark, [("old", 0.0, D1)]), table, partition_by=["snapshot_date"])
    appended = [("app", 7.0, D1)]
    replacing = [("new", 1.0, D1)]
    first, second = run_two(
        table,
        {"op": "append", "schema": FEATURES, "rows": [list(r) for r in appended]},
        {
            "op": "overwrite_partition",
            "schema": FEATURES,
            "partition": {"snapshot_date": D1},
            "rows": [list(r) for r in replacing],
        },
    )
    assert first["status"] == "ok"  # a blind append never conflicts
    got = rows_of(elake, table)
    if second["status"] == "ok":
        # Serial order: the overwrite, then the append (the append's rows survive once).
        assert got == sorted(appended + replacing)
    else:
        assert second["status"] == "conflict"
        assert got == sorted(appended + [("old", 0.0, D1)])


def test_two_merges_of_one_audience_lose_no_update(spark, elake, run_two, tmp_path):
    table = str(tmp_path / "audience_members")
    base = [("A", "p1", 0), ("A", "p2", 0), ("B", "p9", 0)]
    elake.write(spark.createDataFrame(base, MEMBERS).coalesce(1), table, partition_by=["audience_id"])
    a = [("A", "p1", 1), ("A", "p3", 1)]
    b = [("A", "p2", 2), ("A", "p4", 2)]
    spec = {"op": "merge", "schema": MEMBERS, "keys": ["persona_id"], "within": {"audience_id": "A"}}
    first, second = run_two(table, {**spec, "rows": [list(r) for r in a]}, {**spec, "rows": [list(r) for r in b]})

    def merged(*sources):
        out = {r[1]: r for r in base}
        for source in sources:
            out.update({r[1]: r for r in source})
        return sorted(out.values())

    got = rows_of(elake, table)
    if first["status"] == second["status"] == "ok":
        assert got == merged(a, b)
    else:
        assert sorted([first["status"], second["status"]]) == ["conflict", "ok"]
        assert got == merged(a if first["status"] == "ok" else b)


def test_two_first_writers_of_a_new_partition_write_it_once(spark, elake, run_two, tmp_path):
    table = str(tmp_path / "customer_features")
    elake.write(features(spark, [("x", 0.0, D1)]), table, partition_by=["snapshot_date"])
    rerun = [("n1", 3.0, D2), ("n2", 4.0, D2)]
    spec = {
        "op": "overwrite_partition",
        "schema": FEATURES,
        "partition": {"snapshot_date": D2},
        "rows": [list(r) for r in rerun],
    }
    first, second = run_two(table, spec, spec)
    assert "ok" in (first["status"], second["status"])
    assert rows_of(elake, table, snapshot_date=day(D2)) == sorted(rerun)
    assert rows_of(elake, table, snapshot_date=day(D1)) == [("x", 0.0, D1)]


REGISTRY = "audience_id string, name string"


@pytest.mark.parametrize(
    "first_op, expect_both",
    [("append", True), ("overwrite", False)],
    ids=["beside-an-append", "beside-an-overwrite"],
)
def test_row_writes_beside_a_spark_write_of_the_same_table_follow_delta_rules(
    spark, elake, run_two, tmp_path, first_op, expect_both
):
    """Small metadata rows (write_rows) are committed without Spark on both backends, so
    on the JVM backend they meet delta-spark's commits in one table: two appends both
    land; a whole-table overwrite against a row overwrite gives one winner, never a mix."""
    table = str(tmp_path / "audiences")
    elake.write_rows([("a0", "old")], REGISTRY, table)
    spark_rows = [("a1", "by spark")]
    row_rows = [("a2", "by rows")]
    first = {"op": first_op, "schema": REGISTRY, "rows": [list(r) for r in spark_rows]}
    second = {"op": "write_rows", "mode": "append" if expect_both else "overwrite", "schema": REGISTRY}
    first, second = run_two(table, first, {**second, "rows": [list(r) for r in row_rows]})
    got = rows_of(elake, table)
    if expect_both:
        assert (first["status"], second["status"]) == ("ok", "ok")
        assert got == sorted([("a0", "old"), *spark_rows, *row_rows])
    else:
        assert sorted([first["status"], second["status"]]) == ["conflict", "ok"], (first, second)
        assert got == sorted(spark_rows if first["status"] == "ok" else row_rows)
