"""CLV time split: exact windows and labels on hand-written orders (no label leakage)."""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from segengine.errors import ConfigError
from segengine.models.clv import clv_windows, label_frame, shift_months, training_frame

S = dt.date(2025, 6, 30)
ORDERS = "persona_id string, order_ts timestamp, quantity int, unit_price double"


def _ts(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour)


def test_shift_months_clamps_to_the_last_day_of_the_month():
    assert shift_months(dt.date(2024, 8, 31), -6) == dt.date(2024, 2, 29)
    assert shift_months(dt.date(2025, 6, 30), -12) == dt.date(2024, 6, 30)


def test_windows_are_consecutive_cycles_ending_at_the_snapshot():
    w = clv_windows(S, 6)
    assert w["train"] == (dt.date(2024, 6, 30), dt.date(2024, 12, 30))
    assert w["holdout"] == (dt.date(2024, 12, 30), S)
    assert w["final"] == w["holdout"]


def test_zero_cycle_is_a_config_error():
    with pytest.raises(ConfigError, match="cycle_months"):
        clv_windows(S, 0)


def test_label_counts_orders_after_the_cutoff_day_up_to_the_end_day(spark):
    c, end = dt.date(2024, 12, 30), S
    orders = spark.createDataFrame(
        [
            ("a", dt.datetime(2024, 12, 30, 23, 59), 1, 1000.0),  # on the cutoff day: features side
            ("a", dt.datetime(2024, 12, 31, 0, 0), 2, 10.0),  # first label day
            ("a", dt.datetime(2025, 6, 30, 23, 59), 1, 5.0),  # last label day
            ("a", dt.datetime(2025, 7, 1, 0, 0), 1, 777.0),  # after the window
            ("b", _ts(dt.date(2025, 3, 1)), -1, 30.0),  # refund only: negative net spend
            ("c", _ts(dt.date(2024, 1, 1)), 1, 50.0),  # long before
        ],
        ORDERS,
    )
    expected = spark.createDataFrame([("a", 25.0), ("b", -30.0)], "persona_id string, label double")
    assert_df_equality(label_frame(orders, c, end), expected, ignore_row_order=True, ignore_nullable=True)


def test_planted_future_purchase_is_in_the_holdout_label_not_the_training_label(spark):
    w = clv_windows(S, 6)
    train_cutoff, holdout_cutoff = w["train"]
    planted_day = holdout_cutoff + dt.timedelta(days=1)
    orders = spark.createDataFrame(
        [
            ("p", _ts(train_cutoff - dt.timedelta(days=10)), 1, 40.0),  # history before the train cutoff
            ("p", _ts(train_cutoff + dt.timedelta(days=30)), 1, 60.0),  # training label
            ("p", _ts(planted_day), 1, 10_000.0),  # planted: after the training label window
        ],
        ORDERS,
    )
    features = spark.createDataFrame(
        [("p", "customer", 40.0), ("q", "customer", 0.0), ("v", "visitor", None)],
        "persona_id string, persona_type string, monetary double",
    )
    train = training_frame(features, orders, *w["train"]).select("persona_id", "label")
    holdout = training_frame(features, orders, *w["holdout"]).select("persona_id", "label")
    expected_train = spark.createDataFrame([("p", 60.0), ("q", 0.0)], "persona_id string, label double")
    expected_holdout = spark.createDataFrame([("p", 10_000.0), ("q", 0.0)], "persona_id string, label double")
    assert_df_equality(train, expected_train, ignore_row_order=True, ignore_nullable=True)
    assert_df_equality(holdout, expected_holdout, ignore_row_order=True, ignore_nullable=True)
