"""Engagement and fit scores."""

from segengine.features import scores


def test_engagement_score_follows_the_documented_formula(rows):
    # e1: 0.30 * 2/8 + 0.15 * 8/60 = 0.095 -> 10 (half up)
    assert rows["e1"]["engagement_score"] == 10
    # c1: 0.15 * 1/6 + 0.15 * 1/3 + 0.25 * (1 - 10/365) = 0.318 -> 32
    assert rows["c1"]["engagement_score"] == 32
    assert rows["n1"]["engagement_score"] == 0


def test_engagement_score_is_capped_at_100(spark):
    df = spark.createDataFrame(
        [("max", 50, 500.0, 60, 30, 0)],
        "persona_id string, visits_30d int, time_on_site_30d double, email_opens_90d int, "
        "email_clicks_90d int, days_since_last_purchase int",
    )
    assert scores.with_engagement_score(df).first()["engagement_score"] == 100


def test_scores_are_between_0_and_100(feats):
    from pyspark.sql import functions as F

    out = feats.agg(
        F.min("engagement_score"), F.max("engagement_score"), F.min("fit_score"), F.max("fit_score")
    ).first()
    assert all(0 <= v <= 100 for v in out)


def _fit_frame(spark, rows):
    cols = ", ".join(f"{c} double" for c in scores.FIT_FEATURES)
    return spark.createDataFrame(rows, f"persona_id string, value_tier string, {cols}")


def test_fit_score_is_100_at_the_top_tier_profile_and_falls_with_distance(spark):
    top = (1000.0, 10.0, 100.0, 5.0, 8.0, 3.0)
    rows = [("t1", "top", *top), ("t2", "top", *top), ("m", "middle", 500.0, 5.0, 100.0, 3.0, 4.0, 1.0)]
    rows += [("far", None, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)]
    got = {r["persona_id"]: r["fit_score"] for r in scores.with_fit_score(_fit_frame(spark, rows)).collect()}
    assert got["t1"] == got["t2"] == 100
    assert 100 > got["m"] > got["far"] >= 0


def test_fit_score_is_0_without_a_top_tier(spark):
    rows = [("a", None, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0), ("b", "rest", 2.0, 2.0, 2.0, 2.0, 2.0, 2.0)]
    got = {r["persona_id"]: r["fit_score"] for r in scores.with_fit_score(_fit_frame(spark, rows)).collect()}
    assert got == {"a": 0, "b": 0}
