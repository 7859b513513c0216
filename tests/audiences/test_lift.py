"""Holdout groups (stable hash, left out of exports) and the lift report with bootstrap intervals."""

from __future__ import annotations

import csv
import datetime as dt

import pytest

from segengine.audiences import create_audience, export_audience
from segengine.audiences.holdout import assign_groups, member_groups
from segengine.audiences.lift import lift_from_outcomes, lift_report, member_outcomes, minimum_detectable_effect
from segengine.audiences.registry import set_holdout

from .conftest import D1

N = 4000
SHARE = 0.3


def _generated(spark, treated_rate: float, holdout_rate: float, seed: int):
    """N members split 70/30 by the hash; converters place 1 or 2 orders of 40 each."""
    from pyspark.sql import functions as F

    people = spark.range(N).select(F.concat(F.lit("p"), F.col("id").cast("string")).alias("persona_id"))
    rate = F.when(F.col("group") == "treated", F.lit(treated_rate)).otherwise(F.lit(holdout_rate))
    return (
        assign_groups(people, "aud1", SHARE, "salt")
        .withColumn("converted", (F.rand(seed) < rate).cast("double"))
        .withColumn("orders", F.col("converted") * F.when(F.rand(seed + 1) < 0.5, 1).otherwise(2))
        .withColumn("revenue", F.col("orders") * 40.0)
        .localCheckpoint(eager=True)
    )


def test_hash_split_is_stable_reproducible_and_close_to_the_share(spark):
    from pyspark.sql import functions as F

    people = spark.range(10000).select(F.concat(F.lit("p"), F.col("id").cast("string")).alias("persona_id"))

    split = people
    for name, (audience_id, salt) in {
        "first": ("a", "s"),
        "again": ("a", "s"),
        "salt": ("a", "t"),
        "aud": ("b", "s"),
    }.items():
        split = assign_groups(split, audience_id, 0.1, salt).withColumnRenamed("group", name)
    h = {c: F.col(c) == "holdout" for c in ("first", "again", "salt", "aud")}
    row = split.agg(
        F.sum(h["first"].cast("int")).alias("first"),
        F.sum((h["first"] != h["again"]).cast("int")).alias("changed"),
        F.sum((h["first"] & h["salt"]).cast("int")).alias("both_salts"),
        F.sum((h["first"] & h["aud"]).cast("int")).alias("both_audiences"),
    ).first()
    assert row["changed"] == 0
    assert abs(row["first"] / 10000 - 0.1) < 0.01
    # Another salt or another audience draws an independent split (about 10% of 10% overlap).
    assert row["both_salts"] < 0.2 * row["first"] and row["both_audiences"] < 0.2 * row["first"]


def test_planted_uplift_is_found_within_its_interval(spark):
    report = lift_from_outcomes(_generated(spark, 0.20, 0.12, seed=3), bootstrap=100)
    assert abs(report["groups"]["holdout"]["members"] / N - SHARE) < 0.03
    truth = {"conversion_rate": 0.08, "orders_per_member": 0.08 * 1.5, "revenue_per_member": 0.08 * 1.5 * 40}
    for metric, true_lift in truth.items():
        got = report["lift"][metric]
        lo, hi = got["absolute_ci"]
        assert got["significant"] and lo > 0
        assert lo <= true_lift <= hi, (metric, got)
        rlo, rhi = got["relative_ci"]
        assert (
            rlo
            <= true_lift / {"conversion_rate": 0.12, "orders_per_member": 0.18, "revenue_per_member": 7.2}[metric]
            <= rhi
        )


def test_no_uplift_planted_finds_none(spark):
    report = lift_from_outcomes(_generated(spark, 0.12, 0.12, seed=5), bootstrap=100)
    for metric, got in report["lift"].items():
        lo, hi = got["absolute_ci"]
        assert lo < 0 < hi and not got["significant"], (metric, got)


def test_minimum_detectable_effect_shrinks_with_size():
    small = minimum_detectable_effect(1000, 0.1, 0.05)
    large = minimum_detectable_effect(100000, 0.1, 0.05)
    assert (small["treated"], small["holdout"]) == (900, 100)
    # (1.95996 + 0.84162) * sqrt(0.05 * 0.95 * (1/900 + 1/100))
    assert small["absolute"] == pytest.approx(2.80158 * (0.0475 * (1 / 900 + 1 / 100)) ** 0.5, rel=1e-4)
    assert large["absolute"] == pytest.approx(small["absolute"] / 10, rel=1e-3)
    assert minimum_detectable_effect(1000, 0.0, 0.05)["absolute"] is None


def test_holdout_is_recorded_left_out_of_exports_and_measured(spark, features, config, tmp_path):
    members = spark.createDataFrame([(f"p{i}",) for i in range(1, 6)], "persona_id string")
    aid = create_audience(spark, features, config, "vip", "ann", "static", "upload", {}, members, snapshot_date=D1)
    # The audience id is a fresh uuid, so a fixed salt leaves all five members in one
    # group in about 9% of runs: take the first salt that splits them.
    salt = next(
        s
        for s in (f"s{i}" for i in range(200))
        if assign_groups(members, aid, 0.4, s).select("group").distinct().count() == 2
    )
    set_holdout(spark, features, "vip", 0.4, user="ann", salt=salt, snapshot_date=D1)
    groups = {r["persona_id"]: r["group"] for r in member_groups(features, aid).collect()}
    expected = {r["persona_id"]: r["group"] for r in assign_groups(members, aid, 0.4, salt).collect()}
    assert groups == expected and set(groups) == {"p1", "p2", "p3", "p4", "p5"}
    held = {p for p, g in groups.items() if g == "holdout"}
    assert held and held != set(groups)

    out = export_audience(
        spark, features, config, "vip", str(tmp_path / "vip.csv"), columns=["persona_id"], single_file=True
    )
    with open(tmp_path / "vip.csv") as fh:
        exported = {r[0] for r in list(csv.reader(fh))[1:]}
    assert exported == set(groups) - held and out["rows"] == len(exported)

    # Orders: p1 buys twice in the window (one line a refund), p2 buys the day of the
    # campaign (outside the window), p3 buys after it.
    lines = [
        ("o1", 1, "p1", dt.datetime(2025, 6, 2, 10), "web", "A", 2, 10.0),
        ("o1", 2, "p1", dt.datetime(2025, 6, 2, 10), "web", "B", -1, 5.0),
        ("o2", 1, "p1", dt.datetime(2025, 6, 5, 9), "web", "A", 1, 10.0),
        ("o3", 1, "p2", dt.datetime(2025, 6, 1, 12), "web", "A", 1, 10.0),
        ("o4", 1, "p3", dt.datetime(2025, 7, 9, 12), "web", "A", 1, 10.0),
    ]
    schema = (
        "order_id string, line_no int, persona_id string, order_ts timestamp, channel string, "
        "product_id string, quantity int, unit_price double"
    )
    features.write(spark.createDataFrame(lines, schema), "order_lines")
    got = {
        r["persona_id"]: (r["group"], r["orders"], r["revenue"])
        for r in member_outcomes(features, aid, D1, 30).collect()
    }
    assert got == {
        "p1": (groups["p1"], 2, 25.0),
        "p2": (groups["p2"], 0, 0.0),
        "p3": (groups["p3"], 0, 0.0),
        "p4": (groups["p4"], 0, 0.0),
        "p5": (groups["p5"], 0, 0.0),
    }
    report = lift_report(spark, features, "vip", D1, 30, user="ann", bootstrap=20)
    sizes = {g: sum(1 for v in groups.values() if v == g) for g in ("treated", "holdout")}
    assert {g: report["groups"][g]["members"] for g in sizes} == sizes
    p1 = groups["p1"]
    assert report["groups"][p1]["conversion_rate"] == pytest.approx(1 / sizes[p1])
    assert report["groups"][p1]["revenue_per_member"] == pytest.approx(25.0 / sizes[p1])
