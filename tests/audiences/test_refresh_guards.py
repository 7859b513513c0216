"""Refresh guards: never act on a missing feature snapshot, never empty an audience silently.

The reproduction of "Never act on missing inputs": a refresh for a date without a
``customer_features`` partition used to read it as empty, so every dynamic audience
lost its members and every member was logged as having left.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner
from pyspark.sql import functions as F

from segengine.audiences import create_audience, members, refresh_all, refresh_audience
from segengine.cli import Context, cli
from segengine.errors import SegengineError

from .conftest import D1, D2, ids

MISSING = dt.date(2024, 1, 1)
BIG = {"name": "big", "where": {"attr": "monetary", "op": ">=", "value": 100}}
# monetary >= 350: p1 alone on D1 (500), p3 alone on D2 (400): the whole audience changes.
TOP = {"name": "top", "where": {"attr": "monetary", "op": ">=", "value": 350}}
FREQUENT = {"name": "frequent", "where": {"attr": "frequency", "op": ">=", "value": 2}}


def _state(lake, aid):
    """What a refresh may change: the members, the change log and the table versions."""
    changes = sorted(
        (r.snapshot_date, r.change, r.persona_id)
        for r in lake.read("audience_changes").filter(F.col("audience_id") == aid).collect()
    )
    return {
        "members": ids(lake.read("audience_members", partitions={"audience_id": aid})),
        "changes": changes,
        "versions": {t: lake.version(t) for t in ("audience_members", "audience_changes", "audience_refreshes")},
    }


def _use(monkeypatch, spark, lake, config):
    """Run CLI commands on the test's session, lake and configuration."""
    monkeypatch.setattr(Context, "spark", property(lambda self: spark))
    monkeypatch.setattr(Context, "lake", property(lambda self: lake))
    monkeypatch.setattr(Context, "config", property(lambda self: config))


def _errors(result) -> list[str]:
    return [ln for ln in result.output.splitlines() if ln.startswith("error:")]


# ------------------------------------------------------------------ missing feature snapshot


def test_refresh_on_a_date_without_features_is_refused_and_leaves_the_audience_alone(spark, features, config):
    lake = features
    aid = create_audience(spark, lake, config, "big", "ann", "dynamic", "rules", BIG)
    refresh_all(spark, lake, config, D1)
    before = _state(lake, aid)
    assert before["members"] == ["p1", "p2", "p3"]

    with pytest.raises(SegengineError, match="no customer_features partition for 2024-01-01") as info:
        refresh_all(spark, lake, config, MISSING)
    assert "latest is 2025-06-02" in str(info.value)
    with pytest.raises(SegengineError, match="2024-01-01"):
        refresh_audience(spark, lake, config, aid, MISSING)
    assert _state(lake, aid) == before


def test_cli_refresh_on_a_date_without_features_exits_2_with_one_line(spark, features, config, monkeypatch):
    lake = features
    aid = create_audience(spark, lake, config, "big", "ann", "dynamic", "rules", BIG)
    refresh_all(spark, lake, config, D1)
    before = _state(lake, aid)
    _use(monkeypatch, spark, lake, config)

    result = CliRunner().invoke(cli, ["audience", "refresh", "--date", MISSING.isoformat()])

    assert result.exit_code == 2, result.output
    assert result.output.splitlines() == [
        "error: no customer_features partition for 2024-01-01 (latest is 2025-06-02); "
        "run `segengine features --date 2024-01-01` first"
    ]
    assert _state(lake, aid) == before


# ------------------------------------------------------------------ large changes


def test_first_refresh_is_never_blocked_even_with_a_zero_share(spark, features, config):
    lake = features
    strict = config.replace(audiences=config.audiences.replace(max_removed_share=0.0))
    aid = create_audience(spark, lake, strict, "top", "ann", "dynamic", "rules", TOP)
    out = refresh_audience(spark, lake, strict, aid, D1)
    assert (out["size"], out["added"], out["removed"]) == (1, 1, 0)


def test_refresh_that_would_remove_most_members_is_blocked_until_allowed(spark, features, config):
    from segengine.errors import LargeAudienceChange

    lake = features
    aid = create_audience(spark, lake, config, "top", "ann", "dynamic", "rules", TOP)
    refresh_audience(spark, lake, config, aid, D1)
    before = _state(lake, aid)

    with pytest.raises(LargeAudienceChange) as info:
        refresh_audience(spark, lake, config, aid, D2)
    assert str(info.value) == (
        "audience 'top': the refresh for 2025-06-02 would remove 1 of its 1 members (100%), more than "
        "audiences.max_removed_share=50%; nothing was written. Check the inputs of 2025-06-02, "
        "then rerun with --allow-large-change if the change is real"
    )
    assert info.value.exit_code == 2
    assert _state(lake, aid) == before

    out = refresh_audience(spark, lake, config, aid, D2, allow_large_change=True)
    assert (out["size"], out["added"], out["removed"]) == (1, 1, 1)
    assert ids(members(spark, lake, aid)) == ["p3"]


def test_a_change_of_exactly_the_share_passes(spark, features, config):
    lake = features
    # monetary >= 250: p1, p2 on D1; p2, p3 on D2: 1 of 2 leaves (50%, not more).
    doc = {"name": "half", "where": {"attr": "monetary", "op": ">=", "value": 250}}
    aid = create_audience(spark, lake, config, "half", "ann", "dynamic", "rules", doc)
    refresh_audience(spark, lake, config, aid, D1)
    out = refresh_audience(spark, lake, config, aid, D2)
    assert (out["size"], out["added"], out["removed"]) == (2, 1, 1)


def test_refresh_all_refreshes_the_others_and_fails_at_the_end_naming_the_blocked(spark, features, config):
    from segengine.errors import LargeAudienceChange

    lake = features
    top = create_audience(spark, lake, config, "top", "ann", "dynamic", "rules", TOP)
    big = create_audience(spark, lake, config, "big", "ann", "dynamic", "rules", BIG)
    # Built on the blocked audience: it sees the members "top" keeps, not the refused ones.
    both = create_audience(
        spark, lake, config, "top_or_big", "ann", "dynamic", "set_operation", {"op": "merge", "audiences": [top, big]}
    )
    refresh_all(spark, lake, config, D1)
    top_before = _state(lake, top)

    with pytest.raises(LargeAudienceChange, match=r"1 of 3 audiences blocked for 2025-06-02: top \(") as info:
        refresh_all(spark, lake, config, D2)

    assert _state(lake, top) == {**top_before, "versions": _state(lake, top)["versions"]}
    assert ids(members(spark, lake, big)) == ["p2", "p3", "p5"]
    assert ids(members(spark, lake, both)) == ["p1", "p2", "p3", "p5"]
    summary = info.value.summary
    assert [a["name"] for a in summary["audiences"]] == ["big", "top_or_big"]
    assert [(b["audience"], b["size"], b["removed"]) for b in summary["blocked"]] == [("top", 1, 1)]

    out = refresh_all(spark, lake, config, D2, allow_large_change=True)
    assert out["blocked"] == [] and ids(members(spark, lake, top)) == ["p3"]


def test_cli_refresh_blocked_lists_it_exits_2_and_the_runs_table_records_it(spark, features, config, monkeypatch):
    lake = features
    top = create_audience(spark, lake, config, "top", "ann", "dynamic", "rules", TOP)
    big = create_audience(spark, lake, config, "big", "ann", "dynamic", "rules", BIG)
    refresh_all(spark, lake, config, D1)
    _use(monkeypatch, spark, lake, config)

    blocked = CliRunner().invoke(cli, ["audience", "refresh", "--date", D2.isoformat()])

    assert blocked.exit_code == 2, blocked.output
    (line,) = _errors(blocked)
    assert line.startswith("error: 1 of 2 audiences blocked for 2025-06-02: top (1 of 1 members would leave, 100%)")
    assert "--allow-large-change" in line
    printed = json.loads(blocked.output[: blocked.output.index("error:")])
    assert [a["name"] for a in printed["audiences"]] == ["big"]
    assert ids(members(spark, lake, big)) == ["p2", "p3", "p5"]
    assert ids(members(spark, lake, top)) == ["p1"]
    (run,) = lake.read_rows("runs")
    assert (run["step"], run["status"], run["snapshot_date"]) == ("audience_refresh", "failed", D2)
    assert "top (1 of 1 members would leave, 100%)" in run["message"]

    allowed = CliRunner().invoke(cli, ["audience", "refresh", "--date", D2.isoformat(), "--allow-large-change"])
    assert allowed.exit_code == 0, allowed.output
    assert ids(members(spark, lake, top)) == ["p3"]
    statuses = sorted(r["status"] for r in lake.read_rows("runs"))
    assert statuses == ["failed", "ok"]
