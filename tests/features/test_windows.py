import datetime as dt

from segengine.features.windows import add_months, cycle_start, last_days_start


def test_cycle_start_is_six_months_back_inclusive():
    assert cycle_start(dt.date(2025, 6, 30), 6) == dt.date(2024, 12, 30)


def test_add_months_clamps_to_month_end():
    assert add_months(dt.date(2025, 8, 31), -6) == dt.date(2025, 2, 28)
    assert add_months(dt.date(2024, 8, 31), -6) == dt.date(2024, 2, 29)
    assert add_months(dt.date(2025, 1, 15), -13) == dt.date(2023, 12, 15)


def test_last_30_days_window_includes_snapshot_day():
    assert last_days_start(dt.date(2025, 6, 30), 30) == dt.date(2025, 6, 1)


def _instants(spark, values):
    from pyspark.sql import functions as F

    return spark.createDataFrame([(v,) for v in values], "s string").select(F.to_timestamp("s").alias("ts"))


def test_local_date_in_utc_is_the_utc_day_whatever_the_session_zone(spark):
    """The UTC fast path: days since the epoch, floored (before 1970 too)."""
    from pyspark.sql import functions as F

    from segengine.features.windows import local_date

    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        df = _instants(
            spark,
            [
                "2025-06-30 23:59:59.999999",
                "2025-07-01 00:00:00",
                "1969-12-31 23:59:59.999999",
                "1970-01-01 00:00:00",
                "1900-03-01 12:00:00",
                "2199-12-31 23:59:59",
            ],
        ).localCheckpoint()
        expected = [
            dt.date(2025, 6, 30),
            dt.date(2025, 7, 1),
            dt.date(1969, 12, 31),
            dt.date(1970, 1, 1),
            dt.date(1900, 3, 1),
            dt.date(2199, 12, 31),
        ]
        for session in ("UTC", "America/New_York", "Asia/Kolkata"):
            spark.conf.set("spark.sql.session.timeZone", session)
            for tz in ("UTC", "Etc/UTC", "GMT"):
                got = [r.d for r in df.select(local_date(F.col("ts"), tz, session).alias("d")).collect()]
                assert got == expected, (session, tz)
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)


def test_local_date_in_utc_agrees_with_to_date_on_random_instants(spark):
    from pyspark.sql import functions as F

    from segengine.features.windows import local_date

    before = spark.conf.get("spark.sql.session.timeZone")
    spark.conf.set("spark.sql.session.timeZone", "UTC")
    try:
        # 20,000 instants from 1901 to 2100, in microseconds, plus exact midnights.
        micros = (F.rand(7) * 6.3e15 - 2.15e15).cast("long")
        midnights = (F.col("id") - 10_000) * F.lit(86_400_000_000)
        df = spark.range(20_000).select(F.explode(F.array(micros, midnights)).alias("us"))
        df = df.select(F.timestamp_micros("us").alias("ts"))
        diff = df.where(local_date(F.col("ts"), "UTC", "UTC") != F.to_date("ts"))
        assert diff.count() == 0
    finally:
        spark.conf.set("spark.sql.session.timeZone", before)
