"""Stitching quality on generated data with planted people (statistics, not exact values).

2,000 generated personas, 20% of the clean customers and prospects spread over two or
three persona rows (different email case and padding, phone formats, a cookie seen on
a login). The goal of issue 41: pairwise precision >= 0.99 and recall >= 0.95.
"""

from __future__ import annotations

import datetime as dt

import pytest
from pyspark.sql import functions as F

from segengine.generate import generate_bronze
from segengine.generate.identities import read_truth
from segengine.identity import build_identity_map
from segengine.identity.evaluate import pairwise_scores
from segengine.ingest import default_raw_dir
from segengine.lake import Lake

PERSONAS = 2000
SHARE = 0.2


@pytest.fixture(scope="module")
def stitched(spark, base_config, tmp_path_factory):
    config = base_config.replace(warehouse=str(tmp_path_factory.mktemp("identity") / "warehouse"))
    lake = Lake.open(spark, config)
    generated = generate_bronze(spark, lake, config, personas=PERSONAS, seed=5, identity_share=SHARE)
    summary = build_identity_map(spark, lake, config, dt.date(2025, 6, 30))
    truth = read_truth(spark, default_raw_dir(config))
    return config, lake, generated, summary, truth


def test_stitching_meets_the_precision_and_recall_goal(stitched):
    _config, lake, generated, summary, truth = stitched
    persons = lake.read("identity_map").where(F.col("id_type") == "persona_id")
    scores = pairwise_scores(persons.select(F.col("id_value").alias("persona_id"), "person_id"), truth)
    print(
        f"\nplanted: {generated['generate']['identity']}\n"
        f"pairwise: {scores}\ncomponent sizes: {summary['component_sizes']}\n"
        f"rounds: {summary['labels_changed_per_round']}, rejected: {summary['rejected']}"
    )
    assert scores["true_pairs"] > 100  # the planted people are there to be found
    assert scores["precision"] >= 0.99
    assert scores["recall"] >= 0.95


def test_every_planted_persona_was_ingested(stitched):
    _config, lake, generated, _summary, truth = stitched
    ids = lake.read("personas").select("persona_id")
    assert truth.join(ids, "persona_id", "left_anti").count() == 0
    assert generated["ingest"]["tables"]["personas"]["quarantined"] == 0


def test_planted_people_get_their_original_persona_as_person_id(stitched):
    _config, lake, _generated, _summary, truth = stitched
    persons = lake.read("identity_map").where(F.col("id_type") == "persona_id")
    got = truth.join(
        persons.select(F.col("id_value").alias("persona_id"), F.col("person_id").alias("got")), "persona_id"
    )
    assert got.where(F.col("got") != F.col("person_id")).count() <= 0.05 * got.count()
