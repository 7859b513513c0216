"""The RFMT and B2B segment pipelines on synthetic data with known structure."""

from __future__ import annotations

import pytest
from pyspark.sql import functions as F

from segengine.models.segments import (
    SegmentNamer,
    apply_segment_models,
    b2b_names,
    customers_only,
    fit_b2b_model,
    fit_rfmt_model,
    namer_of,
)

pytestmark = pytest.mark.usefixtures("agreed_catalog")


@pytest.fixture
def seg_config(config):
    return config.replace(segments=config.segments.replace(k=4, max_iter=10, b2b_k=4))


def test_namer_maps_index_to_name_and_computes_euclidean_distance(spark):
    from pyspark.ml.linalg import Vectors, VectorUDT
    from pyspark.sql.types import IntegerType, StructField, StructType

    df = spark.createDataFrame(
        [(0, Vectors.dense([3.0, 4.0])), (1, Vectors.dense([1.0, 1.0])), (2, Vectors.dense([0.0, 0.0]))],
        StructType([StructField("segment_index", IntegerType()), StructField("rfmt_scaled", VectorUDT())]),
    )
    namer = SegmentNamer(names=["A", "B"], centers=[[0.0, 0.0], [1.0, 2.0]])
    rows = namer.transform(df).orderBy("segment_index").collect()
    assert [(r.ai_segment, r.ai_segment_distance) for r in rows] == [("A", 5.0), ("B", 1.0), (None, None)]


def test_namer_round_trips_through_save_and_load(tmp_path):
    namer = SegmentNamer(names=["A", "B"], centers=[[0.0], [1.0]], profiles=[[2.0], [3.0]], outputCol="x")
    namer.save(str(tmp_path / "namer"))
    loaded = SegmentNamer.load(str(tmp_path / "namer"))
    assert loaded.getNames() == ["A", "B"]
    assert loaded.getProfiles() == [[2.0], [3.0]]
    assert loaded.getOrDefault(loaded.outputCol) == "x"


def test_rfmt_model_finds_the_planted_groups_and_names_them(synthetic_features, seg_config):
    customers = customers_only(synthetic_features(400))
    model, report = fit_rfmt_model(customers, seg_config)
    assert report["k"] == 4
    out = model.transform(customers).withColumn("group", F.split("persona_id", "-")[0])
    pairs = {(r.group, r.ai_segment) for r in out.select("group", "ai_segment").distinct().collect()}
    assert pairs == {("champions", "Champions"), ("new", "New"), ("at_risk", "At risk"), ("lost", "Lost")}


def test_k_is_chosen_by_silhouette_within_the_range(synthetic_features, config):
    cfg = config.replace(segments=config.segments.replace(k=None, k_min=3, k_max=5, max_iter=10))
    _, report = fit_rfmt_model(customers_only(synthetic_features(300)), cfg)
    assert [t["k"] for t in report["trials"]] == [3, 4, 5]
    assert report["k"] == 4
    costs = [t["cost"] for t in report["trials"]]
    assert costs[1] < costs[0]  # the elbow: cost drops until the true k


def test_retraining_with_another_seed_keeps_customers_under_the_same_name(synthetic_features, seg_config):
    customers = customers_only(synthetic_features(2000, seed=3)).cache()
    first, _ = fit_rfmt_model(customers, seg_config, seed=1)
    second, report = fit_rfmt_model(customers, seg_config, previous=namer_of(first), seed=99)
    assert report["matched_previous"]
    a = first.transform(customers).select("persona_id", F.col("ai_segment").alias("a"))
    b = second.transform(customers).select("persona_id", F.col("ai_segment").alias("b"))
    same = a.join(b, "persona_id").agg(F.avg((F.col("a") == F.col("b")).cast("double"))).first()[0]
    customers.unpersist()
    assert same >= 0.95


def test_a_cluster_that_drifted_away_from_its_old_centroid_loses_the_old_name(synthetic_features, seg_config):
    """The champions of the first training lapse (no order for a year, little spend):
    the retrain's cluster of them is paired with the old Champions centroid but is far
    from it, so it is named afresh from its profile and the rename is reported."""
    before = customers_only(synthetic_features(400))
    first, _ = fit_rfmt_model(before, seg_config)
    lapsed = F.col("persona_id").startswith("champions-")
    after = before.select(
        "persona_id",
        *[c for c in before.columns if c not in {"persona_id", "recency_days", "frequency", "monetary"}],
        F.when(lapsed, F.col("recency_days") + 340).otherwise(F.col("recency_days")).alias("recency_days"),
        F.when(lapsed, F.lit(2)).otherwise(F.col("frequency")).alias("frequency"),
        F.when(lapsed, F.col("monetary") / 30).otherwise(F.col("monetary")).alias("monetary"),
    )

    second, report = fit_rfmt_model(after, seg_config, previous=namer_of(first))

    (rename,) = report["renamed"]
    assert rename["previous_name"] == "Champions" and rename["name"] != "Champions"
    assert rename["distance"] > seg_config.segments.name_max_distance
    out = second.transform(after).withColumn("group", F.split("persona_id", "-")[0])
    pairs = {(r.group, r.ai_segment) for r in out.select("group", "ai_segment").distinct().collect()}
    assert pairs == {("champions", rename["name"]), ("new", "New"), ("at_risk", "At risk"), ("lost", "Lost")}


def test_apply_fills_customers_keeps_schema_and_leaves_prospects_null(synthetic_features, seg_config):
    features = synthetic_features(200, prospects=5)
    customers = customers_only(features)
    rfmt, _ = fit_rfmt_model(customers, seg_config)
    b2b, _ = fit_b2b_model(customers, seg_config)
    scored = apply_segment_models(features, rfmt, b2b)
    assert scored.schema == features.schema
    assert scored.count() == features.count()
    prospects = scored.filter("persona_type = 'prospect'")
    assert prospects.filter("ai_segment IS NOT NULL OR b2b_segment IS NOT NULL").count() == 0
    customers_scored = scored.filter("persona_type = 'customer'")
    assert customers_scored.filter("ai_segment IS NULL OR b2b_segment IS NULL OR ai_segment_distance < 0").count() == 0


def test_b2b_model_names_clusters_by_industry_and_value(synthetic_features, seg_config):
    customers = customers_only(synthetic_features(400))
    model, report = fit_b2b_model(customers, seg_config)
    names = [s["name"] for s in report["segments"]]
    assert len(set(names)) == len(names) == 4
    assert any(n.startswith("B2B · ") for n in names)
    assert any(n.startswith("B2C · ") for n in names)
    # A consumer (no industry) is never put in a B2B-named cluster.
    out = model.transform(customers)
    mixed = out.filter(F.col("industry").isNull() & F.col("b2b_segment").startswith("B2B"))
    assert mixed.count() == 0


def test_b2b_names_disambiguate_duplicates():
    dominant = [
        {"b2b_industry": "retail", "b2b_value_tier": "top", "b2b_company_size": "large", "b2b_plan": "pro"},
        {"b2b_industry": "retail", "b2b_value_tier": "top", "b2b_company_size": "small", "b2b_plan": "pro"},
        {"b2b_industry": "none", "b2b_value_tier": "rest", "b2b_company_size": "none", "b2b_plan": "none"},
    ]
    assert b2b_names(dominant) == [
        "B2B · Retail · high value · large",
        "B2B · Retail · high value · small",
        "B2C · low value",
    ]


def test_consumer_clusters_are_told_apart_by_orders_not_by_missing_b2b_attributes():
    """Was 'B2C · low value · none · none #1' and '#2': B2B levels a consumer does not have."""
    none = {"b2b_industry": "none", "b2b_value_tier": "rest", "b2b_company_size": "none", "b2b_plan": "none"}
    dominant = [{**none, "orders": 1.04}, {**none, "orders": 6.5}, {**none, "orders": 1.0}, {**none}]
    assert b2b_names(dominant) == [
        "B2C · low value · 1.0 orders #1",
        "B2C · low value · 6.5 orders",
        "B2C · low value · 1.0 orders #2",
        "B2C · low value",
    ]


def test_same_customers_in_another_layout_give_the_same_segments(synthetic_features, seg_config):
    """Sampling and k-means initialisation depend on the rows, not on how they are partitioned."""
    cfg = seg_config.replace(segments=seg_config.segments.replace(max_iter=2, sample_fraction=0.6))
    features = customers_only(synthetic_features(400, seed=3))
    fitted = []
    for layout in (features.coalesce(1), features.repartition(5)):
        rfmt, report = fit_rfmt_model(layout, cfg)
        b2b, _ = fit_b2b_model(layout, cfg)
        fitted.append((report["customers"], namer_of(rfmt).getCenters(), b2b.stages[-2].clusterCenters()))
    (n_a, rfmt_a, b2b_a), (n_b, rfmt_b, b2b_b) = fitted
    assert n_a == n_b
    for a, b in [*zip(rfmt_a, rfmt_b, strict=True), *zip(b2b_a, b2b_b, strict=True)]:
        assert list(b) == pytest.approx(list(a), abs=1e-9)
