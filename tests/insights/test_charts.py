"""Report charts a person can read: no "0%" for a real share, whole column names, a colour
legend, a visible CLV tail, distinct legend names, the largest audiences."""

from __future__ import annotations

import datetime as dt
import re

from segengine.insights import charts as C
from segengine.insights.report import render_html


def test_a_small_share_is_not_shown_as_zero():
    assert [C.share_label(x) for x in (0.0, 0.001, 0.004, 0.005, 0.42, 0.996, 1.0)] == [
        "0%",
        "<1%",
        "<1%",
        "<1%",  # 0.5% rounds to "0%"
        "42%",
        ">99%",
        "100%",
    ]


def test_short_labels_never_read_the_same():
    names = ["Spring sale — email openers", "Spring sale — sms openers", "VIP"]
    short = C.short_labels(names, 16)
    assert len(set(short)) == 3 and short[2] == "VIP"
    assert all(len(s) <= 16 for s in short) and all("…" in s for s in short[:2])
    assert C.short_labels(["a" * 30, "a" * 30], 10) == ["a" * 30, "a" * 30]  # equal names stay whole


def test_heatmap_headers_are_whole_and_there_is_a_colour_legend():
    svg = C.heatmap(
        "m",
        ["Champions"],
        ["Champions", "Hibernating customers"],
        {("Champions", "Hibernating customers"): (0.003, C.share_label(0.003))},
        "from",
        "to",
        legend=("0% of the row", "100%"),
    )
    assert "<title>Hibernating customers</title>" in svg
    spans = re.findall(r"<tspan[^>]*>([^<]*)</tspan>", svg)
    assert "Hibernating" in spans and "customers" in spans
    assert ">&lt;1%</text>" in svg
    assert ">0% of the row</text>" in svg and ">100%</text>" in svg


def test_histogram_on_a_log_scale_keeps_a_thin_tail_visible_and_names_its_axes():
    linear = C.histogram("h", [0, 1, 2], [1000, 1], "predicted CLV")
    log = C.histogram("h", [0, 1, 2], [1000, 1], "predicted CLV", y_title="personas (log scale)", log_scale=True)

    def heights(svg: str) -> list[float]:
        return [float(h) for h in re.findall(r'<rect class="mark"[^>]* height="([\d.]+)"', svg)]

    assert heights(linear)[1] < 1 < 10 < heights(log)[1]
    assert ">personas (log scale)</text>" in log and ">predicted CLV</text>" in log


def _data(audiences: dict[str, int]) -> dict:
    day = dt.date(2025, 6, 30)
    history = [{"snapshot_date": day, "dimension": "audience", "segment": a, "size": n} for a, n in audiences.items()]
    return {"segments": [], "history": history, "matrix": [], "industry": [], "clv_edges": [], "clv_counts": []}


def test_audience_chart_shows_the_ten_largest_and_no_debug_footer():
    sizes = {f"a{i:02d}": i for i in range(14)}  # a13 is the largest; by name a00..a09 came first
    html = render_html(_data(sizes), dt.date(2025, 6, 30))
    chart = html[html.index('id="chart-audience-sizes"') :]
    chart = chart[: chart.index("</figure>")]
    shown = set(re.findall(r"<title>(a\d\d)</title>", chart))
    assert shown == {f"a{i:02d}" for i in range(4, 14)}
    assert "The 10 largest of 14 audiences on 2025-06-30." in chart
    assert re.search(r'<div id="js-status"[^>]*hidden>', html)
