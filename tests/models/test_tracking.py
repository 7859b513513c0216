"""MLflow round trip: train both segment models and CLV, register, load by alias, score.

One module-scoped training run (tiny data, few iterations) feeds every test here.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from segengine.errors import ModelError
from segengine.models.clv import clv_windows

SNAPSHOT = dt.date(2025, 6, 30)


@pytest.fixture(scope="module")
def trained(spark, base_config, tmp_path_factory, synth):
    import mlflow

    AGREED, SCHEMA, SNAPSHOT, synthetic_rows = synth.AGREED, synth.SCHEMA, synth.SNAPSHOT, synth.synthetic_rows

    from segengine.features.catalog import CATALOG, Attribute
    from segengine.lake import Lake
    from segengine.models.clv import score_clv, train_clv
    from segengine.models.segments import score_segments, train_segments

    tmp = tmp_path_factory.mktemp("models")
    cfg = base_config.replace(
        warehouse=str(tmp / "warehouse"),
        mlflow=base_config.mlflow.replace(tracking_uri=f"sqlite:///{tmp / 'mlflow.db'}"),
        segments=base_config.segments.replace(k=4, max_iter=5, b2b_k=3),
        clv=base_config.clv.replace(max_iter=5, max_depth=3),
    )
    before = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    patch = pytest.MonkeyPatch()
    for name, typ in AGREED.items():
        if name not in CATALOG:
            patch.setitem(CATALOG, name, Attribute(name, typ, name))
    lake = Lake.open(spark, cfg)
    rows = synthetic_rows(200, seed=5)
    lake.write(spark.createDataFrame(rows, SCHEMA), "customer_features", mode="append")
    rng = np.random.default_rng(1)
    orders = []
    start = dt.datetime(2024, 1, 1)
    for r in rows:
        if r[2] != "customer":
            continue
        for j in range(3):
            ts = start + dt.timedelta(days=int(rng.integers(0, 545)), hours=int(rng.integers(0, 24)))
            orders.append((f"{r[0]}-{j}", 1, r[0], ts, "web", "P1", 1, float(r[5]) / 3))
    lake.write(
        spark.createDataFrame(
            orders,
            "order_id string, line_no int, persona_id string, order_ts timestamp, channel string, "
            "product_id string, quantity int, unit_price double",
        ),
        "order_lines",
        mode="append",
    )
    cutoffs = []

    def builder(_spark, _lake, _config, cutoff):
        cutoffs.append(cutoff)
        return spark.createDataFrame(synthetic_rows(200, seed=5, snapshot=cutoff), SCHEMA)

    def quiet_builder(_spark, _lake, _config, cutoff):
        return spark.createDataFrame(synthetic_rows(200, seed=5, snapshot=cutoff), SCHEMA)

    out = {
        "quiet_builder": quiet_builder,
        "config": cfg,
        "lake": lake,
        "train_segments": train_segments(spark, lake, cfg, SNAPSHOT),
        "score_segments": score_segments(spark, lake, cfg, SNAPSHOT),
        "train_clv": train_clv(spark, lake, cfg, SNAPSHOT, feature_builder=builder),
        "score_clv": score_clv(spark, lake, cfg, SNAPSHOT),
        "cutoffs": cutoffs,
    }
    yield out
    patch.undo()
    mlflow.set_tracking_uri(before[0])
    mlflow.set_registry_uri(before[1])


def test_training_registers_each_model_with_champion_alias_and_feature_tag(trained):
    from segengine.models.tracking import list_models

    rows = {r["name"]: r for r in list_models(trained["config"])}
    cfg = trained["config"]
    for name in (cfg.segments.model_name, cfg.segments.b2b_model_name, cfg.clv.model_name):
        assert rows[name]["aliases"] == ["champion"]
        assert rows[name]["features"]
    assert rows[cfg.segments.model_name]["features"] == (
        "recency_days:integer,frequency:integer,monetary:double,tenure_days:integer"
    )


def test_champion_loads_by_alias_with_the_custom_naming_stage(trained):
    from segengine.models.segments import namer_of
    from segengine.models.tracking import load_champion

    loaded = load_champion(trained["config"], trained["config"].segments.model_name)
    assert loaded.version == trained["train_segments"]["version"]
    assert set(namer_of(loaded.model).getNames()) == set(trained["train_segments"]["segments"])


def test_scoring_fills_model_columns_for_customers_only(trained):
    df = trained["lake"].read("customer_features", partitions={"snapshot_date": SNAPSHOT})
    assert df.count() == 210  # a rerun replaces the partition: no duplicates
    customers = df.filter("persona_type = 'customer'")
    assert customers.filter("ai_segment IS NULL OR b2b_segment IS NULL OR clv_predicted IS NULL").count() == 0
    assert (
        df.filter("persona_type <> 'customer' AND (ai_segment IS NOT NULL OR clv_percentile IS NOT NULL)").count() == 0
    )
    lo, hi = customers.agg({"clv_percentile": "min"}).first()[0], customers.agg({"clv_percentile": "max"}).first()[0]
    # percent_rank: customers tied at the top share the top rank (tree ensembles do tie).
    n = customers.count()
    top = customers.agg({"clv_predicted": "max"}).first()[0]
    tied = customers.filter(customers.clv_predicted == top).count()
    assert (lo, hi) == (0.0, pytest.approx(100.0 * (n - tied) / (n - 1)))
    assert customers.filter("clv_predicted < 0").count() == 0


def test_clv_features_are_built_once_per_cutoff(trained):
    cfg = trained["config"]
    w = clv_windows(SNAPSHOT, cfg.features.cycle_months, cfg.clv.train_cycles, cfg.clv.cutoff_step_months)
    # Every distinct cutoff of the holdout, training and final windows once, newest first
    # (monthly cutoffs: the final fit's overlap the training ones but are not all of them).
    cutoffs = {w["holdout"][0], *[c for c, _ in w["train"]], *[c for c, _ in w["final"]]}
    assert trained["cutoffs"] == sorted(cutoffs, reverse=True)
    assert len(w["train"]) == cfg.clv.train_cycles * cfg.features.cycle_months // cfg.clv.cutoff_step_months


def test_clv_reports_model_and_last_cycle_baseline_on_the_holdout(trained):
    holdout = trained["train_clv"]["holdout"]
    assert set(holdout) == {"model", "last_cycle"}
    for m in holdout.values():
        assert set(m) == {"mae", "rmse", "predicted_total", "actual_total", "customers"}
        assert m["customers"] == 200
        assert m["rmse"] >= m["mae"] >= 0
    assert holdout["model"]["actual_total"] == holdout["last_cycle"]["actual_total"]


def test_scoring_refuses_a_model_whose_features_left_the_catalog(trained, spark):
    from mlflow import MlflowClient

    from segengine.models.segments import score_segments
    from segengine.models.tracking import FEATURES_TAG, champion_version

    cfg = trained["config"]
    mv = champion_version(cfg, cfg.segments.model_name)
    good = mv.tags[FEATURES_TAG]
    client = MlflowClient()
    client.set_model_version_tag(cfg.segments.model_name, mv.version, FEATURES_TAG, good + ",gone_feature:double")
    try:
        with pytest.raises(ModelError, match="gone_feature is no longer in the catalog"):
            score_segments(spark, trained["lake"], cfg, SNAPSHOT)
    finally:
        client.set_model_version_tag(cfg.segments.model_name, mv.version, FEATURES_TAG, good)


def test_first_training_makes_every_model_champion_and_says_so(trained):
    promotions = [*trained["train_segments"]["promotion"].values(), trained["train_clv"]["promotion"]]
    for p in promotions:
        assert (p["status"], p["alias"], p["champion_version"]) == ("first", "champion", None)
        assert "vs no champion before" in p["line"] and p["line"].endswith("-> champion")
    assert trained["train_segments"]["promotion"]["segments"]["metric"] == "silhouette"
    assert trained["train_clv"]["promotion"]["metric"] == "holdout_mae"


def _retrain_clv(trained, spark, force=False, **clv):
    from segengine.models.clv import train_clv

    cfg = trained["config"]
    cfg = cfg.replace(clv=cfg.clv.replace(**clv))
    return train_clv(
        spark, trained["lake"], cfg, SNAPSHOT, feature_builder=trained["quiet_builder"], force_promote=force
    )


def test_a_worse_clv_model_is_challenger_until_forced_and_rolls_back_by_alias(trained, spark):
    from mlflow import MlflowClient

    from segengine.models.clv import score_clv
    from segengine.models.tracking import PROMOTION_TAG, promote_version

    cfg = trained["config"]
    name = cfg.clv.model_name
    constant = {"min_instances_per_node": 100_000}  # a single leaf: the mean for everyone

    worse = _retrain_clv(trained, spark, **constant)["promotion"]
    assert (worse["version"], worse["status"], worse["alias"], worse["champion_version"]) == (
        "2",
        "challenger",
        "challenger",
        "1",
    )
    # The champion is judged on the same holdout rows by the model its run fitted without
    # them: its value is its own run's holdout MAE (the final model saw those labels).
    assert worse["champion_value"] == pytest.approx(trained["train_clv"]["holdout"]["model"]["mae"], abs=1e-9)
    assert worse["value"] > worse["champion_value"]
    assert worse["line"] == (
        f"{name} v2: holdout_mae {worse['value']:.6g} vs champion v1 {worse['champion_value']:.6g} "
        "(lower is better) -> challenger; champion stays v1"
    )

    forced = _retrain_clv(trained, spark, force=True, **constant)["promotion"]
    assert (forced["version"], forced["status"], forced["alias"]) == ("3", "forced", "champion")
    assert MlflowClient().get_model_version(name, "3").tags[PROMOTION_TAG] == "forced"

    assert promote_version(cfg, name, 1) == "3"  # rollback: move the alias back
    assert score_clv(spark, trained["lake"], cfg, SNAPSHOT)["model_version"] == "1"
