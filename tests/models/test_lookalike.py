"""Lookalike expansion: exactly N, seed excluded, nearest first, errors, recall vs exact kNN."""

from __future__ import annotations

import datetime as dt
import random

import pytest
from pyspark.ml.linalg import Vectors
from pyspark.sql import functions as F

from segengine.errors import AudienceError, ModelError
from segengine.models import lookalike as lk

D = dt.date(2025, 6, 30)


def vectors(spark, points: dict[str, list[float]]):
    return spark.createDataFrame([(k, Vectors.dense(v)) for k, v in points.items()], ["persona_id", "vec"])


def ids(spark, names):
    return spark.createDataFrame([(n,) for n in names], "persona_id string")


@pytest.fixture
def cfg(config):
    return config.lookalike


@pytest.fixture
def line(spark):
    """Seeds at 0 and 100 on a line; candidates spread between them."""
    pts = {"s0": [0.0, 0.0], "s1": [100.0, 0.0]}
    for x in (1, 2, 4, 7, 11, 30, 50, 70, 95, 98.5):
        pts[f"c{x}"] = [float(x), 0.0]
    return vectors(spark, pts)


def test_expand_returns_exactly_n_nearest_to_any_seed_and_excludes_seed(spark, cfg, line):
    got, params = lk.expand_vectors(line, ids(spark, ["s0", "s1"]), 4, cfg)
    rows = got.collect()
    # Distances to the nearest seed: c1=1, c98.5=1.5, c2=2, c4=4, c95=5, ...
    assert [r.persona_id for r in rows] == ["c1", "c98.5", "c2", "c4"]
    assert [round(r.distance, 6) for r in rows] == [1.0, 1.5, 2.0, 4.0]
    assert params["filled_by_centroid"] == 0


def test_tie_break_is_persona_id(spark, cfg):
    pts = vectors(spark, {"s": [0.0], "b": [1.0], "a": [-1.0], "c": [5.0]})
    got = lk.expand_vectors(pts, ids(spark, ["s"]), 2, cfg)[0]
    assert [r.persona_id for r in got.collect()] == ["a", "b"]


def test_recall_against_exact_knn_on_synthetic_clusters(spark, cfg):
    rnd = random.Random(4)
    pts = {}
    centres = [(0, 0, 0), (5, 5, 0), (-4, 3, 2)]
    for i in range(1500):
        cx = centres[i % 3]
        pts[f"p{i:04d}"] = [rnd.gauss(c, 1.0) for c in cx]
    vec = vectors(spark, pts)
    seed = ids(spark, [f"p{i:04d}" for i in range(0, 90, 3)])  # 30 seeds from cluster 0
    got, _ = lk.expand_vectors(vec, seed, 100, cfg)
    cands = vec.join(seed, "persona_id", "left_anti")
    exact = lk.nearest_exact(cands, vec.join(seed, "persona_id", "left_semi"), 100)
    found = {r.persona_id for r in got.collect()}
    truth = {r.persona_id for r in exact.collect()}
    assert len(found) == 100
    assert len(found & truth) / 100 >= 0.9


def test_out_of_widenings_fills_from_seed_centroid_to_exactly_n(spark, cfg, line, monkeypatch):
    monkeypatch.setattr(lk, "estimate_radius", lambda *a, **k: 0.01)
    narrow = cfg.replace(max_widenings=0)
    got, params = lk.expand_vectors(line, ids(spark, ["s0", "s1"]), 5, narrow)
    assert got.count() == 5
    assert params["filled_by_centroid"] == 5
    assert got.join(ids(spark, ["s0", "s1"]), "persona_id").count() == 0


def test_negative_max_widenings_is_a_model_error_naming_the_setting(spark, cfg, line):
    # It used to run no search at all and fail with AttributeError on None.
    with pytest.raises(ModelError, match="lookalike.max_widenings must be at least 0, got -1"):
        lk.expand_vectors(line, ids(spark, ["s0", "s1"]), 3, cfg.replace(max_widenings=-1))


def test_widening_regroups_the_fine_hashing_until_n_are_inside(spark, cfg, line, monkeypatch):
    # A first radius far too small: 0.315 while the third nearest is at distance 2.
    monkeypatch.setattr(lk, "estimate_radius", lambda *a, **k: 0.3)
    got, params = lk.expand_vectors(line, ids(spark, ["s0", "s1"]), 3, cfg)
    assert [r.persona_id for r in got.collect()] == ["c1", "c98.5", "c2"]
    assert params["widenings"] >= 3 and params["bucket_length"] > 2.0
    assert params["filled_by_centroid"] == 0


def test_reduce_seeds_keeps_one_mean_point_per_grid_cell(spark):
    seeds = vectors(spark, {"a": [0.1, 0.1], "b": [0.3, 0.5], "c": [5.2, 0.1], "d": [-0.2, 0.1]})
    got = sorted((r.persona_id, [round(x, 6) for x in r.vec]) for r in lk.reduce_seeds(seeds, 1.0).collect())
    assert got == [("a", [0.2, 0.3]), ("c", [5.2, 0.1]), ("d", [-0.2, 0.1])]


def test_a_seed_above_max_seed_points_is_reduced_and_still_gives_n(spark, cfg, line):
    small = cfg.replace(max_seed_points=1)
    got, params = lk.expand_vectors(line, ids(spark, ["s0", "s1"]), 4, small)
    assert [r.persona_id for r in got.collect()] == ["c1", "c98.5", "c2", "c4"]
    assert params["seed_personas"] == 2 and params["seed_points"] == 2


def test_more_than_available_names_how_many(spark, cfg, line):
    with pytest.raises(ModelError, match="only 10 are available outside the seed"):
        lk.expand_vectors(line, ids(spark, ["s0", "s1"]), 11, cfg)


def test_empty_seed_and_non_positive_size_are_errors(spark, cfg, line):
    with pytest.raises(AudienceError, match="empty"):
        lk.expand_vectors(line, ids(spark, []), 3, cfg)
    with pytest.raises(AudienceError, match="none of the seed"):
        lk.expand_vectors(line, ids(spark, ["nobody"]), 3, cfg)
    with pytest.raises(ModelError, match="positive"):
        lk.expand_vectors(line, ids(spark, ["s0"]), 0, cfg)


def test_unknown_attribute_suggests_the_closest_catalog_name():
    with pytest.raises(ModelError, match="did you mean monetary"):
        lk.validate_attributes(["frequency", "monetry"])


def test_string_attribute_without_encoding_is_refused():
    with pytest.raises(ModelError, match="persona_type.*no numeric encoding"):
        lk.validate_attributes(["persona_type"])


def test_expand_on_feature_table_scales_imputes_and_returns_n(spark, lake, config):
    rows = [(f"p{i}", D, "customer", i, float(i * 10) if i != 3 else None) for i in range(12)]
    feats = spark.createDataFrame(
        rows, "persona_id string, snapshot_date date, persona_type string, frequency int, monetary double"
    )
    lake.write(feats, "customer_features", mode="overwrite")
    got = lk.expand(spark, lake, config, ids(spark, ["p0"]), 3, ["frequency", "monetary"], D)
    # p3's missing monetary is imputed with the mean, so p3 is not among p0's nearest.
    assert [r.persona_id for r in got.collect()] == ["p1", "p2", "p4"]
    assert got.where(F.col("distance").isNull()).count() == 0


def test_expand_audience_saves_a_static_lookalike_audience_recording_its_recipe(spark, lake, config):
    from segengine import audiences

    rows = [(f"p{i}", D, "customer", i, float(i * 10)) for i in range(12)]
    feats = spark.createDataFrame(
        rows, "persona_id string, snapshot_date date, persona_type string, frequency int, monetary double"
    )
    lake.write(feats, "customer_features", mode="overwrite")
    audiences.create_audience(
        spark,
        lake,
        config,
        "seed",
        "ana",
        "static",
        "upload",
        {"file": "seed.csv"},
        members=ids(spark, ["p0", "p1"]),
        snapshot_date=D,
    )
    out = lk.expand_audience(spark, lake, config, "seed", 3, ["frequency", "monetary"], D, owner="ana")
    got = audiences.members(spark, lake, out["audience_id"])
    assert sorted(r.persona_id for r in got.collect()) == ["p2", "p3", "p4"]
    aud = audiences.get_audience(spark, lake, out["audience_id"])
    assert (aud.source, aud.kind, aud.name) == ("lookalike", "static", "seed lookalike 3")
    recipe = aud.definition_dict
    assert recipe["seed"] == "seed" and recipe["attributes"] == ["frequency", "monetary"] and recipe["size"] == 3


def test_a_lookalike_where_most_tie_at_one_distance_gets_a_warning_naming_better_attributes():
    from segengine.models.lookalike import tie_warning

    assert tie_warning(50, 100, ["recency_days"]) is None
    assert tie_warning(1230, 2022, ["frequency", "monetary", "recency_days"]) == (
        "1,230 of the 2,022 lookalikes (61%) are at the same distance: frequency, monetary, recency_days are "
        "probably empty for most of them (empty values are imputed with the mean); choose attributes that are "
        "set for everyone, e.g. frequency,monetary,days_since_last_purchase"
    )


def test_largest_tie_counts_the_most_common_distance(spark):
    from segengine.models.lookalike import largest_tie

    rows = [("a", 0.0), ("b", 0.0), ("c", 1e-12), ("d", 0.5)]
    assert largest_tie(spark.createDataFrame(rows, "persona_id string, distance double")) == 3
