"""Boundary review: are the numeric thresholds of rule-defined segments still meaningful?

For every saved rule audience and every numeric cut in its condition tree
(``{attr: revenue_lifetime, op: ">=", value: 500}``; both ends of ``between``):

* ``members`` / ``members_near``: the audience's members, and those whose value lies
  within ``margin`` (default 10%) of the threshold (``|value - t| <= margin * |t|``),
  i.e. who would flip with a small move of the cut or of their behaviour;
* ``percentile_now``: the threshold's percentile among the segment's population
  (personas of its ``persona_types`` with a value): the share of them below it, x 100;
* ``percentile_before``: the same on the snapshot a quarter earlier (the latest on or
  before the snapshot date minus 3 months; null when there is none);
* ``drift_points`` = now - before; when its size reaches ``drift_points`` (default
  10), ``suggested_threshold`` is today's value at the old percentile (the cut that
  keeps the share it had) and ``suggestion`` says so in words.

Every figure is one aggregate over the snapshot (two small Spark jobs per snapshot,
whatever the number of cuts); only those aggregates reach the driver.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segengine.errors import SegengineError
from segengine.rules import parse_segment
from segengine.rules.conditions import AttributeCondition

NUMERIC = ("integer", "double")
CUT_OPS = ("<", "<=", ">", ">=", "between", "not_between")
BOUNDARY_SCHEMA = (
    "snapshot_date date, audience string, attribute string, op string, threshold double, members long, "
    "members_near long, near_share double, percentile_now double, reference_date date, "
    "percentile_before double, drift_points double, suggested_threshold double, suggestion string"
)


@dataclass(frozen=True)
class Cut:
    """One numeric threshold of one audience."""

    audience: str
    attribute: str
    op: str
    threshold: float
    persona_types: tuple[str, ...] | None


def _walk(node: Any) -> list[Any]:
    out = [node]
    for child in getattr(node, "items", ()) or ():
        out.extend(_walk(child))
    inner = getattr(node, "item", None)
    if inner is not None:
        out.extend(_walk(inner))
    return out


def numeric_cuts(name: str, definition: dict[str, Any]) -> list[Cut]:
    """The numeric thresholds of one segment document (none when it does not parse).

    Args:
        name: the audience's name.
        definition: its segment document (the registry's ``definition``).

    Returns:
        One :class:`Cut` per numeric comparison (two for ``between``).
    """
    try:
        seg = parse_segment(definition)
    except SegengineError:
        return []
    cuts: list[Cut] = []
    for node in _walk(seg.where) if seg.where is not None else []:
        if not isinstance(node, AttributeCondition) or node.type not in NUMERIC or node.op not in CUT_OPS:
            continue
        values = node.value if node.op in ("between", "not_between") else [node.value]
        for v in values:
            cuts.append(Cut(name, node.attr, node.op, float(v), seg.persona_types))
    return cuts


def _population(cut: Cut) -> Column:
    present = F.col(cut.attribute).isNotNull()
    if cut.persona_types:
        present = present & F.col("persona_type").isin(*cut.persona_types)
    return present


def _percentiles(features: DataFrame, cuts: list[Cut]) -> list[float | None]:
    """Per cut: share of the population below the threshold, x 100 (one aggregate)."""
    exprs = [
        (F.avg(F.when(_population(c), (F.col(c.attribute) < F.lit(c.threshold)).cast("double"))) * 100.0).alias(f"p{i}")
        for i, c in enumerate(cuts)
    ]
    row = features.agg(*exprs).first()
    assert row is not None  # a global aggregate has exactly one row
    return [None if row[f"p{i}"] is None else float(row[f"p{i}"]) for i in range(len(cuts))]


def boundary_review(
    features: DataFrame,
    before: DataFrame | None,
    members: DataFrame,
    cuts: list[Cut],
    snapshot_date: dt.date,
    reference_date: dt.date | None,
    margin: float = 0.1,
    drift_points: float = 10.0,
) -> list[tuple[Any, ...]]:
    """The boundary review rows (see the module doc).

    Args:
        features: the snapshot's ``customer_features``.
        before: the snapshot a quarter earlier, or None.
        members: ``segment`` (the audience name), ``persona_id`` of the audiences' members.
        cuts: :func:`numeric_cuts` of the audiences.
        snapshot_date: the snapshot.
        reference_date: the date of ``before``.
        margin: the "near the threshold" band, as a share of the threshold.
        drift_points: the percentile move that triggers a suggestion.

    Returns:
        Tuples in :data:`BOUNDARY_SCHEMA` order (a few per audience).
    """
    if not cuts:
        return []
    attrs = sorted({c.attribute for c in cuts})
    m = members.select("segment", "persona_id").join(features.select("persona_id", *attrs), "persona_id", "inner")
    near_exprs = []
    for i, c in enumerate(cuts):
        mine = F.col("segment") == F.lit(c.audience)
        near = F.abs(F.col(c.attribute) - F.lit(c.threshold)) <= F.lit(abs(c.threshold) * margin)
        near_exprs += [F.count(F.when(mine, 1)).alias(f"m{i}"), F.count(F.when(mine & near, 1)).alias(f"n{i}")]
    counts = m.agg(*near_exprs).first()
    assert counts is not None  # a global aggregate has exactly one row
    now = _percentiles(features, cuts)
    then = _percentiles(before, cuts) if before is not None else [None] * len(cuts)
    drifts = [None if a is None or b is None else a - b for a, b in zip(now, then, strict=True)]
    drifted = [i for i, d in enumerate(drifts) if d is not None and abs(d) >= drift_points]
    suggested: dict[int, float | None] = {}
    if drifted:
        exprs = []
        for i in drifted:
            c = cuts[i]
            share = min(max((then[i] or 0.0) / 100.0, 0.0), 1.0)
            exprs.append(F.percentile_approx(F.when(_population(c), F.col(c.attribute)), share, 10000).alias(f"s{i}"))
        row = features.agg(*exprs).first()
        assert row is not None  # a global aggregate has exactly one row
        suggested = {i: None if row[f"s{i}"] is None else float(row[f"s{i}"]) for i in drifted}
    out = []
    for i, c in enumerate(cuts):
        size, n_near = int(counts[f"m{i}"]), int(counts[f"n{i}"])
        drift = drifts[i]
        text = None
        if i in suggested and suggested[i] is not None:
            text = (
                f"{c.attribute} {c.op} {c.threshold:g} now sits at the {now[i]:.0f}th percentile "
                f"(was {then[i]:.0f}th on {reference_date}): {suggested[i]:g} keeps the share it had"
            )
        out.append(
            (
                snapshot_date,
                c.audience,
                c.attribute,
                c.op,
                c.threshold,
                size,
                n_near,
                n_near / size if size else None,
                now[i],
                reference_date,
                then[i],
                drift,
                suggested.get(i),
                text,
            )
        )
    return out
