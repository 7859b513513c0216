"""The lake contract: the same behaviour, asserted the same way, on both Delta backends.

Every test that takes ``lake`` runs twice: on delta-spark (``jvm``, what every cluster
runs) and on the embedded backend (delta-rs log, Spark data). A behaviour one backend
gets wrong because of a known bug is marked with :func:`embedded_bug` (a strict
xfail on that backend only, so the mark fails the day the bug is fixed).
"""

from __future__ import annotations

import datetime as dt
import time

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from segengine.errors import SchemaMismatch, SegengineError, TableNotFound
from segengine.lake import Lake

D1 = dt.date(2025, 1, 1)
D2 = dt.date(2025, 1, 2)
D3 = dt.date(2025, 1, 3)
SCHEMA = "persona_id string, value double, snapshot_date date"
MEMBERS = "audience_id string, persona_id string"
KEYS = ["persona_id", "snapshot_date"]
BACKENDS = ["jvm", "embedded"]


def embedded_bug(reason: str):
    """Mark a contract test the embedded backend fails today (strict xfail there only)."""

    def mark(fn):
        fn._embedded_bug = reason
        return fn

    return mark


@pytest.fixture(params=BACKENDS)
def lake(request, spark, config):
    """A Lake on one backend; the warehouse is fresh for every test and backend."""
    reason = getattr(request.function, "_embedded_bug", None)
    if reason and request.param == "embedded":
        request.applymarker(pytest.mark.xfail(strict=True, reason=reason))
    cfg = config.replace(delta=config.delta.replace(backend=request.param))
    lake = Lake.open(spark, cfg)
    assert lake.backend.name == request.param
    return lake


def rows(spark, data, schema=SCHEMA):
    return spark.createDataFrame(data, schema)


def sorted_rows(df):
    return sorted(tuple(r) for r in df.collect())


def features(lake):
    return sorted_rows(lake.read("customer_features"))


# ------------------------------------------------------------------ read and write


def test_write_then_read_same_rows(spark, lake):
    df = rows(spark, [("a", 1.0, D1), ("b", None, D2)])
    assert lake.write(df, "customer_features", mode="overwrite") == 0
    assert_df_equality(lake.read("customer_features"), df, ignore_row_order=True, ignore_nullable=True)
    assert lake.exists("customer_features") and lake.version("customer_features") == 0


def test_append_adds_rows_and_returns_the_next_version(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features")
    assert lake.write(rows(spark, [("b", 2.0, D2)]), "customer_features", mode="append") == 1
    assert features(lake) == [("a", 1.0, D1), ("b", 2.0, D2)]


def test_overwrite_replaces_every_row(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2)]), "customer_features")
    assert lake.write(rows(spark, [("c", 3.0, D1)]), "customer_features", mode="overwrite") == 1
    assert features(lake) == [("c", 3.0, D1)]
    assert sorted_rows(lake.read("customer_features", version=0)) == [("a", 1.0, D1), ("b", 2.0, D2)]


def test_time_travel_by_version_and_timestamp(spark, lake):
    v0 = lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    time.sleep(0.05)
    mid = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    v1 = lake.write(rows(spark, [("b", 2.0, D1)]), "customer_features", mode="append")
    assert (v0, v1) == (0, 1)
    assert sorted_rows(lake.read("customer_features", version=v0)) == [("a", 1.0, D1)]
    assert sorted_rows(lake.read("customer_features", timestamp=mid)) == [("a", 1.0, D1)]
    assert features(lake) == [("a", 1.0, D1), ("b", 2.0, D1)]
    with pytest.raises(TableNotFound, match="version 99"):
        lake.read("customer_features", version=99)


def test_read_partition_prunes(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2), ("c", 3.0, D3)]), "customer_features")
    assert sorted_rows(lake.read("customer_features", partitions={"snapshot_date": D2})) == [("b", 2.0, D2)]
    got = lake.read("customer_features", partitions={"snapshot_date": [D1, D3]})
    assert sorted_rows(got) == [("a", 1.0, D1), ("c", 3.0, D3)]


def test_missing_table_is_a_clear_error(lake):
    with pytest.raises(TableNotFound, match="no Delta table"):
        lake.read("customer_features")
    assert not lake.exists("customer_features")


# ------------------------------------------------------------------ partition overwrite


def test_overwrite_one_partition_keeps_the_others(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2)]), "customer_features", mode="overwrite")
    v = lake.overwrite_partition(rows(spark, [("c", 9.0, D2)]), "customer_features", snapshot_date=D2)
    assert v == 1
    assert features(lake) == [("a", 1.0, D1), ("c", 9.0, D2)]


def test_rerun_of_same_partition_overwrite_gives_same_table(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    day2 = rows(spark, [("b", 2.0, D2), ("c", 3.0, D2)])
    lake.overwrite_partition(day2, "customer_features", snapshot_date=D2)
    first = features(lake)
    lake.overwrite_partition(day2, "customer_features", snapshot_date=D2)
    assert features(lake) == first == [("a", 1.0, D1), ("b", 2.0, D2), ("c", 3.0, D2)]


def test_partition_overwrite_refuses_rows_outside_the_partition(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2)]), "customer_features", mode="overwrite")
    before = lake.version("customer_features")
    with pytest.raises(Exception, match="outside the partition"):
        lake.overwrite_partition(rows(spark, [("c", 3.0, D2), ("d", 4.0, D1)]), "customer_features", snapshot_date=D2)
    assert lake.version("customer_features") == before
    assert features(lake) == [("a", 1.0, D1), ("b", 2.0, D2)]


# ------------------------------------------------------------------ merge


def test_merge_upserts_by_key(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D1), ("c", 3.0, D2)]), "customer_features", mode="overwrite")
    v = lake.merge(rows(spark, [("b", 20.0, D1), ("d", 4.0, D2)]), "customer_features", keys=KEYS)
    assert v == 1
    assert features(lake) == [("a", 1.0, D1), ("b", 20.0, D1), ("c", 3.0, D2), ("d", 4.0, D2)]


def test_merge_into_a_missing_table_creates_it(spark, lake):
    assert lake.merge(rows(spark, [("a", 1.0, D1)]), "customer_features", keys=KEYS) == 0
    assert features(lake) == [("a", 1.0, D1)]
    assert lake.files("customer_features")[0]["partition"] == {"snapshot_date": "2025-01-01"}


def test_merge_with_delete_missing_in_slice(spark, lake, tmp_path):
    uri = str(tmp_path / "members")
    lake.write(rows(spark, [("A", "p1"), ("A", "p2"), ("B", "p1")], MEMBERS), uri, mode="overwrite")
    new = rows(spark, [("A", "p2"), ("A", "p3")], MEMBERS)
    lake.merge(new, uri, keys=["audience_id", "persona_id"], delete_missing_in={"audience_id": "A"})
    assert sorted_rows(lake.read(uri)) == [("A", "p2"), ("A", "p3"), ("B", "p1")]


def test_merge_within_a_partition_with_delete_missing_in_replaces_that_slice(spark, lake):
    lake.write_rows([], "audience_id string, persona_id string, since date", "audience_members")
    members = "audience_id string, persona_id string, since date"
    lake.write(rows(spark, [("A", "p1", D1), ("A", "p2", D1), ("B", "p1", D1)], members), "audience_members")
    lake.merge(
        rows(spark, [("A", "p2", D2), ("A", "p3", D2)], members),
        "audience_members",
        keys=["audience_id", "persona_id"],
        delete_missing_in={"audience_id": "A"},
        within={"audience_id": "A"},
    )
    got = sorted_rows(lake.read("audience_members"))
    assert got == [("A", "p2", D2), ("A", "p3", D2), ("B", "p1", D1)]


def test_merge_within_one_partition_never_opens_the_other_partitions(spark, lake):
    from pathlib import Path

    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D1), ("c", 3.0, D2)]), "customer_features", mode="overwrite")
    # Damage D2's data file: a merge that read it would fail.
    (d2_file,) = [f for f in lake.files("customer_features") if f["partition"]["snapshot_date"] == D2.isoformat()]
    Path(lake.uri("customer_features"), d2_file["path"]).write_bytes(b"not parquet")
    lake.merge(
        rows(spark, [("b", 20.0, D1), ("d", 4.0, D1)]),
        "customer_features",
        keys=KEYS,
        delete_missing_in={"snapshot_date": D1},
        within={"snapshot_date": D1},
    )
    got = lake.read("customer_features", partitions={"snapshot_date": D1})
    assert sorted_rows(got) == [("b", 20.0, D1), ("d", 4.0, D1)]
    assert d2_file["path"] in {f["path"] for f in lake.files("customer_features")}


def test_merge_source_row_outside_within_is_an_error_and_nothing_is_written(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    version = lake.version("customer_features")
    with pytest.raises(
        SegengineError,
        match=r"""source row \{"persona_id":"z".*outside the slice \{'snapshot_date': \['2025-01-01'\]\}""",
    ):
        lake.merge(
            rows(spark, [("a", 2.0, D1), ("z", 9.0, D2)]),
            "customer_features",
            keys=KEYS,
            within={"snapshot_date": D1},
        )
    with pytest.raises(SegengineError, match="within names non-partition column"):
        lake.merge(rows(spark, [("a", 2.0, D1)]), "customer_features", keys=["persona_id"], within={"value": 1.0})
    assert lake.version("customer_features") == version
    assert features(lake) == [("a", 1.0, D1)]


@pytest.mark.parametrize("target_exists", [True, False])
def test_merge_names_the_repeated_key_of_the_source(spark, lake, target_exists):
    if target_exists:
        lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    with pytest.raises(SegengineError, match="more than one row for key {'persona_id': 'b'}"):
        lake.merge(
            rows(spark, [("a", 5.0, D1), ("b", 1.0, D1), ("b", 2.0, D1)]), "customer_features", keys=["persona_id"]
        )
    if target_exists:
        assert lake.version("customer_features") == 0
        assert features(lake) == [("a", 1.0, D1)]
    else:
        assert not lake.exists("customer_features")


def test_merge_matches_null_keys_null_safely(spark, lake, tmp_path):
    uri = str(tmp_path / "t")
    lake.write(rows(spark, [(None, 1.0, D1), ("a", 2.0, D1)]), uri)
    lake.merge(rows(spark, [(None, 10.0, D1), ("b", 3.0, D1)]), uri, keys=["persona_id"])
    assert sorted(lake.read(uri).collect(), key=lambda r: r.persona_id or "") == [
        (None, 10.0, D1),
        ("a", 2.0, D1),
        ("b", 3.0, D1),
    ]


def test_merge_with_evolve_schema_adds_a_column(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D1)]), "customer_features", mode="overwrite")
    source = rows(spark, [("b", 20.0, D1), ("c", 3.0, D1)]).withColumn("tier", F.lit("gold"))
    with pytest.raises(SchemaMismatch, match="tier"):
        lake.merge(source, "customer_features", keys=KEYS)
    assert lake.version("customer_features") == 0
    lake.merge(source, "customer_features", keys=KEYS, evolve_schema=True)
    got = lake.read("customer_features")
    assert got.columns == ["persona_id", "value", "snapshot_date", "tier"]
    assert sorted_rows(got) == [("a", 1.0, D1, None), ("b", 20.0, D1, "gold"), ("c", 3.0, D1, "gold")]


@pytest.mark.parametrize("target_exists", [True, False])
def test_merge_evaluates_its_source_once(spark, lake, tmp_path, target_exists):
    # An audience refresh merges a plan over the order lines: evaluating it once for
    # the checks and again for the written files doubled the refresh time.
    uri = str(tmp_path / "members")
    if target_exists:
        lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D1)]), uri, mode="overwrite")
    evaluated = spark.sparkContext.accumulator(0)

    @F.udf("string")
    def tick(persona_id):
        evaluated.add(1)
        return persona_id

    source = rows(spark, [("b", 20.0, D1), ("c", 3.0, D1), ("d", 4.0, D1)]).withColumn("persona_id", tick("persona_id"))
    lake.merge(source, uri, keys=KEYS)
    assert evaluated.value == 3
    expected = [("b", 20.0, D1), ("c", 3.0, D1), ("d", 4.0, D1)]
    assert sorted_rows(lake.read(uri)) == ([("a", 1.0, D1)] if target_exists else []) + expected


def test_merge_of_new_keys_only_keeps_every_existing_file(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2)]), "customer_features", mode="overwrite")
    before = {f["path"] for f in lake.files("customer_features")}
    lake.merge(rows(spark, [("c", 3.0, D1)]), "customer_features", keys=KEYS)
    after = {f["path"] for f in lake.files("customer_features")}
    assert before < after
    assert features(lake) == [("a", 1.0, D1), ("b", 2.0, D2), ("c", 3.0, D1)]


# ------------------------------------------------------------------ delete, history


def test_delete_where_removes_the_matching_rows(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D1), ("c", None, D2)]), "customer_features")
    assert lake.delete_where("customer_features", F.col("value") > 1.5) == 1
    assert features(lake) == [("a", 1.0, D1), ("c", None, D2)]
    assert sorted_rows(lake.read("customer_features", version=0))[1] == ("b", 2.0, D1)


def test_history_lists_commits_newest_first(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    lake.overwrite_partition(rows(spark, [("a", 2.0, D1)]), "customer_features", snapshot_date=D1)
    lake.merge(
        rows(spark, [("b", 3.0, D1)]), "customer_features", keys=KEYS, operation="UPSERT", metadata={"run": "r1"}
    )
    hist = lake.history("customer_features")
    assert [h["version"] for h in hist] == [2, 1, 0]
    assert [h["segengine.operation"] for h in hist] == ["UPSERT", "REPLACE PARTITION", "WRITE"]
    assert hist[0]["run"] == "r1"
    assert hist[0]["timestamp"] >= hist[1]["timestamp"] >= hist[2]["timestamp"] > 1.7e12  # epoch milliseconds
    assert [h["version"] for h in lake.history("customer_features", limit=1)] == [2]


# ------------------------------------------------------------------ schema


def test_schema_mismatch_is_a_clear_error(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    extra = rows(spark, [("b", 2.0, D1)]).withColumn("new_col", F.lit(1))
    with pytest.raises(SchemaMismatch, match="new_col"):
        lake.write(extra, "customer_features")
    wrong = spark.createDataFrame([("b", "x", D1)], "persona_id string, value string, snapshot_date date")
    with pytest.raises(SchemaMismatch, match="value: table has double, data has string"):
        lake.write(wrong, "customer_features")
    assert lake.version("customer_features") == 0


def test_a_narrower_or_widening_write_is_conformed_to_the_table(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    lake.write(spark.createDataFrame([(D2, "b")], "snapshot_date date, persona_id string"), "customer_features")
    lake.write(
        spark.createDataFrame([("c", 3, D2)], "persona_id string, value int, snapshot_date date"), "customer_features"
    )
    got = lake.read("customer_features")
    assert dict(got.dtypes)["value"] == "double"
    assert sorted_rows(got) == [("a", 1.0, D1), ("b", None, D2), ("c", 3.0, D2)]


def test_schema_evolution_when_asked(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    extra = rows(spark, [("b", 2.0, D1)]).withColumn("new_col", F.lit(7))
    lake.write(extra, "customer_features", evolve_schema=True)
    got = sorted_rows(lake.read("customer_features").select("persona_id", "new_col"))
    assert got == [("a", None), ("b", 7)]
    assert lake.read("customer_features", version=0).columns == ["persona_id", "value", "snapshot_date"]


# ------------------------------------------------------------------ failures and races


def _boom(df):
    return df.withColumn(
        "value", F.when(F.col("persona_id") == "boom", F.raise_error(F.lit("task failed"))).otherwise(F.col("value"))
    )


def test_failure_during_write_leaves_previous_version(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    bad = _boom(rows(spark, [("b", 2.0, D1), ("boom", 3.0, D1)]))
    with pytest.raises(Exception, match="task failed"):
        lake.write(bad, "customer_features", mode="overwrite")
    assert lake.version("customer_features") == 0
    assert features(lake) == [("a", 1.0, D1)]


def test_failed_write_with_schema_evolution_leaves_the_previous_version_and_schema(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    bad = _boom(rows(spark, [("b", 2.0, D1), ("boom", 3.0, D1)])).withColumn("new_col", F.lit(7))
    with pytest.raises(Exception, match="task failed"):
        lake.write(bad, "customer_features", evolve_schema=True)
    with pytest.raises(Exception, match="task failed"):
        lake.merge(bad, "customer_features", keys=KEYS, evolve_schema=True)
    assert lake.version("customer_features") == 0
    assert lake.read("customer_features").columns == ["persona_id", "value", "snapshot_date"]


def _another_commit_right_after_ours(lake, monkeypatch):
    """Make another writer commit right after the next commit of ``lake`` (once).

    The other commit is an empty append by plain delta-rs; it lands where each
    backend has committed but not yet worked out its version.
    """
    from deltalake import DeltaTable

    original = DeltaTable.create_write_transaction
    fired = []

    def other_writer(table_uri):
        fired.append(True)
        other = DeltaTable(table_uri)
        original(other, [], mode="append", schema=other.schema(), partition_by=None)

    from segengine.lake.jvm import JvmBackend

    # Commits through delta-rs (the embedded backend; rows on either backend) ...
    def commit_then_another_writer(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if not fired:
            other_writer(self.table_uri)
        return result

    monkeypatch.setattr(DeltaTable, "create_write_transaction", commit_then_another_writer)
    # ... and through delta-spark, which works out its version afterwards.
    resolve = JvmBackend._committed_version

    def another_writer_then_resolve(self, uri, *args, **kwargs):
        if not fired:
            other_writer(uri)
        return resolve(self, uri, *args, **kwargs)

    monkeypatch.setattr(JvmBackend, "_committed_version", another_writer_then_resolve)
    return fired


@pytest.mark.parametrize("operation", ["write_rows", "merge"])
def test_a_write_returns_its_own_version_when_another_commit_lands_right_after_it(
    spark, lake, monkeypatch, tmp_path, operation
):
    """The version a write returns is its commit's, not the latest one.

    The audience registry checks the version before its commit for a name race: given
    a later writer's version, a creation saw its own row there and removed itself.
    """
    uri = str(tmp_path / "t")
    schema = "persona_id string, value double"
    lake.write_rows([("a", 1.0)], schema, uri, mode="overwrite")
    fired = _another_commit_right_after_ours(lake, monkeypatch)
    if operation == "write_rows":
        ours = lake.write_rows([("b", 2.0)], schema, uri)
    else:
        ours = lake.merge(rows(spark, [("b", 2.0)], schema), uri, keys=["persona_id"])
    assert fired and lake.version(uri) == 2
    assert ours == 1
    assert sorted_rows(lake.read(uri, version=ours)) == [("a", 1.0), ("b", 2.0)]


# ------------------------------------------------------------------ driver-side rows


ROWS_SCHEMA = "run_id string, step string, day date, at timestamp, rows long, seconds double, ok boolean"
ROWS = [
    ("r1", "features", D1, dt.datetime(2025, 1, 1, 10, 0, 0, 123456), 7, 1.5, True),
    ("r1", "insights", D2, None, None, None, False),
]


def test_write_rows_creates_appends_and_reads_back(spark, lake, tmp_path):
    uri = str(tmp_path / "runs")
    assert lake.write_rows([], ROWS_SCHEMA, uri, operation="CREATE TABLE") == 0
    assert lake.read(uri).count() == 0
    assert lake.write_rows(ROWS, ROWS_SCHEMA, uri) == 1
    expected = spark.createDataFrame(ROWS, ROWS_SCHEMA)
    assert_df_equality(lake.read(uri), expected, ignore_row_order=True, ignore_nullable=True)
    assert [h["segengine.operation"] for h in lake.history(uri)] == ["WRITE", "CREATE TABLE"]


def test_write_rows_takes_dicts_and_overwrites(spark, lake, tmp_path):
    uri = str(tmp_path / "runs")
    lake.write_rows(ROWS, ROWS_SCHEMA, uri)
    names = ["run_id", "step", "day", "at", "rows", "seconds", "ok"]
    lake.write_rows([dict(zip(names, ROWS[0]))], ROWS_SCHEMA, uri, mode="overwrite")
    assert sorted_rows(lake.read(uri)) == [ROWS[0]]


def test_write_rows_whose_schema_differs_goes_through_the_checked_write(spark, lake, tmp_path):
    uri = str(tmp_path / "runs")
    lake.write_rows(ROWS, ROWS_SCHEMA, uri)
    with pytest.raises(SchemaMismatch, match="extra"):
        lake.write_rows([("r2", 1)], "run_id string, extra int", uri)
    # A narrower schema is conformed (missing nullable columns become null), as write() does.
    lake.write_rows([("r2",)], "run_id string", uri)
    assert sorted(r["run_id"] for r in lake.read(uri).collect()) == ["r1", "r1", "r2"]


def test_write_rows_creates_an_empty_partitioned_table(spark, lake):
    lake.write_rows([], "audience_id string, persona_id string, since date", "audience_members")
    assert lake.read("audience_members").count() == 0
    assert lake.backend.partition_columns(lake.uri("audience_members")) == ["audience_id"]
    lake.write_rows([("a1", "p1", D1)], "audience_id string, persona_id string, since date", "audience_members")
    assert sorted_rows(lake.read("audience_members", partitions={"audience_id": "a1"})) == [("a1", "p1", D1)]


def test_read_rows_gives_what_collect_gives_at_any_version(spark, lake, tmp_path):
    uri = str(tmp_path / "runs")
    lake.write_rows(ROWS[:1], ROWS_SCHEMA, uri)
    lake.write(spark.createDataFrame(ROWS[1:], ROWS_SCHEMA), uri)
    collected = sorted((r.asDict() for r in lake.read(uri).collect()), key=lambda r: r["step"])
    assert sorted(lake.read_rows(uri), key=lambda r: r["step"]) == collected
    assert collected[0]["at"] == dt.datetime(2025, 1, 1, 10, 0, 0, 123456)  # naive, as collect() gives
    assert lake.read_rows(uri, version=0) == collected[:1]


def test_write_rows_on_a_backend_without_it_is_a_dataframe_write(spark, config):
    class Recorder:
        def write(self, df, uri, **kwargs):
            self.call = (sorted(tuple(r) for r in df.collect()), uri, kwargs)
            return 3

    backend = Recorder()
    lake = Lake(spark, config, backend)
    members = "audience_id string, persona_id string, since date"
    assert lake.write_rows([("a1", "p1", D1)], members, "audience_members") == 3
    got_rows, uri, kwargs = backend.call
    assert got_rows == [("a1", "p1", D1)]
    assert uri == lake.uri("audience_members")
    assert kwargs == {
        "mode": "append",
        "partition_by": ("audience_id",),
        "operation": None,
        "metadata": None,
        "evolve_schema": False,
    }


# ------------------------------------------------------------------ files in the log


LINES = "order_id string, order_ts timestamp, amount double, day date"


def _lines(spark, data):
    return spark.createDataFrame(data, LINES).coalesce(1)


def test_read_where_opens_only_files_whose_statistics_overlap_the_range(spark, lake, tmp_path):
    uri = str(tmp_path / "lines")
    lake.write(
        _lines(spark, [("a", dt.datetime(2025, 1, 1, 10), 1.0, D1), ("b", dt.datetime(2025, 1, 1, 23), 2.0, D1)]), uri
    )
    lake.write(
        _lines(spark, [("c", dt.datetime(2025, 1, 2, 0), 3.0, D2), ("d", dt.datetime(2025, 1, 2, 8), 4.0, D2)]), uri
    )
    day2 = (dt.datetime(2025, 1, 2, tzinfo=dt.UTC), dt.datetime(2025, 1, 2, 23, 59, 59, tzinfo=dt.UTC))
    everything = {f["path"] for f in lake.files(uri)}
    picked = lake.files(uri, where={"order_ts": day2})
    assert len(everything) == 2 and len(picked) == 1
    assert picked[0]["min"]["order_ts"].date() == D2
    assert sorted(r["order_id"] for r in lake.read(uri, where={"order_ts": day2}).collect()) == ["c", "d"]
    edge = {"order_ts": (dt.datetime(2025, 1, 1, 23, tzinfo=dt.UTC), dt.datetime(2025, 1, 2, 0, tzinfo=dt.UTC))}
    assert len(lake.files(uri, where=edge)) == 2
    assert sorted(r["order_id"] for r in lake.read(uri, where=edge).collect()) == ["b", "c"]
    assert lake.files(uri, where={"amount": (10.0, None)}) == []
    assert lake.read(uri, where={"amount": (10.0, None)}).count() == 0


def test_partition_lists_and_ranges_prune_partitioned_tables(spark, lake, tmp_path):
    uri = str(tmp_path / "daily")
    lake.write(
        _lines(
            spark,
            [
                ("a", dt.datetime(2025, 1, 1), 1.0, D1),
                ("b", dt.datetime(2025, 1, 2), 2.0, D2),
                ("c", dt.datetime(2025, 1, 3), 3.0, D3),
            ],
        ),
        uri,
        partition_by=["day"],
    )
    assert {f["partition"]["day"] for f in lake.files(uri, partitions={"day": [D1, D3]})} == {
        "2025-01-01",
        "2025-01-03",
    }
    assert sorted(r["order_id"] for r in lake.read(uri, partitions={"day": [D1, D3]}).collect()) == ["a", "c"]
    assert sorted(r["order_id"] for r in lake.read(uri, where={"day": (D2, None)}).collect()) == ["b", "c"]
    assert {f["partition"]["day"] for f in lake.files(uri, where={"day": (D2, None)})} == {"2025-01-02", "2025-01-03"}
    assert lake.read(uri, partitions={"day": []}).count() == 0


def test_changed_files_lists_files_added_and_removed_between_versions(spark, lake, tmp_path):
    uri = str(tmp_path / "lines")
    v0 = lake.write(_lines(spark, [("a", dt.datetime(2025, 1, 1), 1.0, D1)]), uri)
    v1 = lake.write(_lines(spark, [("b", dt.datetime(2025, 1, 2), 2.0, D2)]), uri)
    added = lake.changed_files(uri, v0, v1)
    assert added["removed"] == [] and [f["min"]["order_ts"].date() for f in added["added"]] == [D2]
    lake.write(_lines(spark, [("c", dt.datetime(2025, 1, 3), 3.0, D2)]), uri, mode="overwrite")
    replaced = lake.changed_files(uri, v1)
    assert len(replaced["removed"]) == 2 and len(replaced["added"]) == 1


def test_changed_files_leaves_out_what_optimize_rewrote(spark, lake, tmp_path):
    """An OPTIMIZE changes no rows: the feature refresh must not see its files as new or
    removed data. A file appended and then compacted away is still listed as added."""
    from segengine.lake.maintenance import optimize

    uri = str(tmp_path / "lines")
    v0 = lake.write(_lines(spark, [("a", dt.datetime(2025, 1, 1), 1.0, D1)]), uri)
    lake.write(_lines(spark, [("b", dt.datetime(2025, 1, 2), 2.0, D1)]), uri)
    appended = lake.version(uri)
    optimize(lake, uri)
    compacted = lake.version(uri)
    assert compacted > appended and len(lake.files(uri)) == 1
    assert lake.changed_files(uri, appended, compacted) == {"added": [], "removed": []}
    since_first = lake.changed_files(uri, v0)
    assert since_first["removed"] == []
    assert [f["min"]["order_ts"].date() for f in since_first["added"]] == [dt.date(2025, 1, 2)]
    lake.write(_lines(spark, [("c", dt.datetime(2025, 1, 3), 3.0, D3)]), uri)
    after = lake.changed_files(uri, appended)
    assert after["removed"] == [] and [f["min"]["order_ts"].date() for f in after["added"]] == [D3]
