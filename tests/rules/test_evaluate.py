"""register_views / evaluate_segment / count over real Delta tables of the lake."""

from __future__ import annotations

import datetime as dt

import pytest

from segengine.errors import SegengineError
from segengine.rules import count_by_persona_type, evaluate_segment, register_views

SNAP = dt.date(2025, 6, 30)


def test_evaluate_segment_reads_the_snapshot_partition_and_tolerates_missing_behaviour_tables(spark, lake):
    rows = [
        ("a", SNAP, "customer", 80, None),
        ("b", SNAP, "prospect", 75, None),
        ("c", SNAP, "customer", 10, None),
        ("a", dt.date(2025, 5, 31), "customer", 99, None),
    ]
    df = spark.createDataFrame(
        rows, "persona_id string, snapshot_date date, persona_type string, fit_score int, cookie_id string"
    )
    lake.write(df, "customer_features", mode="overwrite")
    doc = {
        "name": "fit",
        "where": {
            "all": [
                {"attr": "fit_score", "op": ">=", "value": 70},
                {"did_not": "add_to_cart"},
                {"not": {"purchased": {}}},
            ]
        },
    }
    members = evaluate_segment(spark, lake, doc, SNAP)  # no order_lines/events tables: empty views
    assert sorted(r["persona_id"] for r in members.collect()) == ["a", "b"]
    assert count_by_persona_type(members) == {"customer": 1, "prospect": 1, "total": 2}
    # a second segment reuses the registered (cached) views
    again = evaluate_segment(spark, lake, {"name": "all"}, SNAP, views_registered=True)
    assert again.count() == 3


def test_escaped_string_literal_mode_is_refused(spark, lake):
    spark.conf.set("spark.sql.parser.escapedStringLiterals", "true")
    try:
        with pytest.raises(SegengineError, match="escapedStringLiterals"):
            register_views(spark, lake, SNAP)
    finally:
        spark.conf.set("spark.sql.parser.escapedStringLiterals", "false")
