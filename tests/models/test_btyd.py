"""BG/NBD + Gamma-Gamma at scale: statistics in Spark, grouped fit, Spark predictions = lifetimes'.

A hand-made order log of 18 customers; the reference is ``lifetimes`` 0.11.3 fitted on
its own per-customer summary of the same transactions.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from segengine.errors import ModelError
from segengine.models.btyd import (
    BtydModel,
    bgnbd_triples,
    btyd_predict,
    btyd_summary,
    fit_bgnbd,
    fit_bgnbd_arrays,
    fit_gamma_gamma,
    fit_gamma_gamma_arrays,
)
from segengine.models.clv import order_facts

lifetimes = pytest.importorskip("lifetimes")

CUTOFF = dt.date(2024, 12, 31)
LINES = "order_id string, persona_id string, order_ts timestamp, quantity int, unit_price double"
# (persona, day of 2024 (1 = Jan 1), value): purchases; same-day orders count as one day.
PURCHASES = [
    ("c01", 5, 20.0), ("c01", 40, 25.0), ("c01", 90, 30.0), ("c01", 200, 18.0), ("c01", 330, 22.0),
    ("c02", 10, 55.0),
    ("c03", 15, 12.0), ("c03", 16, 14.0), ("c03", 30, 11.0),
    ("c04", 20, 30.0), ("c04", 150, 35.0),
    ("c05", 25, 9.5),
    ("c06", 60, 24.0), ("c06", 61, 26.0), ("c06", 62, 22.0), ("c06", 63, 25.0), ("c06", 64, 29.0),
    ("c07", 100, 15.0), ("c07", 300, 16.0), ("c07", 360, 17.0),
    ("c08", 120, 200.0),
    ("c09", 130, 35.0), ("c09", 131, 30.0),
    ("c10", 200, 30.0), ("c10", 250, 32.0), ("c10", 280, 35.0),
    ("c11", 220, 25.0),
    ("c12", 250, 33.0), ("c12", 340, 31.0),
    ("c13", 300, 19.0),
    ("c14", 330, 28.0), ("c14", 331, 27.0), ("c14", 345, 32.0), ("c14", 350, 30.0),
    ("c15", 350, 10.0),
    ("c16", 366, 75.0),  # first purchase on the cutoff day: T = 0
    ("c17", 3, 27.0), ("c17", 8, 26.0), ("c17", 50, 24.0),
    ("c18", 70, 36.0), ("c18", 71, 31.0), ("c18", 240, 34.0), ("c18", 241, 35.0),
    ("c04", 150, 5.0),  # a second order the same day: one purchase day worth 40
]  # fmt: skip


def _day(n: int) -> dt.date:
    return dt.date(2024, 1, 1) + dt.timedelta(days=n - 1)


def _orders(spark, extra=()):
    rows = [
        (f"o{i}", p, dt.datetime.combine(_day(d), dt.time(12)), 1, v) for i, (p, d, v) in enumerate(PURCHASES)
    ] + list(extra)
    return order_facts(spark.createDataFrame(rows, LINES), "UTC", spark.conf.get("spark.sql.session.timeZone"))


def _lifetimes_summary() -> pd.DataFrame:
    from lifetimes.utils import summary_data_from_transaction_data

    tx = pd.DataFrame(
        [(p, pd.Timestamp(_day(d)), v) for p, d, v in PURCHASES], columns=["customer_id", "date", "value"]
    )
    return summary_data_from_transaction_data(
        tx, "customer_id", "date", monetary_value_col="value", observation_period_end=pd.Timestamp(CUTOFF), freq="D"
    ).sort_index()


def test_summary_counts_purchase_days_and_nets_a_days_refund(spark):
    late = ("late", "c02", dt.datetime(2025, 1, 2, 12), 1, 99.0)  # after the cutoff: not history
    refund = ("r1", "c04", dt.datetime.combine(_day(150), dt.time(15)), -1, 20.0)
    got = {r["persona_id"]: r for r in btyd_summary(_orders(spark, [late, refund]), CUTOFF, 1.0).collect()}
    assert (got["c04"]["btyd_frequency"], got["c04"]["btyd_recency"], got["c04"]["btyd_T"]) == (1, 130.0, 346.0)
    assert got["c04"]["btyd_monetary"] == pytest.approx(20.0)  # 35 + 5 - 20 on its repeat day
    assert (got["c02"]["btyd_frequency"], got["c02"]["btyd_recency"], got["c02"]["btyd_monetary"]) == (0, 0.0, 0.0)
    assert got["c16"]["btyd_T"] == 0.0
    weeks = {r["persona_id"]: r for r in btyd_summary(_orders(spark), CUTOFF).collect()}
    assert weeks["c04"]["btyd_recency"] == pytest.approx(130 / 7)


def test_summary_equals_lifetimes_summary(spark):
    ref = _lifetimes_summary()
    got = btyd_summary(_orders(spark), CUTOFF, 1.0).toPandas().set_index("persona_id").sort_index()
    assert list(got.index) == list(ref.index)
    np.testing.assert_array_equal(got["btyd_frequency"], ref["frequency"])
    np.testing.assert_allclose(got["btyd_recency"], ref["recency"])
    np.testing.assert_allclose(got["btyd_T"], ref["T"])
    np.testing.assert_allclose(got["btyd_monetary"], ref["monetary_value"], rtol=1e-12)


def test_grouped_fit_and_spark_predictions_equal_lifetimes(spark):
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    ref = _lifetimes_summary()
    # A small penalizer keeps 18 customers' likelihood away from the boundary (same objective on both sides).
    bgf = BetaGeoFitter(penalizer_coef=0.01).fit(ref["frequency"], ref["recency"], ref["T"])
    rep = ref[ref["frequency"] > 0]
    exact = GammaGammaFitter(penalizer_coef=0.01).fit(rep["frequency"], rep["monetary_value"])
    # The grouped fit rounds mean values to 3 significant digits (fit only; predictions use the exact values).
    m = rep["monetary_value"].to_numpy()
    rounded = np.round(m / 10 ** (np.floor(np.log10(m)) - 2)) * 10 ** (np.floor(np.log10(m)) - 2)
    ggf = GammaGammaFitter(penalizer_coef=0.01).fit(rep["frequency"], rounded)

    summary = btyd_summary(_orders(spark), CUTOFF, 1.0).cache()
    bg = fit_bgnbd(summary, penalizer=0.01, unit_days=1.0)
    gg = fit_gamma_gamma(summary, penalizer=0.01)
    assert bg.customers == 18 and bg.groups == bgnbd_triples(summary).count()
    np.testing.assert_allclose([bg.r, bg.alpha, bg.a, bg.b], bgf.params_[["r", "alpha", "a", "b"]], rtol=1e-5)
    np.testing.assert_allclose([gg.p, gg.q, gg.v], ggf.params_[["p", "q", "v"]], rtol=1e-5)
    np.testing.assert_allclose([gg.p, gg.q, gg.v], exact.params_[["p", "q", "v"]], rtol=1e-3)

    horizon = 90.0
    from pyspark.sql import functions as F

    got = btyd_predict(summary, bg, gg, F.lit(horizon)).toPandas().set_index("persona_id").sort_index()
    summary.unpersist()
    x, tx, T, m = ref["frequency"], ref["recency"], ref["T"], ref["monetary_value"]
    alive = bgf.conditional_probability_alive(x, tx, T)
    trans = bgf.conditional_expected_number_of_purchases_up_to_time(horizon, x, tx, T)
    value = ggf.conditional_expected_average_profit(x, m)
    np.testing.assert_allclose(got["btyd_p_alive"], alive, rtol=1e-5)
    np.testing.assert_allclose(got["btyd_expected_transactions"], trans, rtol=1e-5)
    np.testing.assert_allclose(got["btyd_expected_value"], value, rtol=1e-5)
    np.testing.assert_allclose(got["btyd_expected_spend"], np.asarray(trans) * np.asarray(value), rtol=1e-5)
    assert got.loc["c16", "btyd_p_alive"] == 1.0  # no repeat purchase: alive by definition


def test_weekly_triples_are_rounded_whole_weeks_and_fit_like_lifetimes_on_them(spark):
    from lifetimes import BetaGeoFitter

    summary = btyd_summary(_orders(spark), CUTOFF)  # weeks
    triples = bgnbd_triples(summary).toPandas()
    assert (triples["recency"] % 1 == 0).all() and (triples["T"] % 1 == 0).all()
    assert int(triples["n"].sum()) == 18
    bgf = BetaGeoFitter(penalizer_coef=0.01).fit(
        triples["frequency"], triples["recency"], triples["T"], weights=triples["n"]
    )
    bg = fit_bgnbd(summary, penalizer=0.01)
    np.testing.assert_allclose([bg.r, bg.alpha, bg.a, bg.b], bgf.params_[["r", "alpha", "a", "b"]], rtol=1e-5)
    assert bg.unit_days == 7.0


def test_stage_saved_and_loaded_predicts_the_same(spark, tmp_path):
    from pyspark.sql import functions as F

    summary = btyd_summary(_orders(spark), CUTOFF).withColumn("snapshot_date", F.lit(CUTOFF))
    stage = BtydModel.of(fit_bgnbd(summary, 0.01), fit_gamma_gamma(summary, 0.01), horizon_months=3)
    stage.save(str(tmp_path / "btyd"))
    loaded = BtydModel.load(str(tmp_path / "btyd"))
    a = stage.transform(summary).orderBy("persona_id").toPandas()
    b = loaded.transform(summary).orderBy("persona_id").toPandas()
    pd.testing.assert_frame_equal(a, b)
    # The horizon runs from the row's date: 2024-12-31 + 3 months = 2025-03-31, 90 days.
    direct = btyd_predict(summary, *stage.params_of(), F.lit(90 / 7)).orderBy("persona_id").toPandas()
    np.testing.assert_allclose(a["btyd_expected_spend"], direct["btyd_expected_spend"], rtol=1e-12)


def test_inconsistent_rows_and_missing_columns_are_named():
    with pytest.raises(ModelError, match="row 1 has frequency 2, recency 9, T 5"):
        fit_bgnbd_arrays([0, 2], [0, 9], [5, 5])
    with pytest.raises(ModelError, match="row 0 has frequency 1, monetary -3"):
        fit_gamma_gamma_arrays([1], [-3.0])
    with pytest.raises(ModelError, match="no customers"):
        fit_bgnbd_arrays([], [], [])
