"""Propensity groundwork: the time windows, both labels, and the holdout metrics, exactly."""

from __future__ import annotations

import datetime as dt

import pytest

from segengine.errors import ConfigError
from segengine.models.propensity import calibration_curve, holdout_metrics, propensity_labels, propensity_windows

D = dt.date
CUTOFF = D(2025, 5, 31)


def test_windows_keep_every_training_label_before_the_holdout():
    w = propensity_windows(D(2025, 6, 30), 30, cutoffs=3)
    assert w["holdout"] == (D(2025, 5, 31), D(2025, 6, 30))
    assert w["train"] == [
        (D(2025, 5, 1), D(2025, 5, 31)),
        (D(2025, 4, 1), D(2025, 5, 1)),
        (D(2025, 3, 1), D(2025, 3, 31)),
    ]
    assert w["final"] == [
        (D(2025, 5, 31), D(2025, 6, 30)),
        (D(2025, 4, 30), D(2025, 5, 30)),
        (D(2025, 3, 31), D(2025, 4, 30)),
    ]
    assert max(end for _, end in w["train"]) <= w["holdout"][0]


@pytest.mark.parametrize(("horizon", "cutoffs"), [(0, 3), (30, 0)])
def test_windows_refuse_empty_horizons_and_no_cutoffs(horizon, cutoffs):
    with pytest.raises(ConfigError, match="must be at least 1"):
        propensity_windows(D(2025, 6, 30), horizon, cutoffs)


def test_labels_count_purchases_strictly_after_the_cutoff_up_to_the_horizon(spark):
    orders = spark.createDataFrame(
        [
            ("a", "o1", D(2025, 5, 1), True),
            ("a", "o2", D(2025, 6, 10), True),  # bought again in the window
            ("b", "o3", D(2025, 5, 31), True),  # on the cutoff day: history, not label
            ("c", "o4", D(2025, 6, 30), True),  # the window's last day counts
            ("d", "o5", D(2025, 7, 1), True),  # a day after the window
            ("e", "o6", D(2025, 4, 1), True),
            ("e", "o7", D(2025, 6, 5), False),  # a refund is not a purchase
            ("x", "o8", D(2025, 6, 5), True),  # not in the population
        ],
        "persona_id string, order_id string, order_date date, is_purchase boolean",
    )
    population = spark.createDataFrame([(p,) for p in "abcdef"], "persona_id string")
    rows = propensity_labels(population, orders, CUTOFF, 30).orderBy("persona_id").collect()
    got = [(r.persona_id, r.bought_before, r.purchase_next, r.churned) for r in rows]
    assert got == [
        ("a", True, 1, 0),
        ("b", True, 0, 1),
        ("c", False, 1, None),
        ("d", False, 0, None),
        ("e", True, 0, 1),
        ("f", False, 0, None),
    ]
    assert {r.cutoff for r in rows} == {CUTOFF}


def test_holdout_metrics_and_calibration_on_a_known_ranking(spark):
    # 20 personas, probabilities 0.025 .. 0.975; the 4 highest and 1 in the middle bought.
    rows = [(f"p{i:02d}", (i + 0.5) / 20, int(i >= 16 or i == 8)) for i in range(20)]
    scored = spark.createDataFrame(rows, "persona_id string, probability double, label int")
    m = holdout_metrics(scored, score="probability")
    # 5 positives, 15 negatives: the middle positive outranks 8 of them -> (4*15 + 8) / 75
    assert m["roc_auc"] == pytest.approx(68 / 75)
    assert m["rows"] == 20 and m["positive_rate"] == pytest.approx(0.25)
    assert m["top_decile_lift"] == pytest.approx(1.0 / 0.25)  # the top 2 (above the 90th percentile) both bought
    assert 0 < m["pr_auc"] <= 1
    curve = [(r.bin, r.rows, r.mean_predicted, r.observed_rate) for r in calibration_curve(scored).collect()]
    assert [(b, n) for b, n, _, _ in curve] == [(b, 2) for b in range(10)]
    assert curve[4][2:] == (pytest.approx(0.45), pytest.approx(0.5))  # p08 (0.425) bought, p09 (0.475) did not
    assert [rate for *_, rate in curve[8:]] == [1.0, 1.0]
