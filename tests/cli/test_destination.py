"""`segengine destination` and `audience sync --destination / holdout`: a Delta destination without the holdout."""

from __future__ import annotations

import datetime as dt

from segengine.audiences import create_audience
from segengine.audiences.holdout import assign_groups, member_groups


def test_a_synced_delta_destination_gets_the_members_less_the_holdout(invoke, spark, lake, config):
    members = spark.createDataFrame([(f"p{i}",) for i in range(1, 9)], "persona_id string")
    aid = create_audience(
        spark, lake, config, "vip", "ann", "static", "upload", {}, members, snapshot_date=dt.date(2025, 6, 1)
    )
    out = invoke("destination", "create", "lakehouse", "--kind", "delta", "--user", "ann")
    assert out.exit_code == 0, out.output
    # The audience id is a fresh uuid: take the first salt that splits the eight members.
    salt = next(
        s
        for s in (f"s{i}" for i in range(200))
        if assign_groups(members, aid, 0.5, s).select("group").distinct().count() == 2
    )
    out = invoke("audience", "holdout", "vip", "--share", "0.5", "--salt", salt, "--user", "ann")
    assert out.exit_code == 0 and f"holdout 50.0% (salt {salt})" in out.output, out.output
    out = invoke("audience", "sync", "vip", "--destination", "lakehouse", "--user", "ann")
    assert out.exit_code == 0, out.output
    # Locked while synced: the holdout cannot change under the destination.
    out = invoke("audience", "holdout", "vip", "--share", "0.2", "--user", "ann")
    assert out.exit_code == 2 and "locked" in out.stderr
    out = invoke("destination", "sync")
    assert out.exit_code == 0, out.output

    sent = {r["persona_id"] for r in lake.read(f"{config.warehouse_uri}/destinations/lakehouse/members").collect()}
    treated = {r["persona_id"] for r in member_groups(lake, aid).where("group = 'treated'").collect()}
    assert sent == treated and 0 < len(sent) < 8
    out = invoke("destination", "list")
    assert "lakehouse" in out.output and "vip" in out.output
