"""Recommendations: interactions, id mapping, ALS + fallback, metrics, train/score round trip."""

from __future__ import annotations

import datetime as dt
import math

import pytest
from chispa import assert_df_equality
from pyspark.sql import functions as F

from segengine.errors import ConfigError, ModelError
from segengine.models import recommend as rec
from segengine.models.recommend import evaluation as rec_evaluation

D = dt.date(2025, 6, 30)
OL_SCHEMA = "order_id string, line_no int, persona_id string, order_ts timestamp, channel string, product_id string, quantity int, unit_price double"
EV_SCHEMA = "event_id string, persona_id string, cookie_id string, event_ts timestamp, event_type string, product_id string, session_id string, duration_s double, event_date date"


def ts(day: dt.date, hour: int = 12) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, hour)


def orders(spark, rows):
    """rows: (persona_id, product_id, quantity, date)."""
    data = [(f"o{i}", 1, p, ts(d), "web", prod, q, 10.0) for i, (p, prod, q, d) in enumerate(rows)]
    return spark.createDataFrame(data, OL_SCHEMA)


def events(spark, rows):
    """rows: (persona_id, cookie_id, event_type, product_id, date)."""
    data = [(f"e{i}", p, c, ts(d), t, prod, "s", 1.0, d) for i, (p, c, t, prod, d) in enumerate(rows)]
    return spark.createDataFrame(data, EV_SCHEMA)


def products(spark, n):
    return spark.createDataFrame(
        [(f"P{i:02d}", f"name{i}", "cat", "brand", 1.0) for i in range(n)],
        "product_id string, name string, category string, brand string, price double",
    )


@pytest.fixture
def cfg(config):
    return config.recommend.replace(rank=4, max_iter=5, reg_param=0.1, alpha=5.0, block_size=64)


# ----------------------------------------------------------------- id mapping


def test_index_ids_are_consecutive_sorted_and_round_trip(spark):
    df = spark.createDataFrame([(x,) for x in ["c", "a", "b", "a", None, "e", "d"]], "pid string").repartition(3)
    idx = rec.index_ids(df, "pid", "i")
    expected = spark.createDataFrame([("a", 0), ("b", 1), ("c", 2), ("d", 3), ("e", 4)], "pid string, i int")
    assert_df_equality(idx, expected, ignore_row_order=True, ignore_nullable=True)
    back = df.where(F.col("pid").isNotNull()).join(idx, "pid").select("i").join(idx, "i").select("pid")
    assert sorted(r.pid for r in back.collect()) == sorted(["c", "a", "b", "a", "e", "d"])


# ----------------------------------------------------------------- interactions


def test_interactions_decay_refunds_and_event_weights(spark, cfg):
    half = dt.date(2025, 6, 30) - dt.timedelta(days=cfg.recency_half_life_days)
    ol = orders(
        spark,
        [
            ("u1", "P01", 2, D),  # 2 units today: 2.0
            ("u1", "P02", 4, half),  # 4 units one half-life ago: 2.0
            ("u1", "P03", 1, D),
            ("u1", "P03", -1, D),  # refunded: strength 0, still "bought"
            ("u2", "P01", 1, D + dt.timedelta(days=1)),  # after the snapshot: ignored
        ],
    )
    ev = events(
        spark,
        [
            ("u2", None, "product_view", "P02", D),
            ("u2", None, "add_to_cart", "P02", D),
            (None, "ck9", "product_view", "P01", D),  # cookie-only, resolved via personas
            ("u2", None, "page_view", None, D),  # not a product signal
        ],
    )
    personas = spark.createDataFrame([("u3", "ck9")], "persona_id string, cookie_id string")
    got = rec.interactions(ol, ev, D, cfg, personas).withColumn("strength", F.round("strength", 6))
    expected = spark.createDataFrame(
        [
            ("u1", "P01", 2.0, True),
            ("u1", "P02", 2.0, True),
            ("u1", "P03", 0.0, True),
            ("u2", "P02", round(cfg.view_weight + cfg.cart_weight, 6), False),
            ("u3", "P01", cfg.view_weight, False),
        ],
        "persona_id string, product_id string, strength double, bought boolean",
    )
    assert_df_equality(got, expected, ignore_row_order=True, ignore_nullable=True)
    assert rec.training_rows(got).where("product_id = 'P03'").count() == 0


# ----------------------------------------------------------------- metrics


def test_ranking_metrics_match_hand_computation(spark):
    recs = spark.createDataFrame(
        [("u1", "A", 1), ("u1", "B", 2), ("u1", "C", 3), ("u2", "A", 1), ("u2", "D", 2), ("u2", "E", 3)],
        "persona_id string, product_id string, rank int",
    )
    truth = spark.createDataFrame(
        [("u1", "A"), ("u1", "C"), ("u2", "E"), ("u3", "A")], "persona_id string, product_id string"
    )
    m = rec.ranking_metrics(recs, truth, k=3, catalog_size=10)
    # u1: hits at 1,3 -> P=2/3, R=1, AP=(1/1 + 2/3)/2. u2: hit at 3 -> P=1/3, R=1, AP=(1/3)/1. u3: nothing.
    assert m["precision_at_k"] == pytest.approx((2 / 3 + 1 / 3 + 0) / 3)
    assert m["recall_at_k"] == pytest.approx((1 + 1 + 0) / 3)
    assert m["map_at_k"] == pytest.approx(((1 + 2 / 3) / 2 + 1 / 3 + 0) / 3)
    assert m["coverage"] == pytest.approx(5 / 10)
    assert m["users"] == 3


def test_percentile_score_counts_cut_points_below(spark):
    df = spark.createDataFrame([(0.0,), (0.5,), (2.0,)], "p double")
    got = rec.percentile_score(df, "p", [0.1, 0.5, 1.0]).orderBy("p").select("score").collect()
    assert [r.score for r in got] == [1, 2, 4]


# ----------------------------------------------------------------- ALS + fallback


@pytest.fixture(scope="module")
def small_world(spark):
    """12 products; two taste groups (P00-P05 and P06-P11); u9 is cold start."""
    rows = []
    for u in range(8):
        group = range(0, 6) if u % 2 == 0 else range(6, 12)
        for j, p in enumerate(group):
            if (u + j) % 3 != 0:
                rows.append((f"u{u}", f"P{p:02d}", 1 + j % 2, D - dt.timedelta(days=j * 10)))
    ol = orders(spark, rows)
    targets = spark.createDataFrame(
        [(f"u{u}", "evens" if u % 2 == 0 else "odds") for u in range(8)] + [("u9", "evens")],
        "persona_id string, segment string",
    )
    return ol, targets, products(spark, 12)


@pytest.fixture(scope="module")
def trained(small_world, base_config):
    """One ALS fit on the small world, shared by the tests that only read it."""
    cfg = base_config.recommend.replace(rank=4, max_iter=5, reg_param=0.1, alpha=5.0, block_size=64)
    inter = rec.interactions(small_world[0], None, D, cfg).cache()
    return inter, rec.train_model(inter, cfg)


def test_recommend_gives_exactly_k_per_persona_without_bought_items_or_nan(spark, cfg, small_world, trained):
    ol, targets, prods = small_world
    inter, model = trained
    recs = rec.recommend(model, targets, inter, prods, cfg, k=5).cache()
    per = {r.persona_id: r.n for r in recs.groupBy("persona_id").agg(F.count("*").alias("n")).collect()}
    assert per == {f"u{u}": 5 for u in range(8)} | {"u9": 5}
    ranks = recs.groupBy("persona_id").agg(F.sort_array(F.collect_list("rank")).alias("r")).collect()
    assert all(r.r == [1, 2, 3, 4, 5] for r in ranks)
    bought = inter.where("bought").select("persona_id", "product_id")
    assert recs.join(bought, ["persona_id", "product_id"]).count() == 0
    assert recs.where(F.col("score").isNull() | (F.col("score") < 1) | (F.col("score") > 100)).count() == 0
    # u9 has no interactions: the segment fallback serves it, capped at fallback_max_score.
    cold = recs.where("persona_id = 'u9'").collect()
    assert {r.recommender for r in cold} == {rec.RECOMMENDER_SEGMENT}
    assert max(r.score for r in cold) <= cfg.fallback_max_score
    # Known users get ALS rows first.
    assert recs.where("persona_id = 'u0' and rank = 1").first().recommender == rec.RECOMMENDER_ALS


def test_cold_start_fallback_prefers_segment_favourites(spark, cfg, small_world):
    ol, targets, prods = small_world
    inter = rec.interactions(ol, None, D, cfg)
    cold = spark.createDataFrame([("u9", "evens"), ("u10", "odds")], "persona_id string, segment string")
    recs = rec.recommend(None, targets.unionByName(cold.where("persona_id = 'u10'")), inter, prods, cfg, k=6)
    evens = {r.product_id for r in recs.where("persona_id = 'u9'").collect()}
    odds = {r.product_id for r in recs.where("persona_id = 'u10'").collect()}
    assert evens == {f"P{p:02d}" for p in range(0, 6)}
    assert odds == {f"P{p:02d}" for p in range(6, 12)}


@pytest.mark.parametrize("exclude", [True, False])
def test_vectorized_scorer_matches_mllib_recommend_for_user_subset(spark, cfg, small_world, trained, exclude):
    ol, targets, prods = small_world
    inter, model = trained
    both = {}
    for scorer in rec.SCORERS:
        c = cfg.replace(scorer=scorer, exclude_purchased=exclude)
        recs = rec.recommend(model, targets, inter, prods, c, k=5, fallback=False)
        both[scorer] = sorted((r.persona_id, r.rank, r.product_id, r.score) for r in recs.collect())
    assert len(both["vectorized"]) == 8 * 5  # u9 is unknown to ALS: no rows without the fallback
    assert both["vectorized"] == both["mllib"]


def test_vectorized_scorer_masks_bought_items_and_breaks_ties_by_product_id():
    import numpy as np
    import pyarrow as pa

    # 4 items, rank 2; items 1 and 2 score the same for every user.
    factors = np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.0, 1.0]], dtype=np.float32)
    run = rec._top_k_arrow(factors, np.array([10, 11, 12, 13]), ["A", "B", "C", "D"], k=3)
    batch = pa.RecordBatch.from_arrays(
        [
            pa.array(["x", "y", "z"]),
            pa.array([[1.0, 1.0], [2.0, 0.0], [0.0, 1.0]], type=pa.list_(pa.float32())),
            pa.array([None, [10], [13, 11, 12, 99]], type=pa.list_(pa.int64())),
        ],
        names=["persona_id", "features", "_bought"],
    )
    out = pa.Table.from_batches(list(run(iter([batch])))).to_pylist()
    got = [(r["persona_id"], r["_r"], r["product_id"], round(r["prediction"], 3), r["_n"]) for r in out]
    assert got == [
        # x: A, B, C, D all score 1 -> ties broken by item id (product order)
        ("x", 1, "A", 1.0, 3),
        ("x", 2, "B", 1.0, 3),
        ("x", 3, "C", 1.0, 3),
        # y bought A: B and C tie at 1.0, then D
        ("y", 1, "B", 1.0, 3),
        ("y", 2, "C", 1.0, 3),
        ("y", 3, "D", 0.0, 3),
        # z bought D, B, C (and 99, unknown to the model): only A is left
        ("z", 1, "A", 0.0, 1),
    ]


def test_unknown_scorer_is_a_clear_error(cfg):
    # Refused when the setting is made (loading or replace), before any Spark work.
    with pytest.raises(ConfigError, match=r"recommend\.scorer: 'gpu' is not one of vectorized, mllib"):
        cfg.replace(scorer="gpu")


def test_exclude_purchased_false_allows_bought_items(spark, cfg, small_world, trained):
    ol, targets, prods = small_world
    keep = cfg.replace(exclude_purchased=False)
    inter, model = trained
    recs = rec.recommend(model, targets.where("persona_id = 'u0'"), inter, prods, keep, k=3)
    bought = inter.where("bought").select("persona_id", "product_id")
    # With bought items allowed, ALS's strongest items for u0 are the ones it bought.
    assert recs.join(bought, ["persona_id", "product_id"]).count() >= 1


def test_train_model_without_interactions_is_a_clear_error(spark, cfg):
    inter = rec.interactions(orders(spark, [("u1", "P01", -1, D)]), None, D, cfg)
    with pytest.raises(ModelError, match="nothing to train"):
        rec.train_model(inter, cfg)


# ----------------------------------------------------------------- jobs end to end


def _small_lake(lake, small_world):
    """The small world as bronze order_lines/products and a customer_features partition."""
    ol, targets, prods = small_world
    lake.write(ol, "order_lines", mode="overwrite")
    lake.write(prods, "products", mode="overwrite")
    # Feature partitions at D and at the evaluation's two training cutoffs (see _quick).
    feats = None
    for day in (D - dt.timedelta(days=30), D - dt.timedelta(days=15), D):
        part = targets.select(
            "persona_id",
            F.lit(day).alias("snapshot_date"),
            F.lit("customer").alias("persona_type"),
            F.lit("top").alias("value_tier"),
            F.col("segment").alias("ai_segment"),
        )
        feats = part if feats is None else feats.unionByName(part)
    lake.write(feats, "customer_features", mode="overwrite")


def _quick(config, **mlflow):
    # Small world history: D-50 .. D in steps of 10 days. Train <= D-30, validation (D-30, D-15], test (D-15, D].
    recommend = config.recommend.replace(
        rank=4,
        max_iter=5,
        top_k=4,
        block_size=64,
        eval_test_days=15,
        eval_validation_days=15,
        eval_bootstrap_resamples=40,
    )
    return config.replace(recommend=recommend, mlflow=config.mlflow.replace(**mlflow))


def test_train_then_score_writes_recommendations_partition(spark, lake, config, mlflow_local, small_world):
    config = _quick(config, tracking_uri=mlflow_local, experiment="test-recommend")
    _small_lake(lake, small_world)

    summary = rec.train_recommendations(spark, lake, config, D)
    assert summary["users"] == 8 and summary["items"] == 12
    ev = summary["evaluation"]
    assert set(ev) >= {"als", "popularity", "popular_in_segment", "validation", "test"}
    assert (ev["selected_on"], ev["split"]) == ("validation", "test")
    # Segments as of each window's training cutoff, never the evaluation date's.
    assert ev["segmentation"] == "ai_segment"
    assert (ev["validation"]["segments_as_of"], ev["test"]["segments_as_of"]) == ("2025-05-31", "2025-06-15")
    assert 0.0 <= ev["als"]["precision_at_k"] <= 1.0
    assert summary["model_version"] is not None
    import mlflow

    logged = mlflow.MlflowClient().get_run(summary["mlflow_run_id"])
    metrics = logged.data.metrics
    assert metrics["test_all_als_precision_at_4"] == pytest.approx(ev["als"]["precision_at_k"])
    low, high = ev["test"]["ci"]["all"]["als"]["precision_at_k"]
    assert metrics["test_all_als_precision_at_4_ci_low"] == pytest.approx(low)
    assert metrics["test_all_als_precision_at_4_ci_high"] == pytest.approx(high)
    assert metrics["validation_users_cold_start"] == ev["validation"]["users"]["cold_start"]
    assert logged.data.tags["segengine.eval_selected_on"] == "validation"

    first = rec.score_recommendations(spark, lake, config, D)
    again = rec.score_recommendations(spark, lake, config, D)  # idempotent rerun
    assert first["rows"] == again["rows"] == 9 * 4
    assert first["model_version"] == str(summary["model_version"])
    out = lake.read("recommendations", partitions={"snapshot_date": D})
    assert [f.name for f in out.schema.fields] == [f.name for f in rec.RECOMMENDATIONS_SCHEMA.fields]
    assert out.where(F.col("score").isNull() | F.isnan(F.col("score").cast("double"))).count() == 0
    assert not math.isnan(first["als_share"]) and first["als_share"] > 0.5

    # A retrain on the same data is compared with the champion's validation model on the
    # same validation users (never the test window): same rows, same seed, same precision.
    retrain = rec.train_recommendations(spark, lake, config, D)["promotion"]
    assert (retrain["status"], retrain["champion_version"]) == ("champion", str(summary["model_version"]))
    gate = ev["validation"]["metrics"]["all"]["als"]["precision_at_k"]
    assert retrain["value"] == retrain["champion_value"] == gate


def test_evaluation_without_features_says_it_has_no_segmentation(spark, lake, config, small_world, caplog):
    """No feature table: popular_in_segment is scored on one segment of everyone, and says so."""
    ol, _, prods = small_world
    lake.write(ol, "order_lines", mode="overwrite")
    lake.write(prods, "products", mode="overwrite")

    with caplog.at_level("WARNING", logger="segengine.models.recommend"):
        result = rec.evaluate(spark, lake, _quick(config), D)

    assert result["segmentation"] == "none"
    assert result["popular_in_segment"] == result["popularity"]
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    # One per window: validation (trained <= D-30) and test (trained <= D-15).
    assert [w.split(" without")[0] for w in warnings] == [
        "recommendation evaluation trained up to 2025-05-31",
        "recommendation evaluation trained up to 2025-06-15",
    ]
    assert "run `segengine features --date 2025-06-15`" in warnings[1]


def test_score_without_a_trained_model_says_how_to_train(spark, lake, config):
    with pytest.raises(ModelError, match="`segengine train recommendations --date YYYY-MM-DD`"):
        rec.score_recommendations(spark, lake, config, D)


def test_scoring_follows_the_alias_and_an_unevaluated_retrain_never_replaces_the_champion(
    spark, lake, config, small_world
):
    import shutil

    from segengine.models.tracking import promote_version

    config = _quick(config)  # MLflow store in this test's warehouse
    _small_lake(lake, small_world)
    first = rec.train_recommendations(spark, lake, config, D, evaluate_first=False)
    assert first["promotion"]["status"] == "first"
    # Nothing evaluated, so nothing to compare: the new version is the challenger.
    second = rec.train_recommendations(spark, lake, config, D, evaluate_first=False)
    assert second["model_version"] == first["model_version"] + 1
    assert second["bundle"] != first["bundle"]  # a retrain never overwrites a saved bundle
    assert (second["promotion"]["alias"], second["promotion"]["champion_version"]) == ("challenger", "1")
    assert rec.score_recommendations(spark, lake, config, D)["model_version"] == "1"
    promote_version(config, config.recommend.model_name, second["model_version"])
    assert rec.score_recommendations(spark, lake, config, D)["model_version"] == "2"
    # Roll back. The registered version carries its id mappings: the saved bundle can go.
    shutil.rmtree(first["bundle"].removeprefix("file:"))
    promote_version(config, config.recommend.model_name, first["model_version"])
    model, version = rec.load_champion_model(spark, config)
    assert version == "1" and model.items.count() == 12
    assert sorted(r["persona_id"] for r in model.users.collect()) == [f"u{u}" for u in range(8)]
    assert rec.score_recommendations(spark, lake, config, D)["rows"] == 9 * 4


def test_a_saved_but_unregistered_model_is_not_scored(spark, lake, config, small_world):
    config = _quick(config)
    _small_lake(lake, small_world)
    rec.train_recommendations(spark, lake, config, D, evaluate_first=False, log_to_mlflow=False)
    with pytest.raises(ModelError, match=r"no registered recommendation model segengine-recommend@champion"):
        rec.score_recommendations(spark, lake, config, D)


# ----------------------------------------------------------------- honest evaluation (issue 35)


@pytest.fixture(scope="module")
def popular_world(spark):
    """60 products, P00 the most popular (60 buyers) down to P59 (1 buyer); "heavy" bought P00-P44."""
    rows = [(f"b{b:02d}", f"P{i:02d}", 1, D) for i in range(60) for b in range(60 - i)]
    rows += [("heavy", f"P{i:02d}", 1, D) for i in range(45)]
    prods = spark.createDataFrame(
        [(f"P{i:02d}", f"name{i}", "cat", "brand", 1.0) for i in range(60)],
        "product_id string, name string, category string, brand string, price double",
    )
    return orders(spark, rows), prods


def test_baselines_give_k_items_to_a_user_who_bought_most_of_the_top_50(spark, cfg, popular_world):
    """The lists were cut at k + max_overfetch = 50: 45 of them bought left 5 items, not 10."""
    ol, prods = popular_world
    inter = rec.interactions(ol, None, D, cfg).cache()
    users = spark.createDataFrame(
        [("heavy", "s"), ("b30", "s"), ("b00", "s"), ("new", "s")], "persona_id string, segment string"
    )
    bought = inter.where("bought").select("persona_id", "product_id")
    expected = [f"P{i:02d}" for i in range(45, 55)]  # the 10 most popular products "heavy" has not bought

    # The production fallback (no model: everyone is cold start) was cut at 50 as well.
    served = rec.recommend(None, users, inter, prods, cfg, k=10)
    heavy = [r.product_id for r in served.where("persona_id = 'heavy'").orderBy("rank").collect()]
    assert heavy == expected
    assert [r.product_id for r in served.where("persona_id = 'b30'").orderBy("rank").collect()] == [
        f"P{i:02d}" for i in range(30, 40)
    ]

    # The evaluation's baselines: global popularity and popular-in-segment.
    global_top, seg_list = rec.fallback_lists(inter, prods, users.select("persona_id", "segment"))
    pop = rec.top_from_list(users, global_top, bought, 10, key=None)
    seg = rec.top_from_list(users, seg_list, bought, 10, key="segment")
    for recs in (pop, seg):
        heavy = [r.product_id for r in recs.where("persona_id = 'heavy'").orderBy("rank").collect()]
        assert heavy == expected
        assert {r.persona_id: r.n for r in recs.groupBy("persona_id").agg(F.count("*").alias("n")).collect()} == {
            "heavy": 10,
            "b30": 10,  # bought P00-P29
            "new": 10,
        }  # b00 bought all 60 products: nothing is left for it


def _leak_lake(spark, lake):
    """Segments "a" (buys P00, P01) and "b" (buys P10, P11); t1 moves from a to b only in D's partition.

    Windows with test_days = validation_days = 10: train <= 06-10, validation 06-11..06-20,
    test 06-21..06-30. In the test window t1 buys P10 (b's favourite) and c1, a persona with
    no history (cold start, in no feature partition), buys P00.
    """
    early = D - dt.timedelta(days=40)
    rows = [(p, prod, 1, early) for p in ("a1", "a2", "a3", "a4") for prod in ("P00", "P01")]
    rows += [(p, prod, 1, early) for p in ("b1", "b2") for prod in ("P10", "P11")]
    rows += [("t1", "P05", 1, early), ("a1", "P03", 1, D - dt.timedelta(days=15))]  # a validation purchase
    rows += [("t1", "P10", 1, D - dt.timedelta(days=5)), ("c1", "P00", 1, D - dt.timedelta(days=5))]
    lake.write(orders(spark, rows), "order_lines", mode="overwrite")
    lake.write(products(spark, 12), "products", mode="overwrite")
    seg = {"a1": "a", "a2": "a", "a3": "a", "a4": "a", "b1": "b", "b2": "b"}
    feats = []
    for day, t1 in ((D - dt.timedelta(days=25), "a"), (D - dt.timedelta(days=10), "a"), (D, "b")):
        feats += [(p, day, "customer", "top", s) for p, s in {**seg, "t1": t1}.items()]
    lake.write(
        spark.createDataFrame(
            feats, "persona_id string, snapshot_date date, persona_type string, value_tier string, ai_segment string"
        ),
        "customer_features",
        mode="overwrite",
    )


def _leak_config(config):
    recommend = config.recommend.replace(
        rank=2,
        max_iter=3,
        top_k=2,
        block_size=64,
        eval_test_days=10,
        eval_validation_days=10,
        eval_bootstrap_resamples=50,
    )
    return config.replace(recommend=recommend)


@pytest.fixture
def leak_evaluation(spark, lake, config):
    _leak_lake(spark, lake)
    return rec.evaluate(spark, lake, _leak_config(config), D)


def test_popular_in_segment_uses_the_segments_of_the_training_cutoff(leak_evaluation):
    """D's partition puts t1 in "b", whose favourite P10 is what t1 buys in the test window: a leak."""
    ev = leak_evaluation
    # t1 in "a" (as of 06-20): [P00, P01], no hit; c1 (cold start, "unknown"): the global list, a hit.
    assert ev["popular_in_segment"]["precision_at_k"] == pytest.approx(0.25)
    assert ev["test"]["metrics"]["known"]["popular_in_segment"]["precision_at_k"] == 0.0
    assert ev["test"]["segments_as_of"] == "2025-06-20"  # on or before the test window's training cutoff
    assert ev["validation"]["segments_as_of"] == "2025-06-05"


def test_cold_start_users_are_scored_and_reported_per_group(leak_evaluation):
    ev = leak_evaluation
    assert ev["test_users"] == 2 and ev["cold_start_users"] == 1
    assert ev["test"]["users"] == {"scored": 2, "known": 1, "cold_start": 1}
    cold = ev["test"]["metrics"]["cold_start"]
    # c1 is served by the fallback: the global list (its segment is unknown), P00 is a hit.
    assert cold["als"]["precision_at_k"] == cold["popularity"]["precision_at_k"] == 0.5
    assert cold["als"]["users"] == 1
    assert ev["test"]["metrics"]["known"]["popularity"]["precision_at_k"] == 0.0
    assert ev["popularity"]["precision_at_k"] == pytest.approx(0.25)  # all users: (0 + 0.5) / 2
    assert ev["validation"]["users"] == {"scored": 1, "known": 1, "cold_start": 0}
    for group in ("all", "known", "cold_start"):
        for method in rec.METHODS:
            low, high = ev["test"]["ci"][group][method]["precision_at_k"]
            point = ev["test"]["metrics"][group][method]["precision_at_k"]
            assert low <= point <= high


def test_bootstrap_intervals_are_seeded_layout_free_and_bracket_the_mean(spark):
    rows = [(f"u{i:03d}", "known" if i % 3 else "cold_start", float(i % 5 == 0), 0.5) for i in range(300)]
    df = spark.createDataFrame(rows, "persona_id string, group string, x double, y double")
    args = (["x", "y"], {"x_over_y": ("x", "y")}, 100, 7)
    one = rec.bootstrap_intervals(df, *args)
    two = rec.bootstrap_intervals(df.repartition(5).orderBy(F.rand(1)), *args)
    assert one == two
    mean = sum(r[2] for r in rows) / len(rows)
    low, high = one["all"]["x"]
    assert low < mean < high and high - low < 0.15
    assert one["all"]["y"] == [0.5, 0.5]  # a constant has a zero-width interval
    assert one["all"]["x_over_y"] == pytest.approx([2 * low, 2 * high])
    assert set(one) == {"all", "known", "cold_start"}
    assert rec.bootstrap_intervals(df, *args[:3], 8) != one  # another seed, other resamples


def test_hyperparameters_are_chosen_on_validation_and_the_test_window_is_scored_once(
    spark, lake, config, small_world, monkeypatch
):
    """Setting A wins on validation, B would win on test: A is chosen, test scored once with A."""
    _small_lake(lake, small_world)
    calls = []

    def fake_window(lake, inputs, cfg, split, train_end, end, k, compare=None):
        calls.append((split, cfg.rank, train_end.isoformat(), end.isoformat()))
        p = {("validation", 2): 0.3, ("validation", 3): 0.1, ("test", 2): 0.2, ("test", 3): 0.9}[(split, cfg.rank)]
        group = {"precision_at_k": p, "recall_at_k": p, "map_at_k": p, "coverage": 1.0, "users": 1.0}
        window = {
            "split": split,
            "window": [str(train_end), str(end)],
            "train_end": str(train_end),
            "segmentation": "none",
            "segments_as_of": None,
            "users": {"scored": 1, "known": 1, "cold_start": 0},
            "metrics": {g: {m: dict(group) for m in rec.METHODS} for g in rec.GROUPS},
            "lift": {g: {"vs_popularity": 1.0, "vs_popular_in_segment": 1.0} for g in rec.GROUPS},
        }
        return window, spark.range(1), None

    # evaluate() looks both up in the module it lives in.
    monkeypatch.setattr(rec_evaluation, "_score_window", fake_window)
    monkeypatch.setattr(rec_evaluation, "_add_intervals", lambda result, per_user, cfg: result.update(ci={}))
    ev = rec.evaluate(spark, lake, _quick(config), D, grid=rec.parse_grid("rank=2;rank=3", config.recommend))
    assert calls == [
        ("validation", 2, "2025-05-31", "2025-06-15"),
        ("validation", 3, "2025-05-31", "2025-06-15"),
        ("test", 2, "2025-06-15", "2025-06-30"),
    ]
    assert (ev["setting"], ev["params"]["rank"], ev["selected_on"]) == ("rank=2", 2, "validation")
    assert [(g["setting"], g["split"], g["precision_at_k"]) for g in ev["grid"]] == [
        ("rank=2", "validation", 0.3),
        ("rank=3", "validation", 0.1),
    ]
    assert ev["als"]["precision_at_k"] == 0.2  # the headline is the test window's, of the chosen setting


def test_grid_settings_name_tunable_fields_only(config):
    with pytest.raises(ModelError, match="'top_k' is not one of"):
        rec.parse_grid("rank=8;top_k=3", config.recommend)
    assert rec.parse_grid("rank=8,alpha=2.5; ;reg_param=1", config.recommend) == [
        {"rank": 8, "alpha": 2.5},
        {"reg_param": 1.0},
    ]
