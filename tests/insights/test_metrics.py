"""Exact per-group metrics on two hand-made snapshots (see conftest.two_snapshots)."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from segengine.insights import add_months, build_insights
from segengine.insights import metrics as M

from .conftest import D1, D2, customer, make_features


def _row(lake, dimension, segment, date=D2):
    rows = (
        lake.read("insights_segments", partitions={"snapshot_date": date})
        .where((F.col("dimension") == dimension) & (F.col("segment") == segment))
        .collect()
    )
    assert len(rows) == 1, f"{dimension}={segment}: {rows}"
    return rows[0].asDict()


def test_champions_metrics_are_exact(spark, config, two_snapshots):
    summary = build_insights(spark, two_snapshots, config, D2)
    r = _row(two_snapshots, "ai_segment", "Champions")
    assert r["size"] == 4 and r["customers"] == 4
    assert r["share"] == pytest.approx(4 / 6)
    assert r["revenue"] == pytest.approx(300.0)
    assert r["avg_revenue_per_customer"] == pytest.approx(75.0)
    assert r["avg_basket_value"] == pytest.approx(300 / 7)
    assert r["avg_clv"] == pytest.approx(115.0)
    assert r["total_clv"] == pytest.approx(460.0)
    assert r["email_opens_per_member"] == pytest.approx(1.25)
    assert r["email_clicks_per_member"] == pytest.approx(0.5)
    assert r["email_engaged_share"] == pytest.approx(0.5)
    assert r["click_to_open_rate"] == pytest.approx(0.4)
    assert summary["retention_reference"] == str(D1)


def test_retention_counts_last_cycles_customers_who_bought_again(spark, config, two_snapshots):
    build_insights(spark, two_snapshots, config, D2)
    champions = _row(two_snapshots, "ai_segment", "Champions")
    # a and b bought after D1, c did not; membership is taken at D1 (b has since left).
    assert champions["retention_base"] == 3
    assert champions["retention_rate"] == pytest.approx(2 / 3)
    at_risk = _row(two_snapshots, "ai_segment", "At risk")
    assert (at_risk["retention_base"], at_risk["retention_rate"]) == (1, 1.0)
    # The prospect was never a customer: no retention base for its group.
    prospects = _row(two_snapshots, "persona_type", "prospect")
    assert prospects["retention_base"] is None


def test_size_change_30d_compares_with_the_snapshot_a_month_back(spark, config, two_snapshots):
    build_insights(spark, two_snapshots, config, D2)
    assert _row(two_snapshots, "ai_segment", "Champions")["size_change_30d"] == 1
    assert _row(two_snapshots, "ai_segment", "At risk")["size_change_30d"] == 0
    everyone = _row(two_snapshots, "all", "all")
    assert (everyone["size"], everyone["size_30d_ago"], everyone["size_change_30d"]) == (6, 5, 1)
    assert everyone["share"] == 1.0


def test_first_snapshot_has_no_retention_or_change(spark, config, two_snapshots):
    summary = build_insights(spark, two_snapshots, config, D1)
    r = _row(two_snapshots, "ai_segment", "Champions", D1)
    assert r["size"] == 3 and r["retention_rate"] is None and r["size_change_30d"] is None
    assert "migration_from" not in summary


def test_rerun_replaces_the_partition(spark, config, two_snapshots):
    build_insights(spark, two_snapshots, config, D2)
    build_insights(spark, two_snapshots, config, D2)
    rows = two_snapshots.read("insights_segments", partitions={"snapshot_date": D2})
    assert rows.where("dimension = 'ai_segment'").count() == 2
    assert rows.groupBy("dimension", "segment").count().where("count > 1").count() == 0


def test_unscored_personas_are_in_no_ai_segment_group(spark):
    df = make_features(spark, [customer("a", None), customer("b", "X")], D1)
    out = M.explode_groups(df, ["ai_segment"]).select("persona_id", "dimension", "segment")
    expected = spark.createDataFrame(
        [("a", "all", "all"), ("b", "all", "all"), ("b", "ai_segment", "X")],
        "persona_id string, dimension string, segment string",
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_audiences_are_grouped_by_name(spark, config, two_snapshots):
    members = spark.createDataFrame([("A1", "a"), ("A1", "b"), ("A2", "p")], "audience_id string, persona_id string")
    registry = spark.createDataFrame([("A1", "Big spenders"), ("A2", "Leads")], "audience_id string, name string")
    two_snapshots.write(members, "audience_members", mode="overwrite")
    two_snapshots.write(registry, "audiences", mode="overwrite")
    build_insights(spark, two_snapshots, config, D2)
    big = _row(two_snapshots, "audience", "Big spenders")
    assert (big["size"], big["revenue"], big["avg_clv"]) == (2, 220.0, 170.0)
    assert _row(two_snapshots, "audience", "Leads")["customers"] == 0


def _changes(spark, rows):
    """An ``audience_changes`` frame from (audience_id, persona_id, change, snapshot_date) rows."""
    return spark.createDataFrame(rows, "audience_id string, persona_id string, change string, snapshot_date date")


def test_audience_metrics_of_a_past_date_use_that_dates_membership(spark, config, two_snapshots):
    """Built after later refreshes, insights for D1 and D2 still count who was a member then."""
    d = dt.date
    changes = _changes(
        spark,
        [
            ("A1", "a", "added", d(2024, 12, 1)),
            ("A1", "b", "added", d(2024, 12, 1)),
            ("A1", "c", "added", d(2025, 3, 1)),
            ("A1", "b", "removed", d(2025, 6, 1)),
            ("A1", "c", "removed", d(2025, 8, 1)),  # after D2
        ],
    )
    two_snapshots.write(changes, "audience_changes", mode="overwrite")
    current = spark.createDataFrame([("A1", "a")], "audience_id string, persona_id string")
    two_snapshots.write(current, "audience_members", mode="overwrite")
    registry = spark.createDataFrame([("A1", "Big spenders")], "audience_id string, name string")
    two_snapshots.write(registry, "audiences", mode="overwrite")
    build_insights(spark, two_snapshots, config, D1)
    build_insights(spark, two_snapshots, config, D2)
    assert _row(two_snapshots, "audience", "Big spenders", D1)["size"] == 2  # a, b
    assert _row(two_snapshots, "audience", "Big spenders", D2)["size"] == 2  # a, c (c left after D2)


def test_members_as_of_counts_joins_and_leaves_up_to_the_date(spark):
    from segengine.audiences import members_as_of

    d = dt.date
    changes = _changes(
        spark,
        [
            ("A", "x", "added", d(2025, 1, 1)),
            ("A", "x", "removed", d(2025, 2, 1)),
            ("A", "x", "added", d(2025, 3, 1)),
            ("A", "y", "added", d(2025, 2, 1)),
            ("B", "x", "added", d(2025, 2, 1)),
        ],
    )

    def on(day):
        return sorted(tuple(r) for r in members_as_of(changes, day).collect())

    assert on(d(2024, 12, 31)) == []
    assert on(d(2025, 1, 15)) == [("A", "x")]
    assert on(d(2025, 2, 1)) == [("A", "y"), ("B", "x")]
    assert on(d(2025, 3, 1)) == [("A", "x"), ("A", "y"), ("B", "x")]


def test_industry_trends_average_order_value_per_month(spark):
    ts = dt.datetime
    lines = spark.createDataFrame(
        [
            ("o1", 1, "a", ts(2025, 5, 3, 10), "P1", 2, 10.0),
            ("o1", 2, "a", ts(2025, 5, 3, 10), "P2", 1, 5.0),
            ("o2", 1, "b", ts(2025, 5, 20, 9), "P1", 1, 10.0),
            ("o3", 1, "b", ts(2025, 6, 2, 9), "P1", -1, 10.0),  # a refund order
            ("o4", 1, "c", ts(2025, 6, 2, 9), "P1", 9, 10.0),  # consumer: no industry
            ("o5", 1, "a", ts(2025, 7, 2, 9), "P1", 9, 10.0),  # after the snapshot
        ],
        "order_id string, line_no int, persona_id string, order_ts timestamp, product_id string, quantity int, unit_price double",
    )
    personas = spark.createDataFrame(
        [("a", "Retail"), ("b", "Retail"), ("c", None)], "persona_id string, industry string"
    )
    out = M.industry_value_trends(lines, personas, dt.date(2025, 6, 30)).drop("snapshot_date")
    expected = spark.createDataFrame(
        [("Retail", dt.date(2025, 5, 1), 2, 35.0, 17.5), ("Retail", dt.date(2025, 6, 1), 1, -10.0, -10.0)],
        "industry string, month date, orders long, revenue double, avg_transaction_value double",
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_add_months_clamps_to_month_end():
    assert add_months(dt.date(2025, 8, 31), -6) == dt.date(2025, 2, 28)
    assert add_months(dt.date(2025, 1, 15), -1) == dt.date(2024, 12, 15)
