"""Interoperability, proven by the other engine.

A table one backend writes through a history of partitioned writes, a partition
overwrite, merges (one that evolves the schema) and a delete is read at every one of
its versions by delta-spark, by the embedded backend and by plain ``deltalake``: the
same rows each time, and the rows each operation was meant to leave.
"""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from segengine.lake import Lake

D1 = dt.date(2025, 1, 1)
D2 = dt.date(2025, 1, 2)
SCHEMA = "persona_id string, value double, snapshot_date date"
KEYS = ["persona_id", "snapshot_date"]


def _lake(spark, config, backend):
    return Lake.open(spark, config.replace(delta=config.delta.replace(backend=backend)))


def _canonical(records):
    """Rows as sorted tuples of (column, value) pairs: comparable across readers."""
    return sorted(tuple(sorted(r.items())) for r in records)


def _expected(data, columns=("persona_id", "value", "snapshot_date")):
    return _canonical(dict(zip(columns, row)) for row in data)


def _write_a_history(spark, lake):
    """Write the history through ``lake``; return {version: the rows it should hold}."""
    table = "customer_features"
    df = lambda data: spark.createDataFrame(data, SCHEMA)  # noqa: E731
    expected = {}
    v = lake.write(df([("a", 1.0, D1), ("b", 2.0, D1)]), table, mode="overwrite")
    expected[v] = _expected([("a", 1.0, D1), ("b", 2.0, D1)])
    v = lake.write(df([("c", 3.0, D2)]), table, mode="append")
    expected[v] = _expected([("a", 1.0, D1), ("b", 2.0, D1), ("c", 3.0, D2)])
    v = lake.overwrite_partition(df([("b", 20.0, D1), ("d", None, D1)]), table, snapshot_date=D1)
    expected[v] = _expected([("b", 20.0, D1), ("c", 3.0, D2), ("d", None, D1)])
    v = lake.merge(df([("c", 30.0, D2), ("e", 5.0, D2)]), table, keys=KEYS)
    expected[v] = _expected([("b", 20.0, D1), ("c", 30.0, D2), ("d", None, D1), ("e", 5.0, D2)])
    tiered = df([("b", 21.0, D1), ("f", 6.0, D1)]).withColumn("tier", F.lit("gold"))
    v = lake.merge(tiered, table, keys=KEYS, evolve_schema=True)
    cols = ("persona_id", "value", "snapshot_date", "tier")
    expected[v] = _expected(
        [("b", 21.0, D1, "gold"), ("c", 30.0, D2, None), ("d", None, D1, None), ("e", 5.0, D2, None)]
        + [("f", 6.0, D1, "gold")],
        cols,
    )
    v = lake.delete_where(table, F.col("value").isNull() | (F.col("value") > 25.0))
    expected[v] = _expected([("b", 21.0, D1, "gold"), ("e", 5.0, D2, None), ("f", 6.0, D1, "gold")], cols)
    assert sorted(expected) == list(expected) and len(expected) == 6
    return lake.uri(table), expected


def _read_everywhere(spark, embedded, uri, version):
    """The rows at ``version`` as delta-spark, the embedded backend and plain deltalake read them."""
    from deltalake import DeltaTable

    by_spark = spark.read.format("delta").option("versionAsOf", version).load(uri)
    by_embedded = embedded.read(uri, version=version)
    plain = DeltaTable(uri)
    plain.load_as_version(version)
    return {
        "delta-spark": _canonical(r.asDict() for r in by_spark.collect()),
        "embedded": _canonical(r.asDict() for r in by_embedded.collect()),
        "deltalake": _canonical(plain.to_pyarrow_table().to_pylist()),
    }


@pytest.mark.parametrize("writer", ["embedded", "jvm"])
def test_every_version_reads_the_same_in_every_engine(spark, config, writer):
    writing = _lake(spark, config, writer)
    uri, expected = _write_a_history(spark, writing)
    embedded = _lake(spark, config, "embedded")
    latest = writing.version("customer_features")
    assert latest == max(expected)
    for version in range(latest + 1):
        seen = _read_everywhere(spark, embedded, uri, version)
        assert seen["delta-spark"] == seen["embedded"] == seen["deltalake"], f"version {version}"
        if version in expected:
            assert seen["delta-spark"] == expected[version], f"version {version}"
    # Partitioned as declared, whoever wrote it.
    from deltalake import DeltaTable

    assert DeltaTable(uri).metadata().partition_columns == ["snapshot_date"]


def test_a_table_written_by_plain_deltalake_is_read_by_both_backends(spark, config, tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    uri = str(tmp_path / "external")
    data = pa.table({"k": ["x", "y"], "d": pa.array([D1, D2], pa.date32()), "n": [1, 2]})
    write_deltalake(uri, data, partition_by=["d"])
    for backend in ["jvm", "embedded"]:
        got = sorted(tuple(r) for r in _lake(spark, config, backend).read(uri).select("k", "d", "n").collect())
        assert got == [("x", D1, 1), ("y", D2, 2)], backend
