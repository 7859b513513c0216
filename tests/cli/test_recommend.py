"""`segengine recommend evaluate`: the split, the users scored (known and cold start) and the intervals."""

from __future__ import annotations

import datetime as dt

D = dt.date(2025, 6, 30)
OL_SCHEMA = (
    "order_id string, line_no int, persona_id string, order_ts timestamp, channel string, product_id string, "
    "quantity int, unit_price double"
)


def _world(spark, lake):
    """Segment "a" buys P00/P01 early; t1 (known) and c1 (cold start) buy in the test window."""
    day = D - dt.timedelta(days=40)
    rows = [(p, prod, day) for p in ("a1", "a2", "a3") for prod in ("P00", "P01")]
    rows += [("t1", "P05", day), ("a1", "P03", D - dt.timedelta(days=15))]
    rows += [("t1", "P01", D - dt.timedelta(days=5)), ("c1", "P00", D - dt.timedelta(days=5))]
    data = [
        (f"o{i}", 1, p, dt.datetime.combine(d, dt.time(12)), "web", prod, 1, 1.0) for i, (p, prod, d) in enumerate(rows)
    ]
    lake.write(spark.createDataFrame(data, OL_SCHEMA), "order_lines", mode="overwrite")
    feats = [(p, D - dt.timedelta(days=10), "customer", "top", "a") for p in ("a1", "a2", "a3", "t1")]
    lake.write(
        spark.createDataFrame(
            feats, "persona_id string, snapshot_date date, persona_type string, value_tier string, ai_segment string"
        ),
        "customer_features",
        mode="overwrite",
    )


def test_evaluate_prints_the_split_the_cold_start_users_and_the_intervals(invoke, spark, lake):
    _world(spark, lake)
    conf = [
        "recommend.rank=2",
        "recommend.max_iter=3",
        "recommend.top_k=2",
        "recommend.eval_test_days=10",
        "recommend.eval_validation_days=10",
        "recommend.eval_bootstrap_resamples=30",
    ]
    args = [a for c in conf for a in ("--conf", c)]

    result = invoke(*args, "recommend", "evaluate", "--date", "2025-06-30", "--grid", "rank=2;rank=3")

    assert result.exit_code == 0, result.output
    out = result.output.splitlines()
    assert (
        out[0]
        == "time split: train <= 2025-06-10, validation 2025-06-11..2025-06-20 (10 days), test 2025-06-21..2025-06-30 (10 days)"
    )
    assert out[1].startswith("hyperparameters chosen on the validation window: rank=")
    assert "(2 setting(s) tried); the test window is scored once with them" in out[1]
    assert "== test split: ALS trained <= 2025-06-20, segments (ai_segment) as of 2025-06-20" in out
    assert "users scored 2: known to ALS 1, cold start 1 (served by the popular-in-segment fallback)" in out
    assert "95% intervals: percentile bootstrap over users, 30 resamples, seed 17" in out
    assert {"-- all users (2)", "-- known users (1)", "-- cold_start users (1)"} <= set(out)
    # c1 (cold start) gets the global list [P00, P01]: a hit; as do both baselines.
    cold = out.index("-- cold_start users (1)")
    popularity = next(line for line in out[cold:] if line.startswith("popularity"))
    assert popularity.split()[1:3] == ["0.5000", "[0.5000,"]


def test_a_grid_key_that_is_not_tunable_is_one_line_and_exit_2(invoke):
    result = invoke("recommend", "evaluate", "--date", "2025-06-30", "--grid", "top_k=3")
    assert result.exit_code == 2
    assert "Invalid value for --grid: grid setting 'top_k=3': 'top_k' is not one of rank, reg_param" in result.output
