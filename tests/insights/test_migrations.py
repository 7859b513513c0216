"""Transition matrix and stability between two hand-made snapshots."""

from __future__ import annotations

import pytest
from chispa import assert_df_equality

from segengine.errors import SegengineError
from segengine.insights import build_insights
from segengine.insights.migrations import migrations, snapshot_dates, stability, transition_matrix

from .conftest import D1, D2


def test_transition_matrix_counts_and_row_shares(spark, two_snapshots):
    before = two_snapshots.read("customer_features", partitions={"snapshot_date": D1})
    after = two_snapshots.read("customer_features", partitions={"snapshot_date": D2})
    out = transition_matrix(before, after)
    expected = spark.createDataFrame(
        [
            ("Champions", "Champions", 2, 2 / 3),
            ("Champions", "At risk", 1, 1 / 3),
            ("At risk", "Champions", 1, 1.0),
            ("(none)", "Champions", 1, 0.5),  # e is new
            ("(none)", "(none)", 1, 0.5),  # the prospect was never scored
        ],
        "from_segment string, to_segment string, count long, share double",
    )
    assert_df_equality(out, expected, ignore_row_order=True, ignore_nullable=True)


def test_stability_is_share_of_scored_personas_staying(spark, two_snapshots):
    m = migrations(spark, two_snapshots, D1, D2)
    s = stability(m)
    assert (s["stayed"], s["compared"], s["stability"]) == (2, 4, 0.5)
    assert s["per_segment"] == {"At risk": 0.0, "Champions": pytest.approx(2 / 3)}


def test_build_insights_writes_the_matrix_for_the_previous_snapshot(spark, config, two_snapshots):
    summary = build_insights(spark, two_snapshots, config, D2)
    assert summary["migration_from"] == str(D1) and summary["stability"] == 0.5
    stored = two_snapshots.read("insights_migrations", partitions={"to_date": D2})
    assert stored.count() == 5
    assert {r["from_date"] for r in stored.collect()} == {D1}


def test_snapshot_dates_and_missing_date_error(spark, two_snapshots):
    import datetime as dt

    assert snapshot_dates(two_snapshots) == [D1, D2]
    with pytest.raises(SegengineError, match="no snapshot for 2020-01-01"):
        migrations(spark, two_snapshots, dt.date(2020, 1, 1), D2)


def test_build_insights_on_a_date_without_features_names_the_command_that_makes_them(spark, config, two_snapshots):
    import datetime as dt

    with pytest.raises(SegengineError) as err:
        build_insights(spark, two_snapshots, config, dt.date(2020, 1, 1))
    assert str(err.value) == (
        f"no customer_features partition for 2020-01-01 (latest is {D2}); "
        "run `segengine features --date 2020-01-01` first"
    )
