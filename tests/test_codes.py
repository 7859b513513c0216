"""Codes as names (segengine.codes)."""


def test_code_name_is_one_based_and_null_for_a_null_or_too_large_code(spark):
    from pyspark.sql import functions as F

    from segengine.codes import code_name

    df = spark.createDataFrame([(1,), (None,), (3,), (4,)], "code int")
    got = [r["name"] for r in df.select(code_name(("a", "b", "c"), F.col("code")).alias("name")).collect()]
    # element_at would give "c" for the null code (and fail on 4 under ANSI).
    assert got == ["a", None, "c", None]
