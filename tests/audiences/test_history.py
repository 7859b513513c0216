"""Membership history: a persona's entries and exits, an audience's days, read by date range."""

from __future__ import annotations

import datetime as dt

from segengine.audiences.history import audience_history, persona_history
from segengine.audiences.registry import changes_schema, ensure_tables, refreshes_schema, register_audience

D1, D2, D3 = dt.date(2025, 6, 1), dt.date(2025, 6, 2), dt.date(2025, 6, 3)


def test_persona_and_audience_history_read_only_their_dates(spark, lake):
    ensure_tables(spark, lake)
    vip = register_audience(spark, lake, "vip", "ann", "static", "upload", {})
    secret = register_audience(spark, lake, "secret", "bob", "static", "upload", {}, visibility="private")
    v, s = vip.audience_id, secret.audience_id
    changes = [
        (v, "p1", "added", D1),
        (v, "p2", "added", D1),
        (v, "p1", "removed", D2),
        (v, "p3", "added", D2),
        (s, "p1", "added", D2),
        (v, "p1", "added", D3),
    ]
    lake.write(spark.createDataFrame(changes, changes_schema()), "audience_changes")
    now = dt.datetime(2025, 6, 3, 12)
    refreshes = [(v, D1, 2, 2, 0, 1.0, now), (v, D2, 2, 1, 1, 1.0, now), (v, D3, 3, 1, 0, 1.0, now)]
    lake.write_rows(refreshes, refreshes_schema(), "audience_refreshes")

    got = [(r["date"], r["audience"], r["change"]) for r in persona_history(spark, lake, "p1", user="ann")]
    assert got == [(D1, "vip", "entered"), (D2, "vip", "left"), (D3, "vip", "entered")]
    as_bob = [(r["date"], r["audience"]) for r in persona_history(spark, lake, "p1", D2, D2, user="bob")]
    assert as_bob == [(D2, "secret"), (D2, "vip")]

    days = audience_history(spark, lake, "vip", D2, D3, user="ann")
    assert days == [
        {"date": D2, "size": 2, "joins": 1, "leaves": 1},
        {"date": D3, "size": 3, "joins": 1, "leaves": 0},
    ]
    # The range opens only its partitions.
    opened = lake.files("audience_changes", where={"snapshot_date": (D2, D3)})
    assert opened and all(str(f["partition"]["snapshot_date"]) in {str(D2), str(D3)} for f in opened)
