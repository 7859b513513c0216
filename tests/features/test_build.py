"""compute_features writes one idempotent partition per snapshot date."""

import datetime as dt

from .conftest import SNAPSHOT


def _load_bronze(lake, bronze):
    for name, df in bronze.items():
        lake.write(df, name, mode="overwrite")


def test_rerun_replaces_the_partition_and_other_dates_are_kept(spark, lake, config, bronze):
    from pyspark.sql import functions as F

    from segengine.features import compute_features

    _load_bronze(lake, bronze)
    first = compute_features(spark, lake, config, SNAPSHOT)
    again = compute_features(spark, lake, config, SNAPSHOT)
    earlier = compute_features(spark, lake, config, dt.date(2025, 1, 31))
    assert first["rows"] == again["rows"] == 6
    assert first["persona_types"] == {"customer": 2, "prospect": 2, "visitor": 2}
    assert again["version"] > first["version"]
    table = lake.read("customer_features")
    per_date = {
        r["snapshot_date"]: r["n"] for r in table.groupBy("snapshot_date").agg(F.count("*").alias("n")).collect()
    }
    # On 2025-01-31 e1 and f1 (created later) do not exist yet.
    assert per_date == {SNAPSHOT: 6, dt.date(2025, 1, 31): earlier["rows"]}
    assert earlier["rows"] == 4
    old = {
        r["persona_id"]: r for r in lake.read("customer_features", partitions={"snapshot_date": "2025-01-31"}).collect()
    }
    # c1 on 2025-01-31: O3 (2024-06-01) and O2 (2025-01-15); the June orders are in its future.
    assert (old["c1"]["orders_lifetime"], old["c1"]["revenue_lifetime"], old["c1"]["recency_days"]) == (2, 50.0, 16)


TEXT = "persisted: the same text on every row"


def _cached_bytes(spark) -> int:
    """Bytes of the caches of this test's frame (its plan names TEXT), in memory or spilled to
    disk (with delta-spark's snapshot caches beside it a 2g test driver may spill it)."""
    infos = spark.sparkContext._jsc.sc().getRDDStorageInfo()
    return sum(info.memSize() + info.diskSize() for info in infos if TEXT in info.name())


def test_persisted_keeps_caches_deserialized_and_uncompressed_and_restores_the_setting(spark):
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from segengine.features.build import CACHE_COMPRESSED, persisted

    # One text repeated on every row: a compressed or serialized cache is a small fraction of it.
    df = spark.range(200_000).select(F.lit(TEXT).alias("s"), (F.col("id") % 3).alias("k"))
    spark.conf.set(CACHE_COMPRESSED, "true")
    with persisted([df]):
        assert spark.conf.get(CACHE_COMPRESSED) == "false"
        assert df.count() == 200_000
        assert df.storageLevel == StorageLevel.MEMORY_AND_DISK_DESER
        plain = _cached_bytes(spark)
    assert spark.conf.get(CACHE_COMPRESSED) == "true"
    df.persist()
    try:
        df.count()
        compressed = _cached_bytes(spark)
    finally:
        df.unpersist(blocking=True)
    assert plain > 4 * compressed > 0
