"""Dynamic refresh: merge, changes over two dates, idempotence, shared work, races."""

from __future__ import annotations

import threading

import pytest
from pyspark.sql import functions as F

from segengine.audiences import create_audience, members, refresh_all, refresh_audience, set_sync
from segengine.errors import AudienceError

from .conftest import D1, D2, ids

BIG_SPENDERS = {"attr": "monetary", "op": ">=", "value": 100.0}


def changes(lake, aid):
    rows = lake.read("audience_changes").filter(F.col("audience_id") == aid).collect()
    return sorted((r.snapshot_date.isoformat(), r.change, r.persona_id) for r in rows)


def test_refresh_over_two_dates_records_adds_and_removes(spark, features, config, stub):
    lake = features
    aid = create_audience(spark, lake, config, "big", "ann", "dynamic", "rules", BIG_SPENDERS, evaluator=stub)
    s1 = refresh_audience(spark, lake, config, aid, D1, evaluator=stub)
    assert (s1["size"], s1["added"], s1["removed"]) == (3, 3, 0)
    s2 = refresh_audience(spark, lake, config, aid, D2, evaluator=stub)
    # D1: p1 500, p2 300, p3 120; D2: p1 drops to 20, p5 rises to 150.
    assert (s2["size"], s2["added"], s2["removed"]) == (3, 1, 1)
    assert changes(lake, aid) == [
        ("2025-06-01", "added", "p1"),
        ("2025-06-01", "added", "p2"),
        ("2025-06-01", "added", "p3"),
        ("2025-06-02", "added", "p5"),
        ("2025-06-02", "removed", "p1"),
    ]
    got = members(spark, lake, aid).orderBy("persona_id").collect()
    assert [(r.persona_id, r.since) for r in got] == [("p2", D1), ("p3", D1), ("p5", D2)]


def test_rerun_for_the_same_date_records_nothing_new(spark, features, config, stub):
    lake = features
    aid = create_audience(spark, lake, config, "big", "ann", "dynamic", "rules", BIG_SPENDERS, evaluator=stub)
    refresh_audience(spark, lake, config, aid, D1, evaluator=stub)
    again = refresh_audience(spark, lake, config, aid, D1, evaluator=stub)
    assert (again["size"], again["added"], again["removed"]) == (3, 0, 0)
    assert len(changes(lake, aid)) == 3
    assert lake.read("audience_members").count() == 3
    stats = lake.read("audience_refreshes").filter(F.col("audience_id") == aid).collect()
    assert [(r.snapshot_date, r.size) for r in stats] == [(D1, 3)]  # replaced, not duplicated


def test_refresh_all_prepares_views_once_and_orders_dependencies(spark, features, config, stub):
    lake = features
    big = create_audience(spark, lake, config, "big", "ann", "dynamic", "rules", BIG_SPENDERS, evaluator=stub)
    fr = create_audience(
        spark,
        lake,
        config,
        "frequent",
        "ann",
        "dynamic",
        "rules",
        {"attr": "frequency", "op": ">=", "value": 2},
        evaluator=stub,
    )
    # "a_both" sorts first by name but depends on the other two.
    create_audience(
        spark, lake, config, "a_both", "ann", "dynamic", "set_operation", {"op": "intersect", "audiences": [big, fr]}
    )
    static = spark.createDataFrame([("p6",)], "persona_id string")
    create_audience(spark, lake, config, "frozen", "ann", "static", "upload", {}, static, snapshot_date=D1)
    out = refresh_all(spark, lake, config, D1, evaluator=stub)
    assert stub.prepared == [D1]
    by_name = {a["name"]: a for a in out["audiences"]}
    assert set(by_name) == {"big", "frequent", "a_both"}  # static audiences are not refreshed
    assert [a["name"] for a in out["audiences"]][-1] == "a_both"
    assert (by_name["a_both"]["size"], by_name["big"]["size"], by_name["frequent"]["size"]) == (3, 3, 3)
    assert ids(members(spark, lake, "a_both")) == ["p1", "p2", "p3"]
    assert set(by_name["big"]) >= {"size", "added", "removed", "seconds"}


def test_static_audience_cannot_be_refreshed(spark, features, config, stub):
    df = spark.createDataFrame([("p1",)], "persona_id string")
    create_audience(spark, features, config, "frozen", "ann", "static", "upload", {}, df, snapshot_date=D1)
    with pytest.raises(AudienceError, match="static"):
        refresh_audience(spark, features, config, "frozen", D1, evaluator=stub)


def test_refresh_rewrites_the_sync_drop_of_a_synced_audience(spark, features, config, stub, tmp_path):
    lake = features
    aid = create_audience(
        spark, lake, config, "big", "ann", "dynamic", "rules", BIG_SPENDERS, snapshot_date=D1, evaluator=stub
    )
    drop = str(tmp_path / "drop")
    set_sync(spark, lake, aid, "ann", drop, "csv")
    assert ids(spark.read.option("header", True).csv(drop)) == ["p1", "p2", "p3"]
    refresh_audience(spark, lake, config, aid, D2, evaluator=stub)
    assert ids(spark.read.option("header", True).csv(drop)) == ["p2", "p3", "p5"]


def test_two_racing_refreshes_leave_one_consistent_membership(spark, features, config, stub):
    """Two threads refresh the same audience at once (D1 and D2).

    The storage layer commits a merge only on the snapshot it read; the loser of the
    race gets a commit conflict, re-reads and recomputes. So whichever finishes last
    wins, members are never duplicated, and the recorded changes replay exactly to
    the final membership.
    """
    lake = features
    aid = create_audience(spark, lake, config, "big", "ann", "dynamic", "rules", BIG_SPENDERS, evaluator=stub)
    errors = []
    barrier = threading.Barrier(2)

    def run(day):
        try:
            barrier.wait()
            refresh_audience(spark, lake, config, aid, day, evaluator=stub)
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(d,)) for d in (D1, D2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = ids(members(spark, lake, aid))
    assert final in (["p1", "p2", "p3"], ["p2", "p3", "p5"])
    rows = lake.read("audience_members").filter(F.col("audience_id") == aid)
    assert rows.count() == rows.select("persona_id").distinct().count() == 3
    # Replaying the change log in commit order gives the final membership.
    log = lake.read("audience_changes").filter(F.col("audience_id") == aid).collect()
    net: dict[str, int] = {}
    for r in log:
        net[r.persona_id] = net.get(r.persona_id, 0) + (1 if r.change == "added" else -1)
    state = {p for p, n in net.items() if n == 1}
    assert sorted(state) == final
    assert all(n in (0, 1) for n in net.values())


def test_refresh_with_the_real_rule_compiler(spark, features, config):
    lake = features
    doc = {
        "name": "Big French",
        "kind": "dynamic",
        "where": {
            "all": [{"attr": "monetary", "op": ">=", "value": 100}, {"attr": "country", "op": "=", "value": "FR"}]
        },
    }
    aid = create_audience(spark, lake, config, "big_fr", "ann", "dynamic", "rules", doc)
    out = refresh_all(spark, lake, config, D1)
    assert [(a["name"], a["size"], a["added"]) for a in out["audiences"]] == [("big_fr", 2, 2)]
    assert ids(members(spark, lake, aid)) == ["p1", "p3"]
