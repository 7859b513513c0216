"""What only the embedded Delta backend (delta-rs log, Spark data) does.

The behaviour both backends share is tested on both in ``test_contract.py`` and
``test_interop.py``; these tests are about the embedded backend's own machinery:
the statistics it writes, ``write_rows`` without a Spark job, the table features it
refuses, and how it maps Spark's file paths back to the Delta log.
"""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from segengine.errors import TableFeatureUnsupported
from segengine.lake import Lake

D1 = dt.date(2025, 1, 1)
D2 = dt.date(2025, 1, 2)
SCHEMA = "persona_id string, value double, snapshot_date date"


@pytest.fixture
def lake(spark, config):
    """A Lake on the embedded backend, whatever SEGENGINE_TEST_BACKEND says."""
    return Lake.open(spark, config.replace(delta=config.delta.replace(backend="embedded")))


def rows(spark, data):
    return spark.createDataFrame(data, SCHEMA)


def sorted_rows(df):
    return sorted(tuple(r) for r in df.collect())


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
    from segengine.lake.embedded.read import _uri_spellings

    assert _uri_spellings("file:///tmp/a b") == ["file:///tmp/a b", "file:/tmp/a b"]
    assert _uri_spellings("file:/tmp/x") == ["file:/tmp/x", "file:///tmp/x"]
    assert _uri_spellings("s3a://bucket/key") == ["s3a://bucket/key"]
    assert _uri_spellings("/tmp/x") == ["/tmp/x"]


def test_a_row_whose_file_matches_no_log_entry_fails_instead_of_being_dropped(spark, lake, monkeypatch):
    import segengine.lake.embedded.read as embedded_read

    lake.write(rows(spark, [("a", 1.0, D1), ("b", 2.0, D2)]), "customer_features", mode="overwrite")
    monkeypatch.setattr(embedded_read, "_uri_spellings", lambda uri: ["not-" + uri])
    with pytest.raises(Exception, match="no Delta log entry for data file"):
        lake.read("customer_features").collect()
