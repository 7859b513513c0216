"""CLV time split: exact windows, labels and training features on hand-written orders.

No label leakage: a purchase planted after a cutoff is in that cutoff's label, never in
its features; labels and features use the same local dates; the training features equal
the feature table's values for the same customers.
"""

from __future__ import annotations

import datetime as dt

import pytest
from chispa import assert_df_equality

from segengine.errors import ConfigError
from segengine.models.clv import (
    clv_feature_columns,
    clv_inputs,
    clv_windows,
    customer_value_features,
    label_frame,
    order_facts,
    shift_months,
    training_frame,
)

S = dt.date(2025, 6, 30)
LINES = "order_id string, persona_id string, order_ts timestamp, quantity int, unit_price double"
PERSONAS = "persona_id string, created_at timestamp"
VALUE_COLUMNS = (
    "persona_id",
    "snapshot_date",
    "persona_type",
    "recency_days",
    "frequency",
    "monetary",
    "tenure_days",
    "orders_lifetime",
    "revenue_lifetime",
    "avg_basket_value",
    "days_since_last_purchase",
    "items_cycle",
)


def _ts(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour)


def _orders(spark, rows, tz="UTC"):
    return order_facts(spark.createDataFrame(rows, LINES), tz, spark.conf.get("spark.sql.session.timeZone"))


def test_shift_months_clamps_to_the_last_day_of_the_month():
    assert shift_months(dt.date(2024, 8, 31), -6) == dt.date(2024, 2, 29)
    assert shift_months(dt.date(2025, 6, 30), -12) == dt.date(2024, 6, 30)


def test_windows_are_consecutive_cycles_ending_at_the_snapshot():
    w = clv_windows(S, 6, train_cycles=3)
    assert w["holdout"] == (dt.date(2024, 12, 30), S)
    assert w["train"] == [
        (dt.date(2024, 6, 30), dt.date(2024, 12, 30)),
        (dt.date(2023, 12, 30), dt.date(2024, 6, 30)),
        (dt.date(2023, 6, 30), dt.date(2023, 12, 30)),
    ]
    assert w["final"] == [w["holdout"], *w["train"][:2]]
    # Month ends clamp from S, not step by step (2025-08-31 -> 02-28 -> 08-28 would drift).
    assert [a for a, _ in clv_windows(dt.date(2025, 8, 31), 6, 2)["train"]] == [
        dt.date(2024, 8, 31),
        dt.date(2024, 2, 29),
    ]
    assert clv_windows(S, 6)["train"] == [(dt.date(2024, 6, 30), dt.date(2024, 12, 30))]


def test_zero_cycle_or_no_training_cycle_is_a_config_error():
    with pytest.raises(ConfigError, match="cycle_months"):
        clv_windows(S, 0)
    with pytest.raises(ConfigError, match="train_cycles"):
        clv_windows(S, 6, train_cycles=0)


def test_label_counts_orders_after_the_cutoff_day_up_to_the_end_day(spark):
    c, end = dt.date(2024, 12, 30), S
    orders = _orders(
        spark,
        [
            ("o1", "a", dt.datetime(2024, 12, 30, 23, 59), 1, 1000.0),  # on the cutoff day: features side
            ("o2", "a", dt.datetime(2024, 12, 31, 0, 0), 2, 10.0),  # first label day
            ("o3", "a", dt.datetime(2025, 6, 30, 23, 59), 1, 5.0),  # last label day
            ("o4", "a", dt.datetime(2025, 7, 1, 0, 0), 1, 777.0),  # after the window
            ("r1", "b", _ts(dt.date(2025, 3, 1)), -1, 30.0),  # refund only: negative net spend
            ("o5", "c", _ts(dt.date(2024, 1, 1)), 1, 50.0),  # long before
        ],
    )
    expected = spark.createDataFrame([("a", 25.0), ("b", -30.0)], "persona_id string, label double")
    assert_df_equality(label_frame(orders, c, end), expected, ignore_row_order=True, ignore_nullable=True)


def test_labels_use_the_features_local_dates_so_no_order_is_on_both_sides(spark):
    # In New York, 2024-12-31 03:00 UTC is still the cutoff day (2024-12-30, 22:00): the
    # features count it, so the label must not; 2025-07-01 03:00 UTC is the last label day.
    # Labels used to take the session (UTC) date: the first order was counted twice and
    # the second one lost.
    c, end, ny = dt.date(2024, 12, 30), S, "America/New_York"
    rows = [
        ("o1", "a", dt.datetime(2024, 12, 31, 3, 0), 1, 100.0),
        ("o2", "a", dt.datetime(2025, 7, 1, 3, 0), 1, 7.0),
    ]
    orders = _orders(spark, rows, tz=ny)
    personas = spark.createDataFrame([("a", dt.datetime(2024, 1, 1))], PERSONAS)
    session_tz = spark.conf.get("spark.sql.session.timeZone")
    feats = customer_value_features(orders, personas, c, 6, ny, session_tz)
    assert [(r["monetary"], r["orders_lifetime"]) for r in feats.collect()] == [(100.0, 1)]
    assert [(r["persona_id"], r["label"]) for r in label_frame(orders, c, end).collect()] == [("a", 7.0)]


def test_planted_future_purchase_is_in_the_label_never_in_the_features(spark):
    w = clv_windows(S, 6, train_cycles=2)
    (train_cutoff, holdout_cutoff), (older_cutoff, _) = w["train"]
    planted_day = holdout_cutoff + dt.timedelta(days=1)
    base = [
        ("o1", "p", _ts(older_cutoff - dt.timedelta(days=10)), 1, 40.0),  # history before every cutoff
        ("o2", "p", _ts(train_cutoff + dt.timedelta(days=30)), 1, 60.0),  # the newest training label
        ("o3", "q", _ts(older_cutoff - dt.timedelta(days=20)), 1, 15.0),
    ]
    planted = ("o4", "p", _ts(planted_day), 1, 10_000.0)  # after every training label window
    personas = spark.createDataFrame(
        [("p", dt.datetime(2020, 1, 1)), ("q", dt.datetime(2020, 1, 1)), ("v", dt.datetime(2020, 1, 1))], PERSONAS
    )
    session_tz = spark.conf.get("spark.sql.session.timeZone")

    def frames(rows):
        orders = _orders(spark, rows)
        return {
            c: training_frame(customer_value_features(orders, personas, c, 6, "UTC", session_tz), orders, c, e)
            for c, e in [*w["train"], w["holdout"]]
        }

    without, with_planted = frames(base), frames([*base, planted])
    for c, _ in w["train"]:  # training rows: identical with or without the planted order
        assert_df_equality(with_planted[c], without[c], ignore_row_order=True, ignore_nullable=True)
    labels = {c: {r["persona_id"]: r["label"] for r in df.collect()} for c, df in with_planted.items()}
    assert labels == {
        older_cutoff: {"p": 0.0, "q": 0.0},
        train_cutoff: {"p": 60.0, "q": 0.0},
        holdout_cutoff: {"p": 10_000.0, "q": 0.0},
    }
    holdout_features = with_planted[holdout_cutoff].where("persona_id = 'p'").first()
    assert (holdout_features["revenue_lifetime"], holdout_features["orders_lifetime"]) == (100.0, 2)


def test_training_features_equal_the_feature_table(spark, base_config):
    """customer_value_features must match build's values for the same customers (no train/score skew)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    from segengine.contract import spark_schema
    from segengine.features.build import assemble_features

    cutoff = dt.date(2025, 1, 31)
    lines = [
        # c1: purchases before and in the cycle, a partial refund, a multi-line order, a later order.
        ("O1", 1, "c1", dt.datetime(2024, 3, 1, 10), "web", "P1", 2, 50.0),
        ("O2", 1, "c1", dt.datetime(2024, 9, 15, 10), "app", "P2", 1, 20.0),
        ("O2", 2, "c1", dt.datetime(2024, 9, 15, 10), "app", "P1", 3, 10.5),
        ("R1", 1, "c1", dt.datetime(2024, 9, 20, 10), "web", "P2", -1, 20.0),
        ("O3", 1, "c1", dt.datetime(2025, 2, 1, 0, 30), "web", "P1", 1, 50.0),
        # c2: one old purchase only (lapsed: no purchase in the cycle).
        ("O4", 1, "c2", dt.datetime(2024, 1, 2, 9), "store", "P2", 1, 20.0),
        # r1: a refund only (not a customer); late: created after the cutoff; ghost: no persona row.
        ("R2", 1, "r1", dt.datetime(2024, 12, 1, 9), "web", "P1", -1, 50.0),
        ("O5", 1, "late", dt.datetime(2024, 12, 1, 9), "web", "P1", 1, 50.0),
        ("O6", 1, "ghost", dt.datetime(2024, 12, 1, 9), "web", "P1", 1, 50.0),
    ]
    none10 = (None,) * 10
    personas = [
        ("c1", "c1@x.com", None, None, dt.datetime(2024, 1, 1), *none10),
        ("c2", "c2@x.com", None, None, dt.datetime(2024, 1, 1), *none10),
        ("r1", "r1@x.com", None, None, dt.datetime(2024, 1, 1), *none10),
        ("late", "l@x.com", None, None, dt.datetime(2025, 3, 1), *none10),
    ]
    raw_events = StructType([f for f in spark_schema("events").fields if f.name != "event_date"])
    bronze = {
        "personas": spark.createDataFrame(personas, spark_schema("personas")),
        "order_lines": spark.createDataFrame(lines, spark_schema("order_lines")),
        "products": spark.createDataFrame(
            [("P1", "Runner", "Shoes", "Acme", 50.0), ("P2", "Tote", "Bags", "Bolt", 20.0)], spark_schema("products")
        ),
        "events": spark.createDataFrame([], raw_events).withColumn("event_date", F.to_date("event_ts")),
    }
    fconf = base_config.features
    session_tz = spark.conf.get("spark.sql.session.timeZone")
    table = assemble_features(
        bronze["personas"],
        bronze["order_lines"],
        bronze["products"],
        bronze["events"],
        cutoff,
        fconf,
        session_tz,
    ).where("persona_type = 'customer'")
    orders = order_facts(bronze["order_lines"], fconf.timezone, session_tz)
    ours = customer_value_features(orders, bronze["personas"], cutoff, fconf.cycle_months, fconf.timezone, session_tz)
    types = dict(ours.dtypes)
    expected = table.select(*[F.col(c).cast(types[c]) for c in VALUE_COLUMNS])
    assert_df_equality(ours.select(*VALUE_COLUMNS), expected, ignore_row_order=True, ignore_nullable=True)
    assert sorted(r["persona_id"] for r in ours.collect()) == ["c1", "c2"]


def test_model_inputs_are_stationary_and_catalog_backed():
    inputs = {name: sources for name, _, sources in clv_inputs()}
    # Lifetime totals and tenure grow with the recorded history: only as a rate.
    assert "revenue_lifetime" not in inputs and "tenure_days" not in inputs and "orders_lifetime" not in inputs
    assert inputs["lifetime_spend_30d"] == ("revenue_lifetime", "tenure_days")
    assert inputs["cutoff_month"] == ("snapshot_date",)
    # An input is used only when all its columns are there.
    assert clv_feature_columns(["monetary", "tenure_days"]) == ["monetary"]
    assert clv_feature_columns(["monetary", "revenue_lifetime", "tenure_days"]) == [
        "monetary",
        "revenue_lifetime",
        "tenure_days",
    ]


# ------------------------------------------------------------------ training end to end

HISTORY_START = dt.date(2024, 4, 1)


def _bronze_rows(n: int = 60) -> tuple[list[tuple], list[tuple]]:
    """``n`` customers buying from 2024-04-01 to 2025-06-30, each at a steady rate and basket."""
    import numpy as np

    rng = np.random.default_rng(3)
    personas, lines = [], []
    for i in range(n):
        pid = f"c{i:03d}"
        personas.append((pid, f"{pid}@x.com", None, None, dt.datetime(2024, 1, 1), *(None,) * 10))
        every = int(rng.choice([7, 20, 45, 120]))
        basket = float(rng.choice([15.0, 40.0, 120.0]))
        day = HISTORY_START + dt.timedelta(days=int(rng.integers(0, 30)))
        k = 0
        while day <= S:
            units = int(rng.integers(1, 4))
            lines.append((f"{pid}-{k}", 1, pid, _ts(day, int(rng.integers(0, 24))), "web", "P1", units, basket))
            day += dt.timedelta(days=max(1, int(rng.normal(every, every * 0.3))))
            k += 1
    # The history is exactly 2024-04-01 .. 2025-06-30.
    lines += [
        ("first", 1, "c000", _ts(HISTORY_START), "web", "P1", 1, 15.0),
        ("last", 1, "c000", _ts(S), "web", "P1", 1, 15.0),
    ]
    return personas, lines


@pytest.fixture(scope="module")
def two_layouts(spark, base_config, tmp_path_factory):
    """The same bronze rows written in two layouts, a CLV model trained on each.

    Layout A: one file, ingested with 2 shuffle partitions. Layout B: the rows shuffled
    into 7 files, trained with 5 shuffle partitions.
    """
    import logging

    from segengine.contract import spark_schema
    from segengine.lake import Lake
    from segengine.models.clv import customer_value_features, train_clv, with_btyd_summary
    from segengine.models.tracking import configure_mlflow, load_champion

    personas, lines = _bronze_rows()
    clv = base_config.clv.replace(algorithm="rf", num_trees=4, max_depth=4, min_instances_per_node=2, train_cycles=4)
    features = base_config.features.replace(cycle_months=3)
    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append
    logger = logging.getLogger("segengine.models.clv")
    logger.addHandler(handler)
    default_partitions = spark.conf.get("spark.sql.shuffle.partitions")
    out: dict[str, object] = {"records": records}
    try:
        for name, files, shuffle in (("a", 1, "2"), ("b", 7, "5")):
            cfg = base_config.replace(
                warehouse=str(tmp_path_factory.mktemp(f"layout_{name}") / "warehouse"),
                clv=clv,
                features=features,
            )
            lake = Lake.open(spark, cfg)
            spark.conf.set("spark.sql.shuffle.partitions", shuffle)
            for table, rows in (("personas", personas), ("order_lines", lines)):
                df = spark.createDataFrame(rows, spark_schema(table))
                df = df.coalesce(1) if files == 1 else df.repartition(files)
                lake.write(df, table, mode="append")
            summary = train_clv(spark, lake, cfg, S)
            configure_mlflow(cfg)
            model = load_champion(cfg, cfg.clv.model_name).model
            session_tz = spark.conf.get("spark.sql.session.timeZone")
            orders = order_facts(lake.read("order_lines"), "UTC", session_tz)
            at_s = customer_value_features(orders, lake.read("personas"), S, 3, "UTC", session_tz)
            at_s = with_btyd_summary(at_s, orders, S, cfg.clv.btyd_unit_days)  # the model's BG/NBD inputs
            predictions = {r["persona_id"]: r["clv_prediction"] for r in model.transform(at_s).collect()}
            out[name] = {"config": cfg, "lake": lake, "summary": summary, "predictions": predictions}
    finally:
        spark.conf.set("spark.sql.shuffle.partitions", default_partitions)
        logger.removeHandler(handler)
    return out


def test_same_rows_in_another_layout_give_the_same_clv_model(two_layouts):
    a, b = two_layouts["a"], two_layouts["b"]
    assert len(a["predictions"]) == 60
    assert b["predictions"].keys() == a["predictions"].keys()
    for pid, value in a["predictions"].items():
        assert b["predictions"][pid] == pytest.approx(value, abs=1e-9), pid
    for who in ("model", "last_cycle"):
        for metric, value in a["summary"]["holdout"][who].items():
            assert b["summary"]["holdout"][who][metric] == pytest.approx(value, abs=1e-9), (who, metric)


def test_an_empty_training_window_is_a_warning_with_iso_dates(two_layouts):
    messages = [r.getMessage() for r in two_layouts["records"] if r.levelname == "WARNING"]
    # The oldest cutoff, 2024-03-30, is before the first order: no customers there.
    expected = (
        "CLV 2025-06-30: train window (2024-03-30, 2024-06-30]: no customers at its cutoff "
        "(order history 2024-04-01 .. 2025-06-30); it adds nothing to the fit"
    )
    assert messages.count(expected) == 2  # once per layout
    assert not any("datetime.date" in m for m in messages)


def test_a_cycle_longer_than_the_history_is_a_clear_error(spark, two_layouts):
    from segengine.errors import ModelError
    from segengine.models.clv import train_clv

    cfg = two_layouts["a"]["config"]
    longer = cfg.replace(features=cfg.features.replace(cycle_months=18))
    with pytest.raises(ModelError) as err:
        train_clv(spark, two_layouts["a"]["lake"], longer, S)
    assert str(err.value) == (
        "CLV: the holdout cutoff 2023-12-30 (snapshot 2025-06-30 minus features.cycle_months=18) is before the "
        "first order (order history: 2024-04-01 .. 2025-06-30): the cycle is longer than the history; use a "
        "shorter features.cycle_months or a later snapshot date"
    )


def test_training_windows_without_customers_are_a_clear_error(spark, two_layouts):
    from segengine.errors import ModelError
    from segengine.models.clv import train_clv

    cfg = two_layouts["a"]["config"]
    year = cfg.replace(
        features=cfg.features.replace(cycle_months=12),
        clv=cfg.clv.replace(train_cycles=1, cutoff_step_months=12),
    )
    with pytest.raises(ModelError) as err:
        train_clv(spark, two_layouts["a"]["lake"], year, S)
    message = str(err.value)
    assert message.startswith(
        "CLV: no customers to learn from (customers per train window (2023-06-30, 2024-06-30]: 0; holdout window "
        "(2024-06-30, 2025-06-30]: 60); the order history is 2024-04-01 .. 2025-06-30"
    )
    assert "datetime.date" not in message


def test_monthly_cutoffs_fall_in_every_calendar_month():
    w = clv_windows(S, 6, train_cycles=2, step_months=1)
    assert len(w["train"]) == len(w["final"]) == 12
    assert w["train"][0] == (dt.date(2024, 6, 30), dt.date(2024, 12, 30))
    assert w["train"][1] == (dt.date(2024, 5, 30), dt.date(2024, 11, 30))
    assert w["final"][0] == w["holdout"] and w["final"][1] == (dt.date(2024, 11, 30), dt.date(2025, 5, 30))
    assert sorted(c.month for c, _ in w["train"]) == list(range(1, 13))
    # No training label reaches into the holdout window.
    assert max(end for _, end in w["train"]) <= w["holdout"][0]
    with pytest.raises(ConfigError, match="cutoff_step_months"):
        clv_windows(S, 6, step_months=0)


def test_bgnbd_algorithm_registers_the_btyd_model_alone(spark, two_layouts):
    from pyspark.sql import functions as F

    from segengine.models.btyd import btyd_predict
    from segengine.models.clv import (
        btyd_stage,
        customer_value_features,
        fit_btyd_stage,
        train_clv,
        with_btyd_summary,
    )
    from segengine.models.tracking import configure_mlflow, load_champion

    cfg = two_layouts["a"]["config"]
    cfg = cfg.replace(clv=cfg.clv.replace(algorithm="bgnbd", model_name="clv-bgnbd"))
    lake = two_layouts["a"]["lake"]
    summary = train_clv(spark, lake, cfg, S)
    assert summary["algorithm"] == "bgnbd" and summary["holdout"]["model"]["customers"] == 60
    configure_mlflow(cfg)
    model = load_champion(cfg, "clv-bgnbd").model
    assert [type(s).__name__ for s in model.stages] == ["BtydModel", "SQLTransformer"]
    session_tz = spark.conf.get("spark.sql.session.timeZone")
    orders = order_facts(lake.read("order_lines"), "UTC", session_tz)
    at_s = with_btyd_summary(
        customer_value_features(orders, lake.read("personas"), S, 3, "UTC", session_tz), orders, S, 7.0
    )
    got = {r["persona_id"]: r["clv_prediction"] for r in model.transform(at_s).collect()}
    # The registered stage is the BG/NBD + Gamma-Gamma fitted on the history up to S,
    # its prediction the expected spend in (S, S + 3 months].
    stage = fit_btyd_stage(orders, S, cfg)
    assert btyd_stage(model).params_of() == stage.params_of()
    horizon = F.lit(float((shift_months(S, 3) - S).days) / 7.0)
    want = {
        r["persona_id"]: r["btyd_expected_spend"] for r in btyd_predict(at_s, *stage.params_of(), horizon).collect()
    }
    assert got.keys() == want.keys()
    for pid, value in want.items():
        assert got[pid] == pytest.approx(max(value, 0.0), rel=1e-9), pid
