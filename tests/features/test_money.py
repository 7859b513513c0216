"""Money in micro-units: exact rounding."""


def test_to_micros_rounds_half_away_from_zero_exactly(spark):
    from pyspark.sql import functions as F

    from segengine.features.money import to_micros

    cases = [
        (19.99, 19_990_000),  # 19989999.999999996 after scaling
        (0.285, 285_000),
        (5e-7, 1),  # a tie: half to even would give 0
        (1.5e-6, 2),
        (2.5e-6, 3),  # a tie on an even unit
        (2.0000005, 2_000_001),
        (4e-7, 0),
        (-2.5e-6, -3),  # away from zero on the negative side too
        (-1.5e-6, -2),
        (-19.99, -19_990_000),
        (0.0, 0),
        (None, None),
    ]
    df = spark.createDataFrame(cases, "amount double, expected long")
    out = df.select(to_micros(F.col("amount")).alias("micros"), "expected").collect()
    assert [r["micros"] for r in out] == [r["expected"] for r in out]


def test_to_micros_agrees_with_sparks_round(spark):
    """Against the BigDecimal rounding of ``F.round`` on prices with up to 8 decimals and ties."""
    import random

    from pyspark.sql import functions as F

    from segengine.features.money import MICROS, to_micros

    rng = random.Random(7)
    amounts = [round(rng.uniform(-10_000, 10_000), rng.randint(0, 8)) for _ in range(20_000)]
    amounts += [(k + 0.5) / MICROS for k in range(-2_000, 2_000)]
    amounts += [k / 100 + 5e-7 for k in range(0, 100_000, 7)]
    df = spark.createDataFrame([(a,) for a in amounts], "amount double")
    reference = F.round(F.col("amount") * F.lit(float(MICROS))).cast("long")
    differ = df.where(~to_micros(F.col("amount")).eqNullSafe(reference))
    assert differ.limit(5).collect() == []
