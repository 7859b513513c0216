"""Registry: create, list, visibility, edit, delete, lock rules."""

from __future__ import annotations

import pytest

from segengine.audiences import (
    create_audience,
    delete_audience,
    get_audience,
    list_audiences,
    members,
    resolver,
    set_sync,
    update_audience,
)
from segengine.errors import AudienceError, UnknownAudience, UnknownName

from .conftest import D1, ids


def _static(spark, lake, config, name, owner, pids, visibility="shared"):
    df = spark.createDataFrame([(p,) for p in pids], "persona_id string")
    return create_audience(
        spark, lake, config, name, owner, "static", "upload", {"file": "x.csv"}, df, visibility, snapshot_date=D1
    )


def test_static_audience_stores_its_members_with_since_date(spark, lake, config):
    aid = _static(spark, lake, config, "vip", "ann", ["p1", "p2", "p2"])
    got = members(spark, lake, aid).orderBy("persona_id").collect()
    assert [(r.persona_id, r.since) for r in got] == [("p1", D1), ("p2", D1)]
    assert ids(members(spark, lake, "vip")) == ["p1", "p2"]  # by name too


def test_names_are_unique_per_workspace(spark, lake, config):
    _static(spark, lake, config, "vip", "ann", ["p1"])
    with pytest.raises(AudienceError, match="already exists"):
        _static(spark, lake, config, "vip", "bob", ["p2"])


def test_private_audience_is_visible_only_to_its_owner(spark, lake, config):
    _static(spark, lake, config, "mine", "ann", ["p1"], visibility="private")
    _static(spark, lake, config, "ours", "bob", ["p2"])
    assert [a["name"] for a in list_audiences(spark, lake, user="ann", sort_by="name")] == ["mine", "ours"]
    assert [a["name"] for a in list_audiences(spark, lake, user="bob", sort_by="name")] == ["ours"]
    # To bob it does not exist: the error neither confirms it nor names its owner.
    with pytest.raises(UnknownAudience, match="no audience 'mine'") as err:
        members(spark, lake, "mine", user="bob")
    assert "ann" not in str(err.value) and "private" not in str(err.value)
    # Nor does an in_segment reference to it in a rule.
    with pytest.raises(UnknownName) as err:
        resolver(spark, lake, "bob")("mine")
    assert "ann" not in str(err.value) and "private" not in str(err.value)
    assert ids(members(spark, lake, "mine", user="ann")) == ["p1"]


def test_list_sorts_by_size_source_and_updated(spark, lake, config):
    _static(spark, lake, config, "small", "ann", ["p1"])
    _static(spark, lake, config, "big", "ann", ["p1", "p2", "p3"])
    create_audience(spark, lake, config, "dyn", "ann", "dynamic", "rules", {"attr": "x"}, evaluator=object())
    by_size = list_audiences(spark, lake, sort_by="size")
    assert [(a["name"], a["size"]) for a in by_size] == [("big", 3), ("small", 1), ("dyn", None)]
    assert [a["source"] for a in list_audiences(spark, lake, sort_by="source")] == ["rules", "upload", "upload"]
    assert list_audiences(spark, lake, sort_by="updated")[0]["name"] in {"dyn", "big", "small"}
    with pytest.raises(AudienceError, match="cannot sort"):
        list_audiences(spark, lake, sort_by="colour")


def test_only_the_owner_edits_and_each_edit_bumps_the_version(spark, lake, config):
    _static(spark, lake, config, "vip", "ann", ["p1"])
    with pytest.raises(AudienceError, match="belongs to ann"):
        update_audience(spark, lake, "vip", "bob", name="stolen")
    new = update_audience(spark, lake, "vip", "ann", name="vip2", visibility="private")
    assert (new.name, new.visibility, new.version) == ("vip2", "private", 2)
    assert get_audience(spark, lake, "vip2", "ann").version == 2


def test_delete_hides_the_audience_but_time_travel_keeps_it(spark, lake, config):
    aid = _static(spark, lake, config, "vip", "ann", ["p1"])
    before = lake.version("audience_members")
    delete_audience(spark, lake, "vip", "ann")
    assert list_audiences(spark, lake) == []
    with pytest.raises(AudienceError, match="no audience"):
        get_audience(spark, lake, aid)
    assert members_at(lake, before, aid) == ["p1"]
    # the name is free again
    _static(spark, lake, config, "vip", "ann", ["p2"])


def members_at(lake, version, aid):
    return ids(lake.read("audience_members", version=version, partitions={"audience_id": aid}))


def test_synced_audience_is_locked_until_sync_is_off(spark, lake, config, tmp_path):
    _static(spark, lake, config, "vip", "ann", ["p1", "p2"])
    drop = str(tmp_path / "drop")
    set_sync(spark, lake, "vip", "ann", drop, "parquet")
    assert ids(spark.read.parquet(drop)) == ["p1", "p2"]
    with pytest.raises(AudienceError, match="locked: it is synced to"):
        update_audience(spark, lake, "vip", "ann", name="x")
    with pytest.raises(AudienceError, match="locked"):
        delete_audience(spark, lake, "vip", "ann")
    set_sync(spark, lake, "vip", "ann", None)
    delete_audience(spark, lake, "vip", "ann")


def test_invalid_kind_source_and_dynamic_upload_are_refused(spark, lake, config):
    with pytest.raises(AudienceError, match="kind"):
        create_audience(spark, lake, config, "a", "ann", "frozen", "rules", {}, evaluator=object())
    with pytest.raises(AudienceError, match="can only be static"):
        create_audience(spark, lake, config, "a", "ann", "dynamic", "upload", {})
    with pytest.raises(AudienceError, match="needs its members"):
        create_audience(spark, lake, config, "a", "ann", "static", "upload", {})


def test_a_creation_racing_past_the_name_check_loses_and_leaves_one_row(spark, lake, config, monkeypatch):
    """The second of two creations that both passed the check (it ran before the first committed)."""
    from segengine.audiences import registry

    _static(spark, lake, config, "vip", "ann", ["p1"])
    real_rows = registry._rows
    # The check before the write sees the registry as it was before "vip" was committed.
    monkeypatch.setattr(
        registry, "_rows", lambda *a, version=None, **k: [] if version is None else real_rows(*a, version=version, **k)
    )
    with pytest.raises(AudienceError, match="already exists"):
        registry.register_audience(spark, lake, " vip ", "bob", "static", "upload", {"file": "y.csv"})
    monkeypatch.setattr(registry, "_rows", real_rows)
    rows = [a for a in list_audiences(spark, lake) if a["name"] == "vip"]
    assert [(a["name"], a["owner"]) for a in rows] == [("vip", "ann")]


def test_two_concurrent_creations_of_one_name_give_exactly_one_audience(spark, lake, config):
    from concurrent.futures import ThreadPoolExecutor

    from segengine.audiences import registry

    registry.ensure_tables(spark, lake)

    def create(owner):
        try:
            registry.register_audience(spark, lake, "race", owner, "static", "upload", {"file": "z.csv"})
            return "ok"
        except AudienceError:
            return "refused"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(create, ["ann", "bob"]))
    assert outcomes == ["ok", "refused"]
    assert len([a for a in list_audiences(spark, lake) if a["name"] == "race"]) == 1


def test_a_rename_racing_past_the_name_check_is_reverted(spark, lake, config, monkeypatch):
    """A rename to a name another audience took after the rename's check: the rename loses."""
    from segengine.audiences import registry

    _static(spark, lake, config, "vip", "ann", ["p1"])
    _static(spark, lake, config, "loyal", "bob", ["p2"])
    real_rows = registry._rows
    monkeypatch.setattr(
        registry, "_rows", lambda *a, version=None, **k: [] if version is None else real_rows(*a, version=version, **k)
    )
    monkeypatch.setattr(registry, "get_audience", lambda spark, lake, ref, user: _get(real_rows, spark, lake, ref))
    with pytest.raises(AudienceError, match="already exists"):
        registry.update_audience(spark, lake, "loyal", "bob", name="vip")
    monkeypatch.undo()
    names = sorted((a["name"], a["owner"]) for a in list_audiences(spark, lake))
    assert names == [("loyal", "bob"), ("vip", "ann")]


def _get(real_rows, spark, lake, name):
    from segengine.audiences import registry

    return next(a for a in real_rows(spark, lake, registry._workspace(lake, None)) if a.name == name)


def test_a_rename_and_a_creation_of_one_name_racing_give_exactly_one_audience(spark, lake, config):
    from concurrent.futures import ThreadPoolExecutor

    from segengine.audiences import registry

    _static(spark, lake, config, "old", "bob", ["p2"])

    def create():
        registry.register_audience(spark, lake, "race", "ann", "static", "upload", {"file": "z.csv"})

    def rename():
        registry.update_audience(spark, lake, "old", "bob", name="race")

    def attempt(fn):
        try:
            fn()
            return "ok"
        except AudienceError:
            return "refused"

    with ThreadPoolExecutor(2) as pool:
        outcomes = sorted(pool.map(attempt, [create, rename]))
    assert outcomes == ["ok", "refused"]
    assert len([a for a in list_audiences(spark, lake) if a["name"] == "race"]) == 1
