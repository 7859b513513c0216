"""Overlap: exact pairwise counts in one pass, the HLL estimate, and the report's heatmap."""

from __future__ import annotations

import datetime as dt

import pytest

from segengine.audiences.overlap import overlap_counts, overlap_counts_approx, overlap_table

# a: p1..p4, b: p3..p6, c: p1 and p9 (p3 listed twice in a: duplicates are fine)
MEMBERS = (
    [("a", f"p{i}") for i in (1, 2, 3, 3, 4)] + [("b", f"p{i}") for i in (3, 4, 5, 6)] + [("c", "p1"), ("c", "p9")]
)
NAMES = {"a": "A", "b": "B", "c": "C"}


def _frame(spark):
    return spark.createDataFrame(MEMBERS, "audience_id string, persona_id string")


def test_exact_overlap_counts_jaccard_and_shares(spark):
    rows = overlap_table([r.asDict() for r in overlap_counts(_frame(spark)).collect()], NAMES)
    got = {(r["a"], r["b"]): (r["both"], r["jaccard"], r["share_a_in_b"]) for r in rows}
    assert got == {
        ("A", "A"): (4, 1.0, 1.0),
        ("A", "B"): (2, 2 / 6, 0.5),
        ("A", "C"): (1, 1 / 5, 0.25),
        ("B", "A"): (2, 2 / 6, 0.5),
        ("B", "B"): (4, 1.0, 1.0),
        ("B", "C"): (0, 0.0, 0.0),
        ("C", "A"): (1, 1 / 5, 0.5),
        ("C", "B"): (0, 0.0, 0.0),
        ("C", "C"): (2, 1.0, 1.0),
    }


def test_approximate_overlap_matches_the_exact_one_on_small_audiences(spark):
    exact = {(r["a"], r["b"]): r["both"] for r in overlap_counts(_frame(spark)).collect()}
    approx = {(r["a"], r["b"]): r["both"] for r in overlap_counts_approx(_frame(spark)).collect()}
    for pair, n in approx.items():
        assert n == pytest.approx(exact.get(pair, 0), abs=0.5), pair


def test_report_draws_the_overlap_heatmap():
    from segengine.insights.report import render_html

    overlap = overlap_table(
        [{"a": "a", "b": "a", "both": 4}, {"a": "a", "b": "b", "both": 2}, {"a": "b", "b": "b", "both": 2}],
        {"a": "VIP <1>", "b": "B"},
    )
    data = {
        "segments": [],
        "history": [],
        "matrix": [],
        "industry": [],
        "clv_edges": [],
        "clv_counts": [],
        "overlap": overlap,
    }
    html = render_html(data, dt.date(2025, 6, 30))
    assert 'id="audience-overlap"' in html or "audience-overlap" in html
    assert "VIP &lt;1&gt;" in html and "VIP <1>" not in html
    assert "50%" in html  # half of VIP's members are in B
