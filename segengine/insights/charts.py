"""Tiny, dependency-free SVG charts for the HTML report.

The report must open offline, so charts are rendered here as inline SVG strings rather
than by a JavaScript library from a CDN. Inputs are small, already-aggregated Python
lists (per-segment summaries, histogram bins), never customer-level data. Every text
is escaped; every mark carries a ``<title>`` so hovering shows the exact value.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

PALETTE = (
    "#4e79a7",
    "#f28e2b",
    "#e15759",
    "#76b7b2",
    "#59a14f",
    "#edc948",
    "#b07aa1",
    "#ff9da7",
    "#9c755f",
    "#bab0ac",
)
FONT = 'font-family="system-ui, sans-serif" font-size="12"'


def fmt(value: float | int | None, digits: int = 1) -> str:
    """Compact human number: 1234567 -> 1.2M, 0.256 -> 0.3 (None -> '-')."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    v = float(value)
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= size:
            return f"{v / size:.{digits}f}{suffix}"
    if v == int(v):
        return str(int(v))
    return f"{v:.{digits}f}" if abs(v) >= 1 else f"{v:.{digits + 1}f}"


def share_label(share: float) -> str:
    """A share as a whole percent, but never "0%" for a share above nothing ("<1%")."""
    text = f"{share:.0%}"
    if share > 0 and text == "0%":
        return "<1%"
    if share < 1 and text == "100%":
        return ">99%"
    return text


def short_labels(labels: Sequence[str], limit: int) -> list[str]:
    """Labels cut to ``limit`` characters with an ellipsis, told apart when the cut makes two equal.

    Two labels that share their first characters keep their ends instead
    (``Spring sale — m…ers`` / ``Spring sale — s…ers``), so no two entries read the same.
    """

    def cut(text: str, tail: int) -> str:
        if len(text) <= limit:
            return text
        head = max(limit - tail - 1, 1)
        return text[:head] + "…" + (text[-tail:] if tail else "")

    out = [cut(str(t), 0) for t in labels]
    for tail in range(1, limit):
        clashes = {o for o in out if out.count(o) > 1}
        if not clashes:
            break
        out = [cut(str(t), tail) if o in clashes else o for t, o in zip(labels, out, strict=True)]
    if len(set(out)) < len(out):  # still equal when cut: show them whole
        out = [str(t) for t in labels]
    return out


def _wrapped(text: str, width: int) -> list[str]:
    """Up to two lines of about ``width`` characters, split at spaces (a word longer is cut)."""
    words, lines, line = str(text).split(), [], ""
    for w in words:
        if line and len(line) + 1 + len(w) > width:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    lines.append(line)
    if len(lines) > 2:
        lines = [lines[0], " ".join(lines[1:])]
    return [ln if len(ln) <= width else ln[: width - 1] + "…" for ln in lines]


def _svg(width: int, height: int, body: list[str], name: str) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" data-chart="{escape(name)}" '
        f'viewBox="0 0 {width} {height}" width="100%" role="img" {FONT}>' + "".join(body) + "</svg>"
    )


def empty_chart(name: str, message: str, width: int = 560, height: int = 80) -> str:
    """An SVG that says why there is nothing to draw (still a rendered chart)."""
    body = [
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="#f6f6f6"/>',
        f'<text x="{width / 2}" y="{height / 2 + 4}" text-anchor="middle" fill="#666">{escape(message)}</text>',
    ]
    return _svg(width, height, body, name).replace('class="chart-svg"', 'class="chart-svg empty"', 1)


def bar_chart(
    name: str, labels: Sequence[str], values: Sequence[float | None], unit: str = "", width: int = 560
) -> str:
    """Horizontal bars, one per label, with the value printed at the end of each bar."""
    if not labels:
        return empty_chart(name, "No data yet")
    row, left, right = 26, 150, 70
    height = row * len(labels) + 20
    top = max([v or 0 for v in values] + [0]) or 1
    span = width - left - right
    body = []
    for i, (label, value) in enumerate(zip(labels, values)):
        y = 10 + i * row
        w = max(0.0, (value or 0) / top * span)
        body.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end">{escape(str(label))}</text>'
            f'<rect class="mark" x="{left}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" fill="{PALETTE[i % len(PALETTE)]}">'
            f"<title>{escape(str(label))}: {fmt(value, 2)} {escape(unit)}</title></rect>"
            f'<text x="{left + w + 4:.1f}" y="{y + 15}" fill="#333">{fmt(value)}</text>'
        )
    return _svg(width, height, body, name)


def _color(share: float, base: tuple[int, int, int] = (78, 121, 167)) -> str:
    share = min(max(share, 0.0), 1.0)
    r, g, b = (round(255 - (255 - c) * share) for c in base)
    return f"rgb({r},{g},{b})"


def heatmap(
    name: str,
    rows: Sequence[str],
    cols: Sequence[str],
    cell: dict[tuple[str, str], tuple[float, str]],
    row_title: str = "",
    col_title: str = "",
    cell_width: int = 86,
    legend: tuple[str, str] | None = None,
    outlines: Sequence[tuple[str, int, int, int, int]] = (),
) -> str:
    """A grid of cells coloured by intensity (0–1) and labelled with text.

    Args:
        name: chart id.
        rows: row labels, top to bottom.
        cols: column labels, left to right (wrapped on two lines; the whole name on hover).
        cell: ``(row, col) -> (intensity 0..1, label)``; missing cells are blank.
        row_title: axis title on the left.
        col_title: axis title on top.
        cell_width: width of one cell in px.
        legend: the words at the light and the dark end of a colour scale drawn below.
        outlines: ``(label, first_row, last_row, first_col, last_col)`` (indices,
            inclusive): a coloured frame around those cells, each listed under the grid.
    """
    if not rows or not cols:
        return empty_chart(name, "No data yet")
    left, top, ch = 150, 70, 28
    width = left + cell_width * len(cols) + 10
    height = top + ch * len(rows) + 10 + (34 if legend else 0) + 18 * len(outlines)
    body = [f'<text x="{left}" y="14" fill="#555">{escape(col_title)}</text>']
    if row_title:
        body.append(f'<text x="4" y="{top - 8}" fill="#555">{escape(row_title)}</text>')
    chars = max(6, cell_width // 7)
    for j, c in enumerate(cols):
        x = left + j * cell_width + cell_width / 2
        lines = _wrapped(str(c), chars)
        spans = "".join(
            f'<tspan x="{x}" dy="{0 if k == 0 else 14}">{escape(line)}</tspan>' for k, line in enumerate(lines)
        )
        y = top - 8 - 14 * (len(lines) - 1)
        body.append(f'<text x="{x}" y="{y}" text-anchor="middle"><title>{escape(str(c))}</title>{spans}</text>')
    for i, r in enumerate(rows):
        y = top + i * ch
        body.append(f'<text x="{left - 6}" y="{y + 18}" text-anchor="end">{escape(str(r))}</text>')
        for j, c in enumerate(cols):
            x = left + j * cell_width
            if (r, c) not in cell:
                body.append(f'<rect x="{x}" y="{y}" width="{cell_width - 2}" height="{ch - 2}" fill="#fafafa"/>')
                continue
            intensity, label = cell[(r, c)]
            ink = "#fff" if intensity > 0.55 else "#222"
            body.append(
                f'<rect class="mark" x="{x}" y="{y}" width="{cell_width - 2}" height="{ch - 2}" fill="{_color(intensity)}">'
                f"<title>{escape(str(r))} / {escape(str(c))}: {escape(label)}</title></rect>"
                f'<text x="{x + cell_width / 2 - 1}" y="{y + 18}" text-anchor="middle" fill="{ink}">{escape(label)}</text>'
            )
    if legend:
        y = top + ch * len(rows) + 14
        steps = 10
        for k in range(steps):
            body.append(
                f'<rect x="{left + 40 + k * 16}" y="{y}" width="16" height="10" fill="{_color((k + 0.5) / steps)}"/>'
            )
        body.append(f'<text x="{left + 34}" y="{y + 9}" text-anchor="end" fill="#555">{escape(legend[0])}</text>')
        body.append(f'<text x="{left + 46 + steps * 16}" y="{y + 9}" fill="#555">{escape(legend[1])}</text>')
    key_y = top + ch * len(rows) + (34 if legend else 0) + 22
    for k, (label, r0, r1, c0, c1) in enumerate(outlines):
        colour = PALETTE[(k + 1) % len(PALETTE)]  # not the blue of the cells
        inset = 2 + 2 * (k % 3)  # nested frames of overlapping segments stay visible
        x, y = left + c0 * cell_width - 1 + inset, top + r0 * ch - 1 + inset
        w, h = (c1 - c0 + 1) * cell_width - 2 * inset, (r1 - r0 + 1) * ch - 2 * inset
        body.append(
            f'<rect class="outline" x="{x}" y="{y}" width="{w}" height="{h}" fill="none" stroke="{colour}" '
            f'stroke-width="3"><title>{escape(label)}</title></rect>'
        )
        ky = key_y + 18 * k
        body.append(
            f'<rect x="{left}" y="{ky - 10}" width="14" height="10" fill="none" stroke="{colour}" stroke-width="3"/>'
        )
        body.append(f'<text x="{left + 20}" y="{ky}">{escape(label)}</text>')
    return _svg(width, height, body, name)


def histogram(
    name: str,
    edges: Sequence[float],
    counts: Sequence[int],
    unit: str = "",
    width: int = 560,
    y_title: str = "",
    log_scale: bool = False,
) -> str:
    """Vertical bars for ``len(edges) - 1`` bins with their counts.

    With ``log_scale`` the bar heights follow log(1 + count), so a long thin tail (a few
    personas with a high CLV) stays visible beside a tall first bin.
    """
    if not counts or sum(counts) == 0:
        return empty_chart(name, "No data yet")
    left, bottom, top, height = 50, 34, 10 + (16 if y_title else 0), 220 + (16 if y_title else 0)
    span_h = height - bottom - top
    bw = (width - left - 10) / len(counts)
    peak = max(counts)
    scale = (lambda n: math.log1p(n) / math.log1p(peak)) if log_scale else (lambda n: n / peak)
    body = [f'<line x1="{left}" y1="{height - bottom}" x2="{width - 10}" y2="{height - bottom}" stroke="#999"/>']
    if y_title:
        body.append(f'<text x="4" y="12" fill="#555">{escape(y_title)}</text>')
    body.append(f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{fmt(peak)}</text>')
    for i, count in enumerate(counts):
        h = scale(count) * span_h
        x = left + i * bw
        body.append(
            f'<rect class="mark" x="{x + 1:.1f}" y="{height - bottom - h:.1f}" width="{bw - 2:.1f}" height="{h:.1f}" '
            f'fill="{PALETTE[0]}"><title>{fmt(edges[i], 2)}–{fmt(edges[i + 1], 2)} {escape(unit)}: {count}</title></rect>'
        )
    # The end labels anchor inwards: a centred last label ran past the chart's edge
    # (the report showed "19.9" for 19.9k).
    for i, anchor in ((0, "start"), (len(counts) // 2, "middle"), (len(counts), "end")):
        x = left + i * bw
        body.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="{anchor}">{fmt(edges[i])}</text>')
    body.append(f'<text x="{width - 10}" y="{height - 4}" text-anchor="end" fill="#555">{escape(unit)}</text>')
    return _svg(width, height, body, name)


def stacked_bars(
    name: str, bars: Sequence[tuple[str, dict[str, float]]], order: Sequence[str], width: int = 560
) -> str:
    """One 100% stacked horizontal bar per ``(label, {part: value})``, parts in ``order``."""
    if not bars:
        return empty_chart(name, "No data yet")
    left, row = 110, 34
    height = row * len(bars) + 40
    span = width - left - 10
    body = []
    for i, (label, parts) in enumerate(bars):
        y = 8 + i * row
        total = sum(v for v in parts.values() if v) or 1.0
        x = float(left)
        body.append(f'<text x="{left - 6}" y="{y + 18}" text-anchor="end">{escape(label)}</text>')
        for k, part in enumerate(order):
            share = (parts.get(part) or 0.0) / total
            w = share * span
            if w <= 0:
                continue
            body.append(
                f'<rect class="mark" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 8}" fill="{PALETTE[k % len(PALETTE)]}">'
                f"<title>{escape(label)} / {escape(part)}: {share:.1%}</title></rect>"
            )
            if w > 34:
                body.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + 18}" text-anchor="middle" fill="#fff">{share:.0%}</text>'
                )
            x += w
    y = 8 + len(bars) * row + 8
    for k, part in enumerate(order):
        body.append(
            f'<rect x="{left + k * 90}" y="{y}" width="12" height="12" fill="{PALETTE[k % len(PALETTE)]}"/>'
            f'<text x="{left + k * 90 + 16}" y="{y + 10}">{escape(part)}</text>'
        )
    return _svg(width, height, body, name)


def line_chart(
    name: str, xs: Sequence[str], series: Mapping[str, Sequence[float | None]], unit: str = "", width: int = 560
) -> str:
    """Lines over an ordinal x axis (e.g. snapshot dates), one per series, with a legend."""
    if not xs or not series:
        return empty_chart(name, "No data yet")
    left, right, top, bottom = 56, 170, 12, 40
    height = 240
    values = [v for vals in series.values() for v in vals if v is not None]
    lo, hi = min(values + [0.0]), max(values + [0.0])
    hi = hi if hi > lo else lo + 1
    span_w, span_h = width - left - right, height - top - bottom

    def px(i: int) -> float:
        return left + (span_w * i / (len(xs) - 1) if len(xs) > 1 else span_w / 2)

    def py(v: float) -> float:
        return top + span_h - (v - lo) / (hi - lo) * span_h

    body = [
        f'<line x1="{left}" y1="{top + span_h}" x2="{left + span_w}" y2="{top + span_h}" stroke="#999"/>',
        f'<text x="{left - 6}" y="{top + 10}" text-anchor="end">{fmt(hi)}</text>',
        f'<text x="{left - 6}" y="{top + span_h}" text-anchor="end">{fmt(lo)}</text>',
        f'<text x="{left}" y="{height - 4}" fill="#555">{escape(unit)}</text>',
    ]
    for i in sorted({0, len(xs) - 1}):
        body.append(f'<text x="{px(i):.1f}" y="{top + span_h + 16}" text-anchor="middle">{escape(xs[i])}</text>')
    legend = short_labels(list(series), 22)
    for k, (label, vals) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        pts = [(px(i), py(v), v) for i, v in enumerate(vals) if v is not None]
        if len(pts) > 1:
            path = " ".join(f"{x:.1f},{y:.1f}" for x, y, _ in pts)
            body.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for (x, y, v), xi in zip(pts, [i for i, v in enumerate(vals) if v is not None]):
            body.append(
                f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{color}">'
                f"<title>{escape(label)} {escape(xs[xi])}: {fmt(v, 2)}</title></circle>"
            )
        ly = top + 12 + k * 16
        body.append(
            f'<rect x="{width - right + 10}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
            f'<text x="{width - right + 24}" y="{ly}"><title>{escape(label)}</title>{escape(legend[k])}</text>'
        )
    return _svg(width, height, body, name)
