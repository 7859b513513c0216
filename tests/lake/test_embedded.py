"""The embedded Delta backend: delta-rs log, Spark data."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from segengine.errors import SchemaMismatch, TableFeatureUnsupported, TableNotFound

D1 = dt.date(2025, 1, 1)
D2 = dt.date(2025, 1, 2)
SCHEMA = "persona_id string, value double, snapshot_date date"


def rows(spark, data):
    return spark.createDataFrame(data, SCHEMA)


def sorted_rows(df):
    return sorted(tuple(r) for r in df.collect())


def test_write_then_read_same_rows(spark, lake):
    df = rows(spark, [("a", 1.0, D1), ("b", 2.0, D1)])
    lake.write(df, "customer_features", mode="overwrite")
    assert_df_equality(lake.read("customer_features"), df, ignore_row_order=True, ignore_nullable=True)


def test_table_is_read_by_plain_deltalake_with_same_rows(spark, lake):
    from deltalake import DeltaTable

    df = rows(spark, [("a", 1.0, D1), ("b", None, D2), ("c", 3.5, D2)])
    lake.write(df, "customer_features", mode="overwrite")
    pdf = DeltaTable(lake.uri("customer_features")).to_pandas().sort_values("persona_id")
    assert list(pdf["persona_id"]) == ["a", "b", "c"]
    assert [None if v != v else v for v in pdf["value"]] == [1.0, None, 3.5]
    assert list(pdf["snapshot_date"].astype(str)) == ["2025-01-01", "2025-01-02", "2025-01-02"]


def test_table_written_by_deltalake_is_read_by_spark(spark, lake, tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    uri = str(tmp_path / "external")
    data = pa.table({"k": ["x", "y"], "d": pa.array([D1, D2], pa.date32()), "n": [1, 2]})
    write_deltalake(uri, data, partition_by=["d"])
    got = sorted_rows(lake.read(uri))
    assert got == [("x", D1, 1), ("y", D2, 2)]


def test_overwrite_one_partition_keeps_the_others(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2)]), "customer_features", mode="overwrite")
    lake.overwrite_partition(rows(spark, [("c", 9.0, D2)]), "customer_features", snapshot_date=D2)
    assert sorted_rows(lake.read("customer_features")) == [("a", 1.0, D1), ("c", 9.0, D2)]


def test_rerun_of_same_partition_overwrite_gives_same_table(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    day2 = rows(spark, [("b", 2.0, D2), ("c", 3.0, D2)])
    lake.overwrite_partition(day2, "customer_features", snapshot_date=D2)
    first = sorted_rows(lake.read("customer_features"))
    lake.overwrite_partition(day2, "customer_features", snapshot_date=D2)
    assert sorted_rows(lake.read("customer_features")) == first
    assert len(first) == 3


def test_partition_overwrite_refuses_rows_outside_the_partition(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    before = lake.version("customer_features")
    with pytest.raises(Exception, match="outside the partition"):
        lake.overwrite_partition(rows(spark, [("b", 2.0, D1)]), "customer_features", snapshot_date=D2)
    assert lake.version("customer_features") == before


def test_read_partition_prunes(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2)]), "customer_features", mode="overwrite")
    assert sorted_rows(lake.read("customer_features", partitions={"snapshot_date": D2})) == [("b", 2.0, D2)]


def test_time_travel_by_version_and_timestamp(spark, lake):
    import time

    v0 = lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    time.sleep(0.05)
    mid = dt.datetime.now(dt.UTC)
    time.sleep(0.05)
    lake.write(rows(spark, [("b", 2.0, D1)]), "customer_features", mode="append")
    assert sorted_rows(lake.read("customer_features", version=v0)) == [("a", 1.0, D1)]
    assert sorted_rows(lake.read("customer_features", timestamp=mid)) == [("a", 1.0, D1)]
    assert len(lake.read("customer_features").collect()) == 2
    with pytest.raises(TableNotFound):
        lake.read("customer_features", version=99)


def test_failure_during_write_leaves_previous_version(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    before = lake.version("customer_features")
    bad = rows(spark, [("b", 2.0, D1), ("boom", 3.0, D1)]).withColumn(
        "value", F.when(F.col("persona_id") == "boom", F.raise_error(F.lit("task failed"))).otherwise(F.col("value"))
    )
    with pytest.raises(Exception, match="task failed"):
        lake.write(bad, "customer_features", mode="overwrite")
    assert lake.version("customer_features") == before
    assert sorted_rows(lake.read("customer_features")) == [("a", 1.0, D1)]


def test_failure_before_commit_leaves_previous_version(spark, lake, monkeypatch):
    from segengine.lake.embedded import EmbeddedBackend

    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    before = lake.version("customer_features")

    def crash(*args, **kwargs):
        raise RuntimeError("driver died before commit")

    monkeypatch.setattr(EmbeddedBackend, "_commit", crash)
    with pytest.raises(RuntimeError):
        lake.write(rows(spark, [("z", 9.0, D1)]), "customer_features", mode="overwrite")
    monkeypatch.undo()
    assert lake.version("customer_features") == before
    assert sorted_rows(lake.read("customer_features")) == [("a", 1.0, D1)]


def test_schema_mismatch_is_a_clear_error(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    extra = rows(spark, [("b", 2.0, D1)]).withColumn("new_col", F.lit(1))
    with pytest.raises(SchemaMismatch, match="new_col"):
        lake.write(extra, "customer_features")
    wrong = spark.createDataFrame([("b", "x", D1)], "persona_id string, value string, snapshot_date date")
    with pytest.raises(SchemaMismatch, match="value: table has double, data has string"):
        lake.write(wrong, "customer_features")


def test_schema_evolution_when_asked(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    extra = rows(spark, [("b", 2.0, D1)]).withColumn("new_col", F.lit(7))
    lake.write(extra, "customer_features", evolve_schema=True)
    got = sorted_rows(lake.read("customer_features").select("persona_id", "new_col"))
    assert got == [("a", None), ("b", 7)]


def test_merge_upserts_by_key(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D1), ("c", 3.0, D2)]), "customer_features", mode="overwrite")
    lake.merge(
        rows(spark, [("b", 20.0, D1), ("d", 4.0, D2)]), "customer_features", keys=["persona_id", "snapshot_date"]
    )
    assert sorted_rows(lake.read("customer_features")) == [
        ("a", 1.0, D1),
        ("b", 20.0, D1),
        ("c", 3.0, D2),
        ("d", 4.0, D2),
    ]


def test_merge_with_delete_missing_in_slice(spark, lake, tmp_path):
    uri = str(tmp_path / "members")
    df = spark.createDataFrame([("A", "p1"), ("A", "p2"), ("B", "p1")], "audience_id string, persona_id string")
    lake.write(df, uri, mode="overwrite")
    new = spark.createDataFrame([("A", "p2"), ("A", "p3")], "audience_id string, persona_id string")
    lake.merge(new, uri, keys=["audience_id", "persona_id"], delete_missing_in={"audience_id": "A"})
    assert sorted_rows(lake.read(uri)) == [("A", "p2"), ("A", "p3"), ("B", "p1")]


def test_merge_within_one_partition_never_opens_the_other_partitions(spark, lake):
    from pathlib import Path

    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D1), ("c", 3.0, D2)]), "customer_features", mode="overwrite")
    # Damage D2's data file: a merge that read it would fail.
    (d2_file,) = [f for f in lake.files("customer_features") if f["partition"]["snapshot_date"] == D2.isoformat()]
    Path(lake.uri("customer_features"), d2_file["path"]).write_bytes(b"not parquet")
    lake.merge(
        rows(spark, [("b", 20.0, D1), ("d", 4.0, D1)]),
        "customer_features",
        keys=["persona_id", "snapshot_date"],
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
        Exception, match=r"""source row \{"persona_id":"z".*outside the slice \{'snapshot_date': \['2025-01-01'\]\}"""
    ):
        lake.merge(
            rows(spark, [("a", 2.0, D1), ("z", 9.0, D2)]),
            "customer_features",
            keys=["persona_id", "snapshot_date"],
            within={"snapshot_date": D1},
        )
    with pytest.raises(Exception, match="within names non-partition column"):
        lake.merge(rows(spark, [("a", 2.0, D1)]), "customer_features", keys=["persona_id"], within={"value": 1.0})
    assert lake.version("customer_features") == version


@pytest.mark.parametrize("target_exists", [True, False])
def test_merge_evaluates_its_source_once(spark, lake, tmp_path, target_exists):
    # An audience refresh merges a plan over the order lines: evaluating it once for
    # the key probe and again for the written files doubled the refresh time.
    uri = str(tmp_path / "members")
    if target_exists:
        lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D1)]), uri, mode="overwrite")
    evaluated = spark.sparkContext.accumulator(0)

    @F.udf("string")
    def tick(persona_id):
        evaluated.add(1)
        return persona_id

    source = rows(spark, [("b", 20.0, D1), ("c", 3.0, D1), ("d", 4.0, D1)]).withColumn("persona_id", tick("persona_id"))
    lake.merge(source, uri, keys=["persona_id", "snapshot_date"])
    assert evaluated.value == 3
    expected = [("b", 20.0, D1), ("c", 3.0, D1), ("d", 4.0, D1)]
    assert sorted_rows(lake.read(uri)) == ([("a", 1.0, D1)] if target_exists else []) + expected


def test_merge_rejects_duplicate_source_keys(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    with pytest.raises(Exception, match="more than one row"):
        lake.merge(rows(spark, [("a", 1.0, D1), ("a", 2.0, D1)]), "customer_features", keys=["persona_id"])


def test_merge_of_new_keys_only_keeps_every_existing_file(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2)]), "customer_features", mode="overwrite")
    before = {f["path"] for f in lake.files("customer_features")}
    lake.merge(rows(spark, [("c", 3.0, D1)]), "customer_features", keys=["persona_id", "snapshot_date"])
    after = {f["path"] for f in lake.files("customer_features")}
    assert before < after and len(after - before) >= 1
    assert sorted_rows(lake.read("customer_features")) == [("a", 1.0, D1), ("b", 2.0, D2), ("c", 3.0, D1)]


def test_merge_names_the_repeated_key_of_the_source(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    with pytest.raises(Exception, match="more than one row for key {'persona_id': 'b'}"):
        lake.merge(
            rows(spark, [("a", 5.0, D1), ("b", 1.0, D1), ("b", 2.0, D1)]), "customer_features", keys=["persona_id"]
        )
    assert sorted_rows(lake.read("customer_features")) == [("a", 1.0, D1)]


def test_history_lists_commits_newest_first(spark, lake):
    lake.write(rows(spark, [("a", 1.0, D1)]), "customer_features", mode="overwrite")
    lake.overwrite_partition(rows(spark, [("a", 2.0, D1)]), "customer_features", snapshot_date=D1)
    hist = lake.history("customer_features")
    assert hist[0]["segengine.operation"] == "REPLACE PARTITION"
    assert [h["version"] for h in hist] == sorted((h["version"] for h in hist), reverse=True)


def test_missing_table_is_a_clear_error(lake):
    with pytest.raises(TableNotFound, match="no Delta table"):
        lake.read("customer_features")


def test_deletion_vectors_are_refused(spark, lake, tmp_path):
    import pyarrow as pa
    from deltalake import DeltaTable, write_deltalake

    uri = str(tmp_path / "dv")
    write_deltalake(uri, pa.table({"k": [1, 2]}), configuration={"delta.enableDeletionVectors": "true"})
    proto = DeltaTable(uri).protocol()
    assert "deletionVectors" in (proto.reader_features or [])
    with pytest.raises(TableFeatureUnsupported, match="deletionVectors"):
        lake.read(uri)


def test_column_mapping_is_refused(spark, lake, tmp_path):
    """A table switched to column-mapping mode 'name' (as Spark's Delta does) is refused."""
    import json

    import pyarrow as pa
    from deltalake import write_deltalake

    uri = str(tmp_path / "cm")
    write_deltalake(uri, pa.table({"k": [1]}))
    log0 = [json.loads(line) for line in open(f"{uri}/_delta_log/00000000000000000000.json")]
    meta = next(a["metaData"] for a in log0 if "metaData" in a)
    schema = json.loads(meta["schemaString"])
    for i, field in enumerate(schema["fields"]):
        field["metadata"] = {"delta.columnMapping.id": i + 1, "delta.columnMapping.physicalName": f"col-{i}"}
    meta["schemaString"] = json.dumps(schema)
    meta["configuration"] = {"delta.columnMapping.mode": "name", "delta.columnMapping.maxColumnId": "1"}
    with open(f"{uri}/_delta_log/00000000000000000001.json", "w") as fh:
        fh.write(json.dumps({"protocol": {"minReaderVersion": 2, "minWriterVersion": 5}}) + "\n")
        fh.write(json.dumps({"metaData": meta}) + "\n")
        fh.write(json.dumps({"commitInfo": {"timestamp": 1, "operation": "SET TBLPROPERTIES"}}) + "\n")
    with pytest.raises(TableFeatureUnsupported, match="column mapping"):
        lake.read(uri)
    with pytest.raises(TableFeatureUnsupported, match="column mapping"):
        lake.write(spark.createDataFrame([(2,)], "k long"), uri)


LINES = "order_id string, order_ts timestamp, amount double, day date"


def _lines(spark, data):
    return spark.createDataFrame(data, LINES).coalesce(1)


def test_written_files_carry_min_max_statistics_of_dates_timestamps_and_numbers(spark, lake, tmp_path):
    uri = str(tmp_path / "lines")
    lake.write(
        _lines(
            spark,
            [
                ("a", dt.datetime(2025, 1, 1, 10, 0, 0, 123456), 5.5, D1),
                ("b", dt.datetime(2025, 1, 2, 9), None, D2),
            ],
        ),
        uri,
    )
    (info,) = lake.files(uri)
    assert info["min"]["order_ts"] == dt.datetime(2025, 1, 1, 10, 0, 0, 123456, tzinfo=dt.UTC)
    assert info["max"]["order_ts"] == dt.datetime(2025, 1, 2, 9, tzinfo=dt.UTC)
    assert (info["min"]["amount"], info["max"]["amount"]) == (5.5, 5.5)
    assert (info["min"]["day"], info["max"]["day"]) == (D1, D2)
    assert info["min"].get("order_id") is None  # strings carry no bounds


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
    # Bounds are inclusive; a bound inside one file keeps that file and filters its rows.
    edge = {"order_ts": (dt.datetime(2025, 1, 1, 23, tzinfo=dt.UTC), dt.datetime(2025, 1, 2, 0, tzinfo=dt.UTC))}
    assert len(lake.files(uri, where=edge)) == 2
    assert sorted(r["order_id"] for r in lake.read(uri, where=edge).collect()) == ["b", "c"]
    assert lake.files(uri, where={"amount": (10.0, None)}) == []
    assert lake.read(uri, where={"amount": (10.0, None)}).count() == 0


def test_partition_lists_and_ranges_prune_partitioned_tables(spark, lake, tmp_path):
    uri = str(tmp_path / "daily")
    d3 = dt.date(2025, 1, 3)
    lake.write(
        _lines(
            spark,
            [
                ("a", dt.datetime(2025, 1, 1), 1.0, D1),
                ("b", dt.datetime(2025, 1, 2), 2.0, D2),
                ("c", dt.datetime(2025, 1, 3), 3.0, d3),
            ],
        ),
        uri,
        partition_by=["day"],
    )
    assert {f["partition"]["day"] for f in lake.files(uri, partitions={"day": [D1, d3]})} == {
        "2025-01-01",
        "2025-01-03",
    }
    assert sorted(r["order_id"] for r in lake.read(uri, partitions={"day": [D1, d3]}).collect()) == ["a", "c"]
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


ROWS_SCHEMA = "run_id string, step string, day date, at timestamp, rows long, seconds double, ok boolean"
ROWS = [
    ("r1", "features", D1, dt.datetime(2025, 1, 1, 10, 0, 0, 123456), 7, 1.5, True),
    ("r1", "insights", D2, None, None, None, False),
]


def test_write_rows_commits_driver_rows_without_a_spark_job(spark, lake, tmp_path):
    from deltalake import DeltaTable

    uri = str(tmp_path / "runs")
    tracker = spark.sparkContext.statusTracker()
    spark.sparkContext.setJobGroup("write-rows", "write_rows")
    try:
        assert lake.write_rows([], ROWS_SCHEMA, uri, operation="CREATE TABLE") == 0
        assert lake.write_rows(ROWS, ROWS_SCHEMA, uri) == 1
        assert tracker.getJobIdsForGroup("write-rows") == []
    finally:
        spark.sparkContext.setJobGroup("", "")
    expected = spark.createDataFrame(ROWS, ROWS_SCHEMA)
    assert_df_equality(lake.read(uri), expected, ignore_row_order=True, ignore_nullable=True)
    # The same rows as createDataFrame + write would give, and plain deltalake reads them.
    assert DeltaTable(uri).to_pyarrow_table().num_rows == 2
    (info,) = lake.files(uri)
    assert info["min"]["at"] == dt.datetime(2025, 1, 1, 10, 0, 0, 123456, tzinfo=dt.UTC)
    assert lake.history(uri)[0]["operation"] == "WRITE"


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


def test_write_rows_on_a_backend_without_it_is_a_dataframe_write(spark, config):
    from segengine.lake import Lake

    class Recorder:
        def write(self, df, uri, **kwargs):
            self.call = (sorted(tuple(r) for r in df.collect()), uri, kwargs)
            return 3

    backend = Recorder()
    lake = Lake(spark, config, backend)
    assert (
        lake.write_rows([("a1", "p1", D1)], "audience_id string, persona_id string, since date", "audience_members")
        == 3
    )
    got_rows, uri, kwargs = backend.call
    assert got_rows == [("a1", "p1", D1)]
    assert uri == lake.uri("audience_members")
    assert kwargs == {"mode": "append", "partition_by": ("audience_id",), "operation": None, "metadata": None}


def test_read_rows_gives_what_collect_gives_at_any_version(spark, lake, tmp_path):
    uri = str(tmp_path / "runs")
    lake.write_rows(ROWS[:1], ROWS_SCHEMA, uri)
    lake.write(spark.createDataFrame(ROWS[1:], ROWS_SCHEMA), uri)
    collected = sorted((r.asDict() for r in lake.read(uri).collect()), key=lambda r: r["step"])
    assert sorted(lake.read_rows(uri), key=lambda r: r["step"]) == collected
    assert collected[0]["at"] == dt.datetime(2025, 1, 1, 10, 0, 0, 123456)  # naive, as collect() gives
    assert lake.read_rows(uri, version=0) == collected[:1]


def test_a_write_returns_its_own_version_when_another_commit_lands_right_after_it(spark, lake, monkeypatch, tmp_path):
    """The version a write returns is its commit's, not the latest one.

    The audience registry checks the version before its commit for a name race: given
    a later writer's version, a creation saw its own row there and removed itself.
    """
    from deltalake import DeltaTable

    uri = str(tmp_path / "t")
    schema = "persona_id string, value double"
    lake.write_rows([("a", 1.0)], schema, uri, mode="overwrite")
    original = DeltaTable.create_write_transaction
    fired = []

    def commit_then_another_writer(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if not fired:
            fired.append(True)
            other = DeltaTable(self.table_uri)
            original(other, [], mode="append", schema=other.schema(), partition_by=None)
        return result

    monkeypatch.setattr(DeltaTable, "create_write_transaction", commit_then_another_writer)
    ours = lake.write_rows([("b", 2.0)], schema, uri)
    assert fired and lake.version(uri) == 2
    assert ours == 1


@pytest.mark.parametrize("writer", ["deltalake", "segengine"])
def test_partition_values_with_spaces_percent_unicode_and_nulls_are_read_back(spark, lake, tmp_path, writer):
    import pyarrow as pa
    from deltalake import write_deltalake

    values = ["plain", "with space", "50%", "a=b", "zürich", None]
    data = [(f"p{i}", i, v) for i, v in enumerate(values)]
    uri = str(tmp_path / "odd")
    if writer == "deltalake":
        table = pa.table({"persona_id": [r[0] for r in data], "n": [r[1] for r in data], "k": [r[2] for r in data]})
        write_deltalake(uri, table, partition_by=["k"])
    else:
        df = spark.createDataFrame(data, "persona_id string, n long, k string")
        lake.backend.write(df, uri, mode="overwrite", partition_by=("k",))
    got = lake.backend.read(uri, with_file_path=True).collect()
    assert sorted((r.persona_id, r.n, r.k) for r in got) == sorted(data)
    by_file = {r.persona_id: r["__segengine_file"] for r in got}
    logged = {f["path"] for f in lake.files(uri)}
    assert set(by_file.values()) == logged and len(logged) == len(values)
    # Any Delta reader finds the files and their values (the log's paths are URIs, encoded once).
    from deltalake import DeltaTable

    plain = DeltaTable(uri).to_pyarrow_table().to_pylist()
    assert sorted((r["persona_id"], r["n"], r["k"]) for r in plain) == sorted(data)


def test_uri_spellings_cover_both_forms_of_an_empty_authority():
    from segengine.lake.embedded import _uri_spellings

    assert _uri_spellings("file:///tmp/a b") == ["file:///tmp/a b", "file:/tmp/a b"]
    assert _uri_spellings("file:/tmp/x") == ["file:/tmp/x", "file:///tmp/x"]
    assert _uri_spellings("s3a://bucket/key") == ["s3a://bucket/key"]
    assert _uri_spellings("/tmp/x") == ["/tmp/x"]


def test_a_row_whose_file_matches_no_log_entry_fails_instead_of_being_dropped(spark, lake, monkeypatch):
    import segengine.lake.embedded as embedded

    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2)]), "customer_features", mode="overwrite")
    monkeypatch.setattr(embedded, "_uri_spellings", lambda uri: ["not-" + uri])
    with pytest.raises(Exception, match="no Delta log entry for data file"):
        lake.read("customer_features").collect()
