"""The embedded backend's write safety: isolation, atomic schema changes, table rules.

Concurrency here is made deterministic inside one process: the backend's
``before_commit`` seam lets a test commit "another writer's" version after the
write under test has planned and written its files, and before it commits.
The two-process versions are in ``tests/lake/test_concurrency.py``.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from pyspark.sql import functions as F

from segengine.errors import ConstraintViolation, TableFeatureUnsupported, WriteConflict
from segengine.lake import Lake
from segengine.lake.deltalog import commit as commit_module
from segengine.lake.embedded import EmbeddedBackend

D1 = dt.date(2025, 1, 1)
D2 = dt.date(2025, 1, 2)
SCHEMA = "persona_id string, value double, snapshot_date date"
MEMBERS = "audience_id string, persona_id string, score int"


@pytest.fixture
def elake(spark, config):
    """A Lake on the embedded backend whatever SEGENGINE_TEST_BACKEND says."""
    return Lake(spark, config, EmbeddedBackend(spark, commit_retries=3))


@pytest.fixture
def concurrently(monkeypatch):
    """``concurrently(fn)``: run ``fn()`` once, as another writer, just before the next commit."""

    def install(fn):
        def hook(uri, read_version):
            monkeypatch.setattr(commit_module, "before_commit", None)
            fn()

        monkeypatch.setattr(commit_module, "before_commit", hook)

    return install


def rows(spark, data, schema=SCHEMA):
    return spark.createDataFrame(data, schema)


def table_rows(lake, name):
    return sorted(tuple(r) for r in lake.read(name).collect())


def log_entry(uri, version):
    with open(f"{uri}/_delta_log/{version:020d}.json") as f:
        return [json.loads(line) for line in f if line.strip()]


# ------------------------------------------------------------------ isolation


def test_partition_overwrite_fails_when_a_concurrent_commit_appends_into_that_partition(spark, elake, concurrently):
    elake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2)]), "customer_features", mode="overwrite")
    concurrently(lambda: elake.write(rows(spark, [("c", 3.0, D2)]), "customer_features"))
    with pytest.raises(
        WriteConflict, match=r"concurrent commit version 1 \(WRITE\) added data file\(s\) in snapshot_date=2025-01-02"
    ):
        elake.overwrite_partition(rows(spark, [("z", 9.0, D2)]), "customer_features", snapshot_date=D2)
    assert elake.version("customer_features") == 1
    assert table_rows(elake, "customer_features") == [("a", 1.0, D1), ("b", 2.0, D2), ("c", 3.0, D2)]


def test_partition_overwrite_commits_beside_a_concurrent_append_into_another_partition(spark, elake, concurrently):
    elake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2)]), "customer_features", mode="overwrite")
    concurrently(lambda: elake.write(rows(spark, [("c", 3.0, D1)]), "customer_features"))
    version = elake.overwrite_partition(rows(spark, [("z", 9.0, D2)]), "customer_features", snapshot_date=D2)
    assert version == 2
    assert table_rows(elake, "customer_features") == [("a", 1.0, D1), ("c", 3.0, D1), ("z", 9.0, D2)]


def test_two_first_writers_of_a_new_partition_commit_it_once(spark, elake, concurrently):
    elake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    day2 = rows(spark, [("b", 2.0, D2)])
    concurrently(lambda: elake.overwrite_partition(day2, "customer_features", snapshot_date=D2))
    with pytest.raises(WriteConflict, match="added data file"):
        elake.overwrite_partition(day2, "customer_features", snapshot_date=D2)
    assert table_rows(elake, "customer_features") == [("a", 1.0, D1), ("b", 2.0, D2)]


def test_full_overwrite_of_an_unpartitioned_table_fails_on_any_concurrent_add(spark, elake, concurrently, tmp_path):
    uri = str(tmp_path / "plain")
    schema = "k string, n int"
    elake.write(rows(spark, [("a", 1)], schema), uri)
    concurrently(lambda: elake.write(rows(spark, [("b", 2)], schema), uri))
    with pytest.raises(WriteConflict, match="version 1"):
        elake.write(rows(spark, [("z", 9)], schema), uri, mode="overwrite")
    assert table_rows(elake, uri) == [("a", 1), ("b", 2)]


def test_blind_append_commits_after_a_concurrent_overwrite(spark, elake, concurrently):
    elake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    concurrently(
        lambda: elake.overwrite_partition(rows(spark, [("z", 9.0, D1)]), "customer_features", snapshot_date=D1)
    )
    assert elake.write(rows(spark, [("c", 3.0, D1)]), "customer_features") == 2
    assert table_rows(elake, "customer_features") == [("c", 3.0, D1), ("z", 9.0, D1)]


def test_append_fails_when_a_concurrent_commit_changes_the_schema(spark, elake, concurrently, tmp_path):
    from deltalake import DeltaTable

    uri = str(tmp_path / "plain")
    schema = "k string, n int"
    elake.write(rows(spark, [("a", 1)], schema), uri)
    concurrently(lambda: DeltaTable(uri).alter.add_constraint({"n_positive": "n > 0"}))
    with pytest.raises(WriteConflict, match="changed the table's metadata"):
        elake.write(rows(spark, [("b", -2)], schema), uri)
    assert table_rows(elake, uri) == [("a", 1)]


def test_merge_plans_again_after_a_concurrent_merge_of_its_slice(spark, elake, concurrently, tmp_path):
    uri = str(tmp_path / "members")
    elake.write(
        rows(spark, [("A", "p1", 1), ("A", "p2", 1), ("B", "p9", 1)], MEMBERS), uri, partition_by=["audience_id"]
    )
    other = rows(spark, [("A", "p2", 2), ("A", "p3", 2)], MEMBERS)
    concurrently(lambda: elake.merge(other, uri, keys=["persona_id"], within={"audience_id": "A"}))
    mine = rows(spark, [("A", "p1", 3), ("A", "p4", 3)], MEMBERS)
    elake.merge(mine, uri, keys=["persona_id"], within={"audience_id": "A"})
    assert table_rows(elake, uri) == [
        ("A", "p1", 3),
        ("A", "p2", 2),
        ("A", "p3", 2),
        ("A", "p4", 3),
        ("B", "p9", 1),
    ]
    assert elake.version(uri) == 2


def test_merge_of_one_slice_ignores_a_concurrent_commit_to_another_slice(spark, elake, concurrently, tmp_path):
    uri = str(tmp_path / "members")
    elake.write(rows(spark, [("A", "p1", 1), ("B", "p9", 1)], MEMBERS), uri, partition_by=["audience_id"])
    concurrently(lambda: elake.write(rows(spark, [("B", "p8", 5)], MEMBERS), uri))
    elake.merge(rows(spark, [("A", "p1", 3)], MEMBERS), uri, keys=["persona_id"], within={"audience_id": "A"})
    assert elake.version(uri) == 2
    assert table_rows(elake, uri) == [("A", "p1", 3), ("B", "p8", 5), ("B", "p9", 1)]


def test_delete_plans_again_and_deletes_rows_a_concurrent_append_added(spark, elake, concurrently, tmp_path):
    uri = str(tmp_path / "plain")
    schema = "k string, n int"
    elake.write(rows(spark, [("a", 1), ("b", 2)], schema), uri)
    concurrently(lambda: elake.write(rows(spark, [("c", 1)], schema), uri))
    elake.delete_where(uri, F.col("n") == 1)
    assert table_rows(elake, uri) == [("b", 2)]


def test_two_creators_of_a_new_table_by_append_both_land(spark, elake, concurrently):
    concurrently(lambda: elake.write(rows(spark, [("a", 1.0, D1)]), "customer_features"))
    assert elake.write(rows(spark, [("b", 2.0, D1)]), "customer_features") == 1
    assert table_rows(elake, "customer_features") == [("a", 1.0, D1), ("b", 2.0, D1)]


def test_creating_overwrite_fails_when_another_writer_created_the_table_with_rows(spark, elake, concurrently):
    concurrently(lambda: elake.write(rows(spark, [("a", 1.0, D1)]), "customer_features"))
    with pytest.raises(WriteConflict, match="version 0"):
        elake.write(rows(spark, [("b", 2.0, D1)]), "customer_features", mode="overwrite")
    assert table_rows(elake, "customer_features") == [("a", 1.0, D1)]


def test_commit_runs_with_no_rebase_by_delta_rs(spark, elake, monkeypatch):
    """Every delta-rs commit is made with max_commit_retries=0: the check above is the only rebase."""
    from deltalake import DeltaTable

    seen = []
    original = DeltaTable.create_write_transaction

    def spy(self, actions, mode, schema, *args, **kwargs):
        seen.append(kwargs["commit_properties"].max_commit_retries)
        return original(self, actions, mode, schema, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "create_write_transaction", spy)
    elake.write(rows(spark, [("a", 1.0, D1)]), "customer_features")
    elake.write(rows(spark, [("b", 2.0, D1)]), "customer_features")
    elake.overwrite_partition(rows(spark, [("c", 3.0, D1)]), "customer_features", snapshot_date=D1)
    assert seen == [0, 0]


# ------------------------------------------------------------------ schema evolution


def test_new_column_and_rows_are_one_commit(spark, elake):
    uri = elake.uri("customer_features")
    elake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    extra = rows(spark, [("b", 2.0, D2)]).withColumn("new_col", F.lit(7))
    assert elake.write(extra, "customer_features", evolve_schema=True) == 1
    entry = log_entry(uri, 1)
    assert [k for a in entry for k in a if k != "commitInfo"] == ["add", "metaData"]
    assert sorted(tuple(r) for r in elake.read("customer_features").select("persona_id", "new_col").collect()) == [
        ("a", None),
        ("b", 7),
    ]


def test_failed_write_with_a_new_column_leaves_schema_and_version(spark, elake):
    elake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    bad = rows(spark, [("b", 2.0, D1)]).withColumn("new_col", F.raise_error(F.lit("task failed")))
    with pytest.raises(Exception, match="task failed"):
        elake.write(bad, "customer_features", evolve_schema=True)
    assert elake.version("customer_features") == 0
    assert elake.read("customer_features").columns == ["persona_id", "value", "snapshot_date"]


def test_append_with_a_new_column_to_an_unpartitioned_table_keeps_its_rows(spark, elake, tmp_path):
    uri = str(tmp_path / "plain")
    elake.write(rows(spark, [("a", 1)], "k string, n int"), uri)
    elake.write(rows(spark, [("b", 2, "x")], "k string, n int, tag string"), uri, evolve_schema=True)
    assert elake.version(uri) == 1
    assert table_rows(elake, uri) == [("a", 1, None), ("b", 2, "x")]


def test_partition_overwrite_with_a_new_column_replaces_only_its_partition(spark, elake):
    elake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2)]), "customer_features", mode="overwrite")
    day2 = rows(spark, [("c", 3.0, D2)]).withColumn("tag", F.lit("t"))
    elake.write(
        day2, "customer_features", mode="overwrite", replace_partitions={"snapshot_date": D2}, evolve_schema=True
    )
    assert elake.version("customer_features") == 1
    assert table_rows(elake, "customer_features") == [("a", 1.0, D1, None), ("c", 3.0, D2, "t")]


def test_merge_with_a_new_column_is_one_commit_and_keeps_other_slices(spark, elake, tmp_path):
    uri = str(tmp_path / "members")
    elake.write(
        rows(spark, [("A", "p1", 1), ("A", "p2", 1), ("B", "p9", 1)], MEMBERS), uri, partition_by=["audience_id"]
    )
    source = rows(spark, [("A", "p1", 5)], MEMBERS).withColumn("reason", F.lit("rule"))
    assert elake.merge(source, uri, keys=["persona_id"], within={"audience_id": "A"}, evolve_schema=True) == 1
    assert table_rows(elake, uri) == [("A", "p1", 5, "rule"), ("A", "p2", 1, None), ("B", "p9", 1, None)]


# ------------------------------------------------------------------ table rules


def test_check_constraint_violation_names_the_constraint_and_shows_the_row(spark, elake, tmp_path):
    from deltalake import DeltaTable

    uri = str(tmp_path / "checked")
    elake.write(rows(spark, [("a", 1)], "k string, n int"), uri)
    DeltaTable(uri).alter.add_constraint({"n_positive": "n > 0"})
    with pytest.raises(
        ConstraintViolation, match=r'CHECK constraint n_positive \(n > 0\) violated by row \{"k":"b","n":-1\}'
    ):
        elake.write(rows(spark, [("b", -1)], "k string, n int"), uri)
    with pytest.raises(ConstraintViolation, match="n_positive"):  # null is not true: Delta refuses it too
        elake.write(rows(spark, [("c", None)], "k string, n int"), uri)
    assert elake.version(uri) == 1
    elake.write(rows(spark, [("d", 4)], "k string, n int"), uri)
    assert table_rows(elake, uri) == [("a", 1), ("d", 4)]


def test_check_constraint_applies_to_merged_rows_and_write_rows(spark, elake, tmp_path):
    from deltalake import DeltaTable

    uri = str(tmp_path / "checked")
    elake.write(rows(spark, [("a", 1)], "k string, n int"), uri)
    DeltaTable(uri).alter.add_constraint({"n_positive": "n > 0"})
    with pytest.raises(ConstraintViolation, match="n_positive"):
        elake.merge(rows(spark, [("a", 0)], "k string, n int"), uri, keys=["k"])
    backend = elake.backend
    with pytest.raises(ConstraintViolation, match="n_positive"):
        backend.write_rows([("z", -5)], spark.createDataFrame([], "k string, n int").schema, uri)
    assert table_rows(elake, uri) == [("a", 1)]


def test_invariant_and_not_null_columns_are_enforced(spark, elake, tmp_path):
    from deltalake import DeltaTable, Field, Schema

    uri = str(tmp_path / "invariant")
    invariant = json.dumps({"expression": {"expression": "n < 100"}})
    DeltaTable.create(
        uri,
        schema=Schema(
            [Field("k", "string", nullable=False), Field("n", "integer", metadata={"delta.invariants": invariant})]
        ),
    )
    schema = "k string, n int"
    with pytest.raises(ConstraintViolation, match=r'invariant on n \(n < 100\) violated by row \{"k":"a","n":100\}'):
        elake.write(rows(spark, [("a", 100)], schema), uri)
    with pytest.raises(ConstraintViolation, match=r'NOT NULL column k violated by row \{"n":1\}'):
        elake.write(rows(spark, [(None, 1)], schema), uri)
    elake.write(rows(spark, [("b", 99)], schema), uri)
    assert table_rows(elake, uri) == [("b", 99)]
    assert DeltaTable(uri).schema().fields[0].nullable is False  # the write kept the table's schema


def _sql_table(spark, ddl):
    from segengine.session import delta_extension_enabled

    if not delta_extension_enabled(spark):
        pytest.skip("needs the Delta SQL extension (make setup fetches the jars)")
    spark.sql(ddl)


def test_generated_column_is_computed_when_missing_and_checked_when_given(spark, elake, tmp_path):
    uri = str(tmp_path / "generated")
    _sql_table(spark, f"CREATE TABLE delta.`{uri}` (k STRING, d DATE, y INT GENERATED ALWAYS AS (year(d))) USING delta")
    elake.write(spark.createDataFrame([("a", D1)], "k string, d date"), uri)
    elake.write(spark.createDataFrame([("b", D2, 2025)], "k string, d date, y int"), uri)
    with pytest.raises(
        ConstraintViolation,
        match=r'generated column y \(year\(d\)\) violated by row \{"k":"c","d":"2025-01-02","y":1999\}',
    ):
        elake.write(spark.createDataFrame([("c", D2, 1999)], "k string, d date, y int"), uri)
    assert table_rows(elake, uri) == [("a", D1, 2025), ("b", D2, 2025)]


def test_identity_columns_are_refused(spark, elake, tmp_path):
    uri = str(tmp_path / "identity")
    _sql_table(spark, f"CREATE TABLE delta.`{uri}` (id BIGINT GENERATED ALWAYS AS IDENTITY, k STRING) USING delta")
    with pytest.raises(TableFeatureUnsupported, match="identity"):
        elake.write(spark.createDataFrame([("a",)], "k string"), uri)


def test_in_commit_timestamps_are_refused_before_any_data_is_written(spark, elake, tmp_path):
    uri = tmp_path / "ict"
    _sql_table(
        spark,
        f"CREATE TABLE delta.`{uri}` (k STRING) USING delta TBLPROPERTIES ('delta.enableInCommitTimestamps'='true')",
    )
    with pytest.raises(TableFeatureUnsupported, match="inCommitTimestamp"):
        elake.write(spark.createDataFrame([("a",)], "k string"), str(uri))
    assert not (uri / "data").exists()


def test_append_only_table_takes_appends_and_refuses_removes(spark, elake, tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    uri = str(tmp_path / "append_only")
    write_deltalake(
        uri, pa.table({"k": ["a"], "n": pa.array([1], pa.int32())}), configuration={"delta.appendOnly": "true"}
    )
    schema = "k string, n int"
    elake.write(rows(spark, [("b", 2)], schema), uri)
    with pytest.raises(
        ConstraintViolation, match=r"append-only \(delta.appendOnly=true\); WRITE would remove [0-9]+ data file"
    ):
        elake.write(rows(spark, [("z", 9)], schema), uri, mode="overwrite")
    with pytest.raises(ConstraintViolation, match="append-only"):
        elake.delete_where(uri, F.col("k") == "a")
    with pytest.raises(ConstraintViolation, match="append-only"):
        elake.merge(rows(spark, [("a", 5)], schema), uri, keys=["k"])
    elake.merge(rows(spark, [("c", 3)], schema), uri, keys=["k"])  # inserts only: nothing removed
    assert table_rows(elake, uri) == [("a", 1), ("b", 2), ("c", 3)]


def test_change_data_feed_table_takes_appends_and_refuses_rewrites(spark, elake, tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    uri = str(tmp_path / "cdf")
    write_deltalake(
        uri,
        pa.table({"k": ["a"], "n": pa.array([1], pa.int32())}),
        configuration={"delta.enableChangeDataFeed": "true"},
    )
    schema = "k string, n int"
    elake.write(rows(spark, [("b", 2)], schema), uri)
    before = elake.version(uri)
    with pytest.raises(TableFeatureUnsupported, match="change data feed"):
        elake.merge(rows(spark, [("a", 5)], schema), uri, keys=["k"])
    with pytest.raises(TableFeatureUnsupported, match="_change_data"):
        elake.delete_where(uri, F.col("k") == "a")
    with pytest.raises(TableFeatureUnsupported, match="change data feed"):
        elake.write(rows(spark, [("z", 9)], schema), uri, mode="overwrite")
    assert elake.version(uri) == before
    assert table_rows(elake, uri) == [("a", 1), ("b", 2)]
