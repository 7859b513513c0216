"""Value tier, behaviour state and lifecycle stage."""

import datetime as dt

from chispa import assert_df_equality

from segengine.features import tiers

from .conftest import SNAPSHOT


def test_value_tier_top_20_middle_30_rest_50_among_customers(spark):
    rows = [(f"c{i:02d}", "customer", float(i * 10), 0.0) for i in range(1, 11)]
    rows += [("p1", "prospect", 0.0, 0.0), ("v1", "visitor", 0.0, 0.0)]
    df = spark.createDataFrame(
        rows, "persona_id string, persona_type string, revenue_cycle double, revenue_lifetime double"
    )
    got = tiers.with_value_tier(df, 0.2, 0.3).select("persona_id", "value_tier")
    tier = {10: "top", 9: "top", 8: "middle", 7: "middle", 6: "middle"}
    expected = spark.createDataFrame(
        [(f"c{i:02d}", tier.get(i, "rest")) for i in range(1, 11)] + [("p1", None), ("v1", None)],
        "persona_id string, value_tier string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_value_tier_ties_are_broken_by_lifetime_revenue_then_id(spark):
    rows = [("a", "customer", 0.0, 5.0), ("b", "customer", 0.0, 9.0), ("c", "customer", 0.0, 5.0)]
    rows += [(f"z{i}", "customer", -1.0, 0.0) for i in range(7)]
    df = spark.createDataFrame(
        rows, "persona_id string, persona_type string, revenue_cycle double, revenue_lifetime double"
    )
    got = {r["persona_id"]: r["value_tier"] for r in tiers.with_value_tier(df, 0.2, 0.3).collect()}
    assert (got["b"], got["a"], got["c"]) == ("top", "top", "middle")


def test_value_tier_with_an_empty_top_tier_and_without_customers(spark):
    schema = "persona_id string, persona_type string, revenue_cycle double, revenue_lifetime double"
    two = spark.createDataFrame([("a", "customer", 5.0, 5.0), ("b", "customer", 1.0, 1.0)], schema)
    # round(2 * 0.2) = 0 top, round(2 * 0.5) = 1 up to middle
    got = {r["persona_id"]: r["value_tier"] for r in tiers.with_value_tier(two, 0.2, 0.3).collect()}
    assert got == {"a": "middle", "b": "rest"}
    none = spark.createDataFrame([("p", "prospect", 0.0, 0.0), ("v", "visitor", 0.0, 0.0)], schema)
    assert [r["value_tier"] for r in tiers.with_value_tier(none, 0.2, 0.3).collect()] == [None, None]


def test_behaviour_state_from_recent_vs_previous_activity(spark):
    d = SNAPSHOT
    rows = [
        ("steady", 3, 4, d, None),  # 3 >= 0.5 * 4
        ("growing", 5, 0, d, None),
        ("slowing", 1, 4, d, None),  # 1 < 0.5 * 4
        ("quiet", 0, 0, d - dt.timedelta(days=200), None),  # inactive 200 days <= 365
        ("gone", 0, 0, None, d - dt.timedelta(days=366)),  # inactive 366 days
        ("never", 0, 0, None, None),
    ]
    df = spark.createDataFrame(
        rows,
        "persona_id string, active_days_90d int, active_days_prev_90d int, last_purchase_date date, last_visit_date date",
    )
    got = tiers.with_behaviour_state(df, d, 0.5, 365).select("persona_id", "behaviour_state")
    expected = spark.createDataFrame(
        [
            ("steady", "active"),
            ("growing", "active"),
            ("slowing", "declining"),
            ("quiet", "declining"),
            ("gone", "dormant"),
            ("never", "dormant"),
        ],
        "persona_id string, behaviour_state string",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)


def test_lifecycle_stage_boundaries_are_inclusive(spark):
    d = SNAPSHOT
    ago = lambda n: d - dt.timedelta(days=n)  # noqa: E731
    rows = [
        ("n90", ago(90), None),
        ("e91", ago(91), None),
        ("e730", ago(730), None),
        ("l731", ago(731), None),
        ("bought_before_created", ago(10), ago(800)),
    ]
    df = spark.createDataFrame(rows, "persona_id string, created_date date, first_purchase_date date")
    got = {r["persona_id"]: r["lifecycle_stage"] for r in tiers.with_lifecycle_stage(df, d, 90, 730).collect()}
    assert got == {
        "n90": "new",
        "e91": "established",
        "e730": "established",
        "l731": "long_term",
        "bought_before_created": "long_term",
    }


def test_tiers_of_the_hand_written_personas(rows):
    # Two customers: round(0.4) = 0 in top, round(1.0) = 1 in middle.
    assert (rows["c1"]["value_tier"], rows["c2"]["value_tier"], rows["n1"]["value_tier"]) == ("middle", "rest", None)
    assert (rows["c1"]["behaviour_state"], rows["c2"]["behaviour_state"], rows["e1"]["behaviour_state"]) == (
        "active",
        "declining",
        "active",
    )
    assert (rows["c1"]["lifecycle_stage"], rows["e1"]["lifecycle_stage"], rows["n1"]["lifecycle_stage"]) == (
        "established",
        "new",
        "long_term",
    )
