"""Support, satisfaction, expansion, campaign engagement, scoring matrix and boundary review.

Tiny hand-made worlds; every expected figure is worked out in the comments.
"""

from __future__ import annotations

import datetime as dt

import pytest

from segengine.insights import engagement as E
from segengine.insights import metrics as M
from segengine.insights.boundaries import BOUNDARY_SCHEMA, Cut, boundary_review, numeric_cuts
from segengine.insights.report import matrix_outline, render_html

from .conftest import D2, FEATURE_TYPES, customer

TYPES = {
    **FEATURE_TYPES,
    "tickets_90d": "int",
    "last_csat": "int",
    "nps_category": "string",
    "expansion_revenue": "double",
    "revenue_lifetime": "double",
}
SUPPORT = (
    "size",
    "tickets_90d",
    "tickets_per_100",
    "csat_avg",
    "csat_responses",
    "nps",
    "nps_responses",
    "expansion_revenue",
    "expansion_base",
    "expanding_customers",
    "median_fit_score",
    "median_engagement_score",
)


def frame(spark, rows, types=TYPES):
    schema = ", ".join(f"{k} {v}" for k, v in types.items())
    return spark.createDataFrame([tuple(r.get(k) for k in types) for r in rows], schema)


def world(spark):
    """Four customers: a, b in the top tier; c, d in the rest."""
    return frame(
        spark,
        [
            customer("a", "S", tier="top", revenue=100.0, tickets_90d=2, last_csat=5, nps_category="promoter",
                     expansion_revenue=30.0, fit_score=90.0, engagement_score=80.0),
            customer("b", "S", tier="top", revenue=50.0, tickets_90d=0, last_csat=3, nps_category="detractor",
                     expansion_revenue=-10.0, fit_score=70.0, engagement_score=20.0),
            customer("c", "S", tier="rest", revenue=20.0, tickets_90d=1, nps_category="promoter",
                     fit_score=10.0, engagement_score=50.0),
            customer("d", "S", tier="rest", revenue=5.0, tickets_90d=0, expansion_revenue=5.0,
                     fit_score=30.0, engagement_score=100.0),
        ],
    )  # fmt: skip


def test_support_satisfaction_expansion_and_score_medians_per_group(spark):
    groups = M.explode_groups(world(spark), ["value_tier"])
    got = {
        r["segment"]: tuple(r[c] for c in SUPPORT)
        for r in M.aggregate_groups(groups, 4, sources=("support_tickets", "survey_responses")).collect()
    }
    assert got == {
        # top: tickets 2+0 over 2 members; CSAT (5+3)/2; NPS 1 promoter - 1 detractor of 2 = 0;
        # expansion 30-10 over a and b, one of them grew; medians of (90, 70) and (80, 20).
        "top": (2, 2, 100.0, 4.0, 2, 0.0, 2, 20.0, 2, 1, 80.0, 50.0),
        # rest: 1 ticket over 2 members; nobody answered CSAT (null average, 0 answers); NPS one
        # promoter of 1 = 100; expansion only d's 5.
        "rest": (2, 1, 50.0, None, 0, 100.0, 1, 5.0, 1, 1, 20.0, 75.0),
        # all: NPS (2 promoters - 1 detractor) / 3 = 33.3.
        "all": (4, 3, 75.0, 4.0, 2, pytest.approx(100.0 / 3), 3, 25.0, 3, 2, 50.0, 65.0),
    }


def test_support_and_satisfaction_metrics_are_null_without_their_tables(spark):
    """No support_tickets / survey_responses: null, not 0 (expansion comes from orders and stays)."""
    groups = M.explode_groups(world(spark), ["value_tier"])
    nulls = M.SOURCE_METRICS["support_tickets"] + M.SOURCE_METRICS["survey_responses"]
    for r in M.aggregate_groups(groups, 4, sources=()).collect():
        assert {c: r[c] for c in nulls} == dict.fromkeys(nulls), r["segment"]
        assert r["expansion_revenue"] is not None
    # A snapshot written before the attributes existed: every new metric is null.
    old = M.explode_groups(frame(spark, [customer("a", "S")], FEATURE_TYPES), ["value_tier"])
    row = M.aggregate_groups(old, 1).where("dimension = 'all'").first()
    assert [row[c] for c in ("tickets_90d", "csat_avg", "nps", "expansion_revenue")] == [None] * 4


def _ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


def test_campaign_touches_attribute_each_order_to_the_latest_click_and_sum_per_group(spark):
    from pyspark.sql import functions as F

    from segengine.contract import spark_schema
    from segengine.features.support import campaign_features, campaign_touches

    day = dt.date(2025, 6, 30)  # the 30 days: 06-01 .. 06-30; clicks from 05-25 count for conversions
    raw = [f for f in spark_schema("events").fields if f.name != "event_date"]

    def ev(eid, pid, when, kind, campaign):
        return (eid, pid, None, _ts(when), kind, None, None, None, campaign)

    from pyspark.sql.types import StructType

    events = spark.createDataFrame(
        [
            ev("E1", "a", "2025-06-20 08:00:00", "email_sent", "CMP-A"),
            ev("E2", "a", "2025-06-20 09:00:00", "email_open", "CMP-A"),
            ev("E3", "a", "2025-06-20 10:00:00", "email_click", "CMP-A"),
            ev("E4", "a", "2025-06-21 10:00:00", "email_click", "CMP-C"),  # the latest click before O1
            ev("E5", "b", "2025-05-28 10:00:00", "email_click", "CMP-B"),  # before the 30 days, 5 days before O2
            ev("E6", "b", "2025-06-25 10:00:00", "email_sent", "CMP-A"),
            ev("E7", "b", "2025-06-25 11:00:00", "email_click", "CMP-A"),
            ev("E8", "c", "2025-06-26 10:00:00", "email_sent", "CMP-A"),
            ev("E9", "a", "2025-06-29 10:00:00", "email_click", None),  # no campaign
            ev("E10", "c", "2025-07-01 10:00:00", "email_click", "CMP-A"),  # after the snapshot
        ],
        StructType(raw),
    ).withColumn("event_date", F.to_date("event_ts"))
    lines = spark.createDataFrame(
        [
            ("O1", 1, "a", _ts("2025-06-22 10:00:00"), "web", "P1", 1, 10.0),
            ("O2", 1, "b", _ts("2025-06-02 10:00:00"), "web", "P1", 1, 10.0),
            ("O3", 1, "b", _ts("2025-07-05 10:00:00"), "web", "P1", 1, 10.0),  # after the snapshot
            ("R1", 1, "a", _ts("2025-06-29 12:00:00"), "web", "P1", -1, 10.0),  # a refund is no conversion
            ("O5", 1, "c", _ts("2025-06-27 10:00:00"), "web", "P1", 1, 10.0),  # no click before it
        ],
        spark_schema("order_lines"),
    )
    touches = campaign_touches(events, lines, day, "UTC", "UTC").cache()
    got = {(r["persona_id"], r["campaign_id"]): tuple(r)[2:] for r in touches.collect()}
    # (sends, opens, clicks, conversions)
    assert got == {
        ("a", "CMP-A"): (1, 1, 1, 0),
        ("a", "CMP-C"): (0, 0, 1, 1),
        ("b", "CMP-B"): (0, 0, 0, 1),
        ("b", "CMP-A"): (1, 0, 1, 0),
        ("c", "CMP-A"): (1, 0, 0, 0),
    }
    per_persona = {r["persona_id"]: (r[1], r[2]) for r in campaign_features(touches).collect()}
    assert per_persona == {"a": (2, 1), "b": (1, 1), "c": (0, 0)}

    groups = spark.createDataFrame(
        [("a", "all", "all"), ("b", "all", "all"), ("c", "all", "all"), ("a", "value_tier", "top"),
         ("b", "value_tier", "top")],
        "persona_id string, dimension string, segment string",
    )  # fmt: skip
    rows = {
        (r["segment"], r["campaign_id"]): tuple(r)[4:] for r in E.campaign_engagement(groups, touches, day).collect()
    }
    touches.unpersist()
    # (reached, sends, opens, clicks, conversions, open rate, click rate, conversions per click)
    assert rows == {
        ("all", "CMP-A"): (3, 3, 1, 2, 0, pytest.approx(1 / 3), pytest.approx(2 / 3), 0.0),
        ("all", "CMP-B"): (1, 0, 0, 0, 1, None, None, None),
        ("all", "CMP-C"): (1, 0, 0, 1, 1, None, None, 1.0),
        ("top", "CMP-A"): (2, 2, 1, 2, 0, 0.5, 1.0, 0.0),
        ("top", "CMP-B"): (1, 0, 0, 0, 1, None, None, None),
        ("top", "CMP-C"): (1, 0, 0, 1, 1, None, None, 1.0),
    }


def test_scoring_matrix_counts_and_revenue_per_cell_and_group(spark):
    rows = [
        customer("a", "S", tier="top", revenue=100.0, fit_score=90.0, engagement_score=80.0),  # (4, 4)
        customer("b", "S", tier="top", revenue=50.0, fit_score=100.0, engagement_score=99.0),  # 100 -> top band
        customer("c", "S", tier="rest", revenue=20.0, fit_score=20.0, engagement_score=0.0),  # 20 -> band 1
        {"persona_id": "p", "persona_type": "prospect", "value_tier": "rest", "fit_score": 19.9,
         "engagement_score": 0.0},  # band (0, 0)
        customer("n", "S", tier="rest", revenue=9.0, fit_score=None, engagement_score=50.0),  # unscored: left out
    ]  # fmt: skip
    groups = M.explode_groups(frame(spark, rows), ["value_tier"])
    got = {
        (r["segment"], r["fit_bin"], r["engagement_bin"]): (r["personas"], r["customers"], r["revenue"])
        for r in E.scoring_matrix(groups, D2, bins=5).collect()
    }
    assert got == {
        ("all", 4, 4): (2, 2, 150.0),
        ("all", 1, 0): (1, 1, 20.0),
        ("all", 0, 0): (1, 0, 0.0),
        ("top", 4, 4): (2, 2, 150.0),
        ("rest", 1, 0): (1, 1, 20.0),
        ("rest", 0, 0): (1, 0, 0.0),
    }


def test_matrix_outline_frames_the_cells_holding_a_tenth_of_the_members():
    cells = [
        {"fit_bin": 4, "engagement_bin": 3, "personas": 50},
        {"fit_bin": 3, "engagement_bin": 4, "personas": 45},
        {"fit_bin": 0, "engagement_bin": 0, "personas": 5},  # 5%: not framed
    ]
    # Chart rows run from high fit (row 0 = fit band 4) down; columns from low engagement.
    assert matrix_outline(cells, 5) == (0, 1, 3, 4)
    assert matrix_outline([], 5) is None


def test_boundary_review_counts_members_near_the_cut_and_suggests_a_drifted_threshold(spark):
    definition = {
        "name": "High value",
        "persona_types": ["customer"],
        "where": {
            "all": [
                {"attr": "revenue_lifetime", "op": ">=", "value": 100},
                {"attr": "orders_lifetime", "op": "between", "value": [2, 5]},
                {"attr": "plan", "op": "in", "value": ["pro"]},  # not numeric: no cut
            ]
        },
    }
    cuts = numeric_cuts("High value", definition)
    assert cuts == [
        Cut("High value", "revenue_lifetime", ">=", 100.0, ("customer",)),
        Cut("High value", "orders_lifetime", "between", 2.0, ("customer",)),
        Cut("High value", "orders_lifetime", "between", 5.0, ("customer",)),
    ]
    types = {"persona_id": "string", "persona_type": "string", "revenue_lifetime": "double", "orders_lifetime": "int"}

    def snap(revenues):
        people = [{"persona_id": f"c{i}", "persona_type": "customer", "revenue_lifetime": v, "orders_lifetime": 3}
                  for i, v in enumerate(revenues)]  # fmt: skip
        # A prospect is outside the segment's population: it moves no percentile.
        people.append({"persona_id": "p", "persona_type": "prospect", "revenue_lifetime": 0.0, "orders_lifetime": 0})
        return frame(spark, people, types)

    now = snap([50.0, 95.0, 100.0, 108.0, 200.0, 300.0, 400.0, 500.0, 600.0, 700.0])
    before = snap([50.0, 60.0, 70.0, 80.0, 90.0, 95.0, 98.0, 99.0, 150.0, 200.0])
    members = spark.createDataFrame(
        [("High value", f"c{i}") for i in range(2, 10)], "segment string, persona_id string"
    )
    ref = dt.date(2025, 4, 1)
    rows = boundary_review(now, before, members, cuts, D2, ref, margin=0.1, drift_points=10.0)
    spark.createDataFrame(rows, BOUNDARY_SCHEMA)  # the rows fit the table's schema
    assert rows == [
        # 8 members; 100 and 108 are within 10 of 100. 2 of 10 customers are below 100 now (20th
        # percentile), 8 of 10 were (80th): drift -60; today's 80th percentile is 500.
        (D2, "High value", "revenue_lifetime", ">=", 100.0, 8, 2, 0.25, 20.0, ref, 80.0, -60.0, 500.0,
         "revenue_lifetime >= 100 now sits at the 20th percentile (was 80th on 2025-04-01): 500 keeps the share "
         "it had"),
        # Everyone has 3 orders: nobody within 10% of 2 or 5, no drift, no suggestion.
        (D2, "High value", "orders_lifetime", "between", 2.0, 8, 0, 0.0, 0.0, ref, 0.0, 0.0, None, None),
        (D2, "High value", "orders_lifetime", "between", 5.0, 8, 0, 0.0, 100.0, ref, 100.0, 0.0, None, None),
    ]  # fmt: skip
    # Without a snapshot a quarter back: no percentile before, no drift, no suggestion.
    alone = boundary_review(now, None, members, cuts[:1], D2, None)
    assert alone[0][9:] == (None, None, None, None, None)


def test_report_shows_the_matrix_with_segments_outlined_and_the_new_panels():
    segs = [
        {"dimension": "all", "segment": "all", "size": 4, "tickets_per_100": 75.0, "csat_avg": 4.0, "nps": None},
        {"dimension": "value_tier", "segment": "top", "size": 2, "tickets_per_100": 100.0, "csat_avg": None},
        {"dimension": "audience", "segment": "Sales <opportunity>", "size": 2, "median_fit_score": 90.0,
         "median_engagement_score": 80.0},
    ]  # fmt: skip
    data = {
        "segments": segs,
        "history": [],
        "matrix": [],
        "industry": [],
        "clv_edges": [],
        "clv_counts": [],
        "matrix_bins": 5,
        "score_matrix": [
            {"dimension": "all", "segment": "all", "fit_bin": 4, "engagement_bin": 4, "personas": 3, "revenue": 9.0},
            {"dimension": "all", "segment": "all", "fit_bin": 0, "engagement_bin": 1, "personas": 1, "revenue": 1.0},
            {"dimension": "audience", "segment": "Sales <opportunity>", "fit_bin": 4, "engagement_bin": 4,
             "personas": 2, "revenue": 5.0},
        ],
        "campaigns": [
            {"dimension": "all", "segment": "all", "campaign_id": "CMP-A", "members_reached": 3, "sends": 3,
             "opens": 1, "clicks": 2, "conversions": 0, "open_rate": 1 / 3, "click_rate": 2 / 3,
             "conversion_rate": 0.0},
        ],
        "boundaries": [
            {"audience": "High value", "attribute": "revenue_lifetime", "op": ">=", "threshold": 100.0,
             "members": 8, "members_near": 2, "near_share": 0.25, "percentile_now": 20.0,
             "percentile_before": 80.0, "drift_points": -60.0, "suggestion": "500 keeps the share it had"},
        ],
    }  # fmt: skip
    html = render_html(data, D2)
    assert 'id="chart-scoring-matrix"' in html and 'id="chart-support-volume"' in html
    assert html.count('class="outline"') == 1
    assert "Sales &lt;opportunity&gt;: 2 members, median fit 90, median engagement 80" in html
    assert 'id="support"' in html and 'id="campaigns"' in html and 'id="boundaries"' in html
    assert "<td>CMP-A</td><td>everyone</td><td>3</td>" in html and "<td>33.3%</td>" in html
    assert "500 keeps the share it had" in html
    # The top tier's CSAT is unknown: shown as "-", not 0.
    assert "<td>top</td><td>2</td><td>-</td><td>-</td><td>-</td><td>-</td><td>100</td><td>-</td>" in html
