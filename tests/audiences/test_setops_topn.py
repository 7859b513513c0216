"""Set operations and top-N, static and dynamic."""

from __future__ import annotations

import pytest

from segengine.audiences import combine_audiences, create_audience, members, refresh_audience, top_n_audience
from segengine.errors import AudienceError, UnknownAudience

from .conftest import D1, D2, ids


def _static(spark, lake, config, name, pids, owner="ann", visibility="shared"):
    df = spark.createDataFrame([(p,) for p in pids], "persona_id string")
    return create_audience(spark, lake, config, name, owner, "static", "upload", {}, df, visibility, D1)


def test_intersect_merge_exclude_are_materialised_for_static_results(spark, lake, config):
    _static(spark, lake, config, "a", ["p1", "p2", "p3"])
    _static(spark, lake, config, "b", ["p2", "p3", "p4"])
    _static(spark, lake, config, "c", ["p3"])
    combine_audiences(spark, lake, config, "intersect", ["a", "b"], "a_and_b", "ann", snapshot_date=D1)
    combine_audiences(spark, lake, config, "merge", ["a", "b"], "a_or_b", "ann", snapshot_date=D1)
    combine_audiences(spark, lake, config, "exclude", ["a", "b", "c"], "a_not_bc", "ann", snapshot_date=D1)
    assert ids(members(spark, lake, "a_and_b")) == ["p2", "p3"]
    assert ids(members(spark, lake, "a_or_b")) == ["p1", "p2", "p3", "p4"]
    assert ids(members(spark, lake, "a_not_bc")) == ["p1"]


def test_set_operation_cannot_use_another_users_private_audience(spark, lake, config):
    _static(spark, lake, config, "secret", ["p1"], owner="bob", visibility="private")
    _static(spark, lake, config, "a", ["p1", "p2"])
    with pytest.raises(UnknownAudience, match="no audience 'secret'"):
        combine_audiences(spark, lake, config, "exclude", ["a", "secret"], "x", "ann", snapshot_date=D1)


def test_top_n_ranks_with_nulls_last_and_persona_id_tie_break(spark, features, config):
    _static(spark, features, config, "all", ["p1", "p2", "p3", "p4", "p5", "p6"])
    top_n_audience(spark, features, config, "all", 3, "frequency", "asc", "least", "ann", snapshot_date=D1)
    # frequency: p4 0, p5 1, p3 2, p2 5, p1 9, p6 null
    assert ids(members(spark, features, "least")) == ["p3", "p4", "p5"]
    top_n_audience(spark, features, config, "all", 2, "monetary", "desc", "most", "ann", snapshot_date=D2)
    assert ids(members(spark, features, "most")) == ["p2", "p3"]
    with pytest.raises(AudienceError, match="not an attribute"):
        top_n_audience(spark, features, config, "all", 2, "shoe_size", "desc", "x", "ann", snapshot_date=D1)


def test_dynamic_top_n_of_a_dynamic_audience_is_recomputed_on_refresh(spark, features, config, stub):
    lake = features
    big = {"attr": "monetary", "op": ">=", "value": 100.0}
    create_audience(spark, lake, config, "big", "ann", "dynamic", "rules", big, snapshot_date=D1, evaluator=stub)
    top_n_audience(
        spark, lake, config, "big", 1, "monetary", "desc", "best", "ann", "dynamic", snapshot_date=D1, evaluator=stub
    )
    assert ids(members(spark, lake, "best")) == ["p1"]
    # Its one member changes: 100% leave, past audiences.max_removed_share, so allowed here.
    out = refresh_audience(spark, lake, config, "best", D2, evaluator=stub, allow_large_change=True)
    assert ids(members(spark, lake, "best")) == ["p3"]
    assert (out["added"], out["removed"]) == (1, 1)
