"""Exact results of every operator and condition kind on the hand-made views (see conftest)."""

from __future__ import annotations

import pytest

from segengine.errors import SegmentDefinitionError


def where(cond):
    return {"where": cond}


@pytest.mark.parametrize(
    ("attr", "op", "value", "expected"),
    [
        ("fit_score", "=", 80, ["p1"]),
        ("fit_score", "!=", 80, ["p2", "p3", "p5"]),  # null fit (p4) never matches a comparison
        ("fit_score", "<", 70, ["p2"]),
        ("fit_score", "<=", 70, ["p2", "p3"]),
        ("fit_score", ">", 70, ["p1", "p5"]),
        ("fit_score", ">=", 80, ["p1", "p5"]),
        ("fit_score", "between", [50, 70], ["p2", "p3"]),
        ("fit_score", "not_between", [50, 70], ["p1", "p5"]),
        ("fit_score", "in", [50, 90], ["p2", "p5"]),
        ("fit_score", "not_in", [50, 90], ["p1", "p3"]),
        ("fit_score", "is_null", None, ["p4"]),
        ("fit_score", "is_not_null", None, ["p1", "p2", "p3", "p5"]),
        ("monetary", "=", 120.5, ["p1", "p5"]),
        ("monetary", "<", 100, ["p2"]),
        ("plan", "=", "free", ["p1"]),
        ("plan", "in", ["free", "basic"], ["p1", "p3"]),
        ("plan", "not_in", ["free", "basic"], ["p2", "p5"]),
        ("plan", "contains", "e", ["p1", "p5"]),
        ("email", "contains", "'", ["p3"]),
        ("email", "not_contains", "x.com", ["p2", "p3"]),
        ("email", "starts_with", "o'", ["p3"]),
        ("email", "ends_with", ".org", ["p2"]),
        ("consent_email", "=", True, ["p1", "p3", "p5"]),
        ("consent_email", "!=", True, ["p2"]),
        ("last_purchase_date", "=", "2025-06-20", ["p1"]),
        ("last_purchase_date", "before", "2025-01-01", ["p2"]),
        ("last_purchase_date", "after", "2025-05-01", ["p1"]),
        ("last_purchase_date", "<", "2025-04-01", ["p2"]),
        ("last_purchase_date", "between", ["2025-04-01", "2025-06-01"], ["p5"]),
        ("last_purchase_date", "not_between", ["2025-04-01", "2025-06-01"], ["p1", "p2"]),
        ("last_purchase_date", "within_last_days", 90, ["p1", "p5"]),  # 2025-04-01 is exactly 90 days back
        ("last_purchase_date", "within_last_days", 89, ["p1"]),
        ("last_purchase_date", "more_than_days_ago", 90, ["p2"]),
        ("last_purchase_date", "more_than_days_ago", 89, ["p2", "p5"]),
        ("favourite_category", "in", ["Shoes"], ["p1", "p5"]),
        ("ai_segment", "in", ["At risk"], ["p2"]),
    ],
)
def test_attribute_operator_selects_exactly(select_ids, attr, op, value, expected):
    cond = {"attr": attr, "op": op} if value is None else {"attr": attr, "op": op, "value": value}
    assert select_ids(where(cond)) == expected


def test_not_of_a_comparison_includes_personas_with_null_attribute(select_ids):
    assert select_ids(where({"not": {"attr": "fit_score", "op": ">=", "value": 80}})) == ["p2", "p3", "p4"]


def test_any_is_a_union_and_all_an_intersection(select_ids):
    any_ = {"any": [{"attr": "plan", "op": "=", "value": "free"}, {"attr": "fit_score", "op": "<", "value": 60}]}
    assert select_ids(where(any_)) == ["p1", "p2"]
    all_ = {
        "all": [
            {"attr": "favourite_category", "op": "=", "value": "Shoes"},
            {"not": {"attr": "plan", "op": "=", "value": "free"}},
        ]
    }
    assert select_ids(where(all_)) == ["p5"]


def test_deeply_nested_conditions_evaluate_like_boolean_logic(select_ids):
    cond = {
        "not": {
            "any": [
                {
                    "all": [
                        {"attr": "fit_score", "op": ">", "value": 60},
                        {"not": {"attr": "plan", "op": "=", "value": "basic"}},
                    ]
                },
                {"attr": "fit_score", "op": "is_null"},
            ]
        }
    }
    # inner any: p1, p5 (fit>60 and not basic) and p4 (null fit) -> complement p2, p3
    assert select_ids(where(cond)) == ["p2", "p3"]


def test_persona_types_restrict_the_segment(select_ids):
    assert select_ids({"persona_types": ["customer"], "where": {"attr": "fit_score", "op": ">=", "value": 70}}) == [
        "p1",
        "p5",
    ]
    assert select_ids({"persona_types": ["prospect", "visitor"]}) == ["p3", "p4"]


def test_only_the_snapshot_partition_is_read(select_ids):
    assert "p9" not in select_ids({})
    assert select_ids({}) == ["p1", "p2", "p3", "p4", "p5"]


# ----------------------------------------------------------------- purchased


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"purchased": {"category": "Shoes"}}, ["p1", "p5"]),
        ({"purchased": {"category": "Shoes"}, "within_days": 30}, ["p1"]),
        ({"purchased": {"category": "Shoes", "within_days": 30}}, ["p1"]),  # options may sit inside too
        ({"purchased": {"category": "Shoes"}, "between": ["2025-04-01", "2025-04-30"]}, ["p5"]),
        # o3 (after the snapshot) is invisible: p1 has exactly two orders, spend 120.
        ({"purchased": {"category": "Shoes"}, "min_count": 2, "max_count": 2}, ["p1"]),
        ({"purchased": {"category": "Shoes"}, "min_spend": 120}, ["p1"]),
        ({"purchased": {"category": "Shoes"}, "min_spend": 500}, []),
        ({"purchased": {"brand": "Acme"}}, ["p2"]),
        ({"purchased": {"brand": "Acme"}, "min_spend": 1}, []),  # the refund nets p2's spend to 0
        ({"purchased": {"product": "P2"}, "within_days": 60}, []),  # a refund alone is not a purchase
        ({"purchased": "P1"}, ["p1", "p5"]),
        ({"purchased": {"product": ["P1", "P2"], "brand": "Nike"}}, ["p1", "p5"]),
        ({"purchased": {}}, ["p1", "p2", "p5"]),
        ({"not": {"purchased": {"category": "Shoes"}}}, ["p2", "p3", "p4"]),
    ],
)
def test_purchased_counts_orders_up_to_the_snapshot(select_ids, cond, expected):
    assert select_ids(where(cond)) == expected


# ----------------------------------------------------------------- did / did_not


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"did": "add_to_cart"}, ["p1", "p2"]),
        ({"did": "add_to_cart", "within_days": 30}, ["p1"]),
        ({"did": "add_to_cart", "within_days": 30, "min_count": 2}, ["p1"]),
        ({"did": "add_to_cart", "within_days": 30, "min_count": 3}, []),
        ({"did": {"event": "add_to_cart", "product": "P2"}}, ["p2"]),
        ({"did": {"event": ["add_to_cart", "email_click"]}, "between": ["2025-06-01", "2025-06-30"]}, ["p1", "p3"]),
        ({"did": "product_view"}, ["p4"]),  # a cookie-only event belongs to the visitor with that cookie
        ({"did": "email_click", "min_count": 2}, []),  # the second click is after the snapshot
        ({"did_not": "add_to_cart", "within_days": 30}, ["p2", "p3", "p4", "p5"]),
        ({"did_not": "add_to_cart", "min_count": 2}, ["p2", "p3", "p4", "p5"]),
    ],
)
def test_did_and_did_not_count_events_up_to_the_snapshot(select_ids, cond, expected):
    assert select_ids(where(cond)) == expected


# ----------------------------------------------------------------- model conditions


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"in_ai_segment": "Champions"}, ["p1", "p5"]),
        ({"in_ai_segment": ["Champions", "At risk"]}, ["p1", "p2", "p5"]),
        ({"clv_percentile": {"lowest": 10}}, ["p2"]),
        ({"clv_percentile": {"highest": 10}}, ["p1"]),
        ({"clv_percentile": {"highest": 50}}, ["p1", "p5"]),
        ({"recommended": {"product": "P3"}, "min_score": 70}, ["p1"]),  # p2's 95 is from another date
        ({"recommended": "P3"}, ["p1", "p2"]),
        ({"recommended": {"product": "P1"}, "recommender": "popular"}, ["p3"]),
        ({"recommended": {"category": "Shoes"}, "min_score": 65}, ["p1", "p2", "p3"]),
        ({"recommended": {"product": "P3"}, "max_rank": 1}, ["p1"]),
    ],
)
def test_model_conditions_select_exactly(select_ids, cond, expected):
    assert select_ids(where(cond)) == expected


# ----------------------------------------------------------------- segment crossing


SAVED = {
    "shoe_buyers": {"name": "Shoe buyers", "where": {"purchased": {"category": "Shoes"}}},
    "best_fit": {"name": "Best fit", "top": {"n": 1, "by": "fit_score"}},
    "loop_a": {"name": "loop a", "where": {"in_segment": "loop_b"}},
    "loop_b": {
        "name": "loop b",
        "where": {"all": [{"attr": "fit_score", "op": ">", "value": 1}, {"in_segment": "loop_a"}]},
    },
}


def resolve(name):
    from segengine.rules import parse_segment

    return parse_segment(SAVED[name])


def test_in_segment_and_not_in_segment_use_the_saved_definition(select_ids):
    assert select_ids(where({"in_segment": "shoe_buyers"}), resolver=resolve) == ["p1", "p5"]
    assert select_ids(where({"not_in_segment": "shoe_buyers"}), resolver=resolve) == ["p2", "p3", "p4"]
    assert select_ids(where({"not": {"in_segment": "shoe_buyers"}}), resolver=resolve) == ["p2", "p3", "p4"]


def test_in_segment_keeps_the_saved_segments_top_n(select_ids):
    assert select_ids(where({"in_segment": "best_fit"}), resolver=resolve) == ["p5"]


def test_segment_cycle_is_reported_with_the_chain():
    from segengine.rules import compile_segment

    with pytest.raises(
        SegmentDefinitionError,
        match=r"segment 'loop b': where\.all\[1\]\.in_segment: .*cycle: loop_a -> loop_b -> loop_a$",
    ):
        compile_segment({"name": "loop a", "where": {"in_segment": "loop_b"}}, "2025-06-30", resolver=resolve)


def test_segment_referring_to_itself_is_a_cycle():
    from segengine.rules import compile_segment

    with pytest.raises(SegmentDefinitionError, match="cycle: shoe_buyers -> shoe_buyers"):
        compile_segment({"name": "shoe buyers", "where": {"in_segment": "shoe_buyers"}}, "2025-06-30", resolver=resolve)


def test_unknown_segment_names_the_path():
    from segengine.rules import compile_segment

    doc = {
        "name": "x",
        "where": {"all": [{"attr": "fit_score", "op": ">", "value": 1}, {"not": {"in_segment": "nope"}}]},
    }
    with pytest.raises(SegmentDefinitionError, match=r"where\.all\[1\]\.not\.in_segment: unknown segment 'nope'"):
        compile_segment(doc, "2025-06-30", resolver=resolve)


def test_in_segment_without_resolver_is_an_error():
    from segengine.rules import compile_segment

    with pytest.raises(SegmentDefinitionError, match="needs a segment resolver"):
        compile_segment({"name": "x", "where": {"in_segment": "a"}}, "2025-06-30")


# ----------------------------------------------------------------- top N


def test_top_n_breaks_ties_on_the_smallest_persona_id(select_ids):
    # p1 and p5 tie on monetary 120.5
    assert select_ids({"top": {"n": 1, "by": "monetary", "order": "desc"}}, ordered=True) == ["p1"]
    assert select_ids({"top": {"n": 2, "by": "monetary"}}, ordered=True) == ["p1", "p5"]


def test_top_n_ascending_ranks_nulls_last(select_ids):
    assert select_ids({"top": {"n": 4, "by": "monetary", "order": "asc"}}, ordered=True) == ["p2", "p1", "p5", "p3"]


def test_top_n_applies_after_conditions_and_persona_types(select_ids):
    doc = {
        "persona_types": ["customer"],
        "where": {"attr": "plan", "op": "!=", "value": "enterprise"},
        "top": {"n": 1, "by": "fit_score", "order": "desc"},
    }
    assert select_ids(doc) == ["p1"]


@pytest.mark.parametrize(
    "cond",
    [
        {"did_not": "add_to_cart", "within_days": 30},
        {"not": {"purchased": {"category": "Shoes"}}},
        {"any": [{"attr": "fit_score", "op": ">", "value": 60}, {"not": {"did": "email_click"}}]},
        {"not_in_segment": "shoe_buyers"},
        {"any": [{"in_segment": "shoe_buyers"}, {"recommended": "P3"}]},
    ],
)
def test_subquery_conditions_plan_as_equi_joins_when_nothing_is_broadcast(spark, rule_views, cond):
    """No nested loop join, even when the tables are too large to broadcast (as at 1M personas).

    ``NOT (x IN (subquery))`` made Spark plan a null-aware join that fell back to a
    broadcast nested loop join; at 1M personas churn_risk's "did not add to cart" ran for
    more than ten minutes.
    """
    from segengine.rules import compile_segment

    from .conftest import SNAP

    sql = compile_segment({"name": "t", "where": cond}, SNAP, views=rule_views, resolver=resolve).sql
    previous = spark.conf.get("spark.sql.autoBroadcastJoinThreshold")
    spark.conf.set("spark.sql.autoBroadcastJoinThreshold", "-1")
    try:
        plan = spark.sql(sql)._jdf.queryExecution().executedPlan().toString()
    finally:
        spark.conf.set("spark.sql.autoBroadcastJoinThreshold", previous)
    assert "NestedLoopJoin" not in plan
    assert "SortMergeJoin" in plan
