"""Who joined and who left an audience, newest first, and how the CLI prints it."""

from __future__ import annotations

import datetime as dt

from segengine.audiences.membership import apply_membership, membership_changes
from segengine.audiences.registry import ensure_tables
from segengine.cli.audience import changes_lines, count_line, created_line

from .conftest import D1, D2


def test_membership_changes_lists_who_joined_and_left_newest_first(spark, lake):
    ids = lambda *p: spark.createDataFrame([(x,) for x in p], "persona_id string")  # noqa: E731
    ensure_tables(spark, lake)
    apply_membership(spark, lake, "a1", ids("p1", "p2", "p3"), D1)
    apply_membership(spark, lake, "a1", ids("p2", "p4"), D2)
    apply_membership(spark, lake, "other", ids("p9"), D2)

    got = membership_changes(lake, "a1", D1, D2, limit=2)

    assert (got["joined"], got["left"]) == (4, 2)
    assert got["joined_ids"] == [(D2, "p4"), (D1, "p1")]
    assert got["left_ids"] == [(D2, "p1"), (D2, "p3")]
    assert membership_changes(lake, "a1", D2, D2, limit=5)["joined_ids"] == [(D2, "p4")]


def test_changes_lines_say_how_many_are_shown():
    got = {"joined": 4, "left": 1, "joined_ids": [(D2, "p4"), (D1, "p1")], "left_ids": [(D2, "p3")]}
    assert changes_lines("vip", D1, D2, got) == [
        "'vip' from 2025-06-01 to 2025-06-02: 4 joined, 1 left",
        "joined (newest 2 of 4):",
        "  2025-06-02  p4",
        "  2025-06-01  p1",
        "left (1):",
        "  2025-06-02  p3",
    ]
    none = {"joined": 0, "left": 0, "joined_ids": [], "left_ids": []}
    assert changes_lines("vip", D1, D2, none) == ["'vip' from 2025-06-01 to 2025-06-02: 0 joined, 0 left"]


def test_created_line_names_the_audience_its_size_and_date():
    assert created_line("vip", "static", "ab12", 1234, dt.date(2025, 6, 30)) == (
        "created static audience 'vip' (id ab12): 1,234 members on 2025-06-30"
    )
    assert created_line("new", "dynamic", "cd34", None, None) == (
        "created dynamic audience 'new' (id cd34): no members yet; "
        "`segengine audience refresh 'new' --date YYYY-MM-DD` fills it"
    )


def test_count_line_says_for_which_date():
    assert count_line("vip", 1234, dt.date(2025, 6, 30)) == "'vip': 1,234 members on 2025-06-30"
    assert count_line("new", 1, None) == "'new': 1 member (never refreshed)"
