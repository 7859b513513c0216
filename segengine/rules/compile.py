"""Compile a validated segment into one Spark SQL SELECT (persona_id, persona_type).

The query reads temp views (:class:`TableViews`) that :func:`segengine.rules.register_views`
creates for a snapshot date, so many segments share one cached scan of the feature
partition. The SQL is rendered from a :mod:`segengine.rules.sql` tree: identifiers come
only from the catalog and this module, values only through ``literal()``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segengine.dates import parse_date
from segengine.errors import SegmentDefinitionError, did_you_mean
from segengine.rules.nulls import explain_empty_values
from segengine.rules.parse import Segment, parse_segment, slugify
from segengine.rules.registry import RenderContext
from segengine.rules.sequences import STRATEGIES
from segengine.rules.sql import BinOp, Col, InList, Lit, OrderBy, Select, Table, and_

Resolver = Callable[[str], Segment]


@dataclass(frozen=True)
class TableViews:
    """Names of the temp views a compiled segment reads."""

    features: str = "seg_features"
    order_lines: str = "seg_order_lines"
    events: str = "seg_events"
    recommendations: str = "seg_recommendations"
    products: str = "seg_products"


@dataclass(frozen=True)
class CompiledSegment:
    """A segment compiled for one snapshot date.

    Attributes:
        segment: the validated definition.
        snapshot_date: the date the query describes.
        query: the SQL expression tree.
        sql: the Spark SQL text (one SELECT returning persona_id, persona_type).
        segments_used: names of the saved segments inlined through ``in_segment``.
        needs_events: the conditions (and ``top``) that read events, each as
            ``path: words`` (prefixed ``segment 'name'`` inside an inlined segment): in a
            warehouse without an ``events`` table their attributes are null and
            ``did``/``did_not`` see no events.
    """

    segment: Segment
    snapshot_date: dt.date
    query: Select
    sql: str
    segments_used: tuple[str, ...] = ()
    needs_events: tuple[str, ...] = ()

    def explain(self, empty_counts: Mapping[str, int] | None = None) -> str:
        """The definition in words followed by the SQL, for people to read.

        Args:
            empty_counts: attribute -> personas with it empty on the snapshot date, shown
                beside each condition the null rule decides (None: not counted).
        """
        seg = self.segment
        lines = [f"Segment: {seg.name} ({seg.kind}, {seg.visibility}) as of {self.snapshot_date.isoformat()}"]
        if seg.description:
            lines.append(f"Description: {seg.description}")
        lines.append(f"Persona types: {', '.join(seg.persona_types) if seg.persona_types else 'all'}")
        lines.append(f"Conditions ({seg.condition_count}):")
        lines.append(
            "  (none: everyone)"
            if seg.where is None
            else "\n".join("  " + x for x in seg.where.describe().splitlines())
        )
        if seg.top:
            lines.append(f"Top: {seg.top.n} by {seg.top.by} {seg.top.order} (nulls last, ties by persona_id)")
        if self.segments_used:
            lines.append(f"Uses segments: {', '.join(self.segments_used)}")
        lines.extend(explain_empty_values(seg, empty_counts, self.snapshot_date))
        lines.append("SQL:")
        lines.append(self.sql)
        return "\n".join(lines)


def _as_date(value: dt.date | str) -> dt.date:
    return parse_date(value, "snapshot date")


def compile_segment(
    segment: Segment | dict[str, Any] | str | Path,
    snapshot_date: dt.date | str,
    views: TableViews | None = None,
    resolver: Resolver | None = None,
    sequence_strategy: str = "join",
) -> CompiledSegment:
    """Compile ``segment`` to Spark SQL for ``snapshot_date``.

    Args:
        segment: a parsed :class:`Segment` or anything :func:`parse_segment` accepts.
        snapshot_date: the feature snapshot; behaviour conditions only see data up to it.
        views: temp-view names (default :class:`TableViews`).
        resolver: maps a name used by ``in_segment`` to its :class:`Segment` (raise
            ``KeyError``/``LookupError`` or return None when unknown).
        sequence_strategy: how ``sequence`` conditions compile: ``join`` (a semi-join
            per step, the default: the faster one measured) or ``window`` (window
            functions over one relation of every step's occurrences); both give the same
            answer.

    Returns:
        The :class:`CompiledSegment` (``.sql``, ``.explain()``).

    Raises:
        SegmentDefinitionError: invalid document, unknown segment, or a cycle of segments.
        InvalidDate: ``snapshot_date`` is not a date YYYY-MM-DD.
    """
    if not isinstance(segment, Segment):
        segment = parse_segment(segment)
    snapshot = _as_date(snapshot_date)
    used: list[str] = []
    events: list[str] = []
    if sequence_strategy not in STRATEGIES:
        raise ValueError(f"unknown sequence strategy {sequence_strategy!r}; expected one of {', '.join(STRATEGIES)}")
    query = _compile(
        segment, snapshot, views or TableViews(), resolver, (segment.slug,), 0, used, events, sequence_strategy
    )
    return CompiledSegment(
        segment, snapshot, query, query.sql(), tuple(dict.fromkeys(used)), tuple(dict.fromkeys(events))
    )


def _event_uses(segment: Segment, depth: int) -> list[str]:
    """``path: words`` of each condition of ``segment`` (not of inlined ones) reading events."""
    from segengine.features.catalog import EVENT_ATTRIBUTES

    prefix = "" if depth == 0 else f"segment {segment.name!r} "
    # One line each (a sequence describes itself over several lines).
    found = [
        f"{prefix}{c.path}: {' '.join(line.strip() for line in c.describe().splitlines())}"
        for c in (segment.where.walk() if segment.where is not None else ())
        if c.needs_events()
    ]
    if segment.top is not None and segment.top.by in EVENT_ATTRIBUTES:
        found.append(f"{prefix}top: by {segment.top.by}")
    return found


def _compile(
    segment: Segment,
    snapshot: dt.date,
    views: TableViews,
    resolver: Resolver | None,
    stack: tuple[str, ...],
    depth: int,
    used: list[str],
    events: list[str],
    sequence_strategy: str = "join",
) -> Select:
    alias = "f" if depth == 0 else f"f{depth}"
    events.extend(_event_uses(segment, depth))

    def subsegment(name: str, path: str) -> Select:
        origin = segment.source if segment.source != "<segment>" else f"segment {segment.name!r}"
        where = f"{origin}: {path}"
        if resolver is None:
            raise SegmentDefinitionError(f"{where}: in_segment {name!r} needs a segment resolver (none was given)")
        key = slugify(name)
        if key in stack:
            chain = " -> ".join((*stack, key))
            raise SegmentDefinitionError(f"{where}: segments refer to each other in a cycle: {chain}")
        try:
            target = resolver(name)
        except SegmentDefinitionError as exc:
            raise SegmentDefinitionError(f"{where}: cannot resolve segment {name!r}: {exc}") from exc
        except LookupError as exc:
            target, candidates = None, getattr(exc, "candidates", ())
        except Exception as exc:  # noqa: BLE001 - resolvers may raise their own family (AudienceError …)
            raise SegmentDefinitionError(f"{where}: cannot resolve segment {name!r}: {exc}") from exc
        else:
            candidates = ()
        if target is None:
            raise SegmentDefinitionError(f"{where}: unknown segment {name!r}{did_you_mean(name, candidates)}")
        if not isinstance(target, Segment):
            target = parse_segment(target)
        if target.slug in stack:
            chain = " -> ".join((*stack, target.slug))
            raise SegmentDefinitionError(f"{where}: segments refer to each other in a cycle: {chain}")
        used.append(name)
        inner_stack = (*stack, key) if target.slug == key else (*stack, key, target.slug)
        return _compile(target, snapshot, views, resolver, inner_stack, depth + 1, used, events, sequence_strategy)

    rctx = RenderContext(
        snapshot=snapshot, views=views, alias=alias, subsegment=subsegment, sequence_strategy=sequence_strategy
    )
    where = and_(
        BinOp("=", Col("snapshot_date", alias), Lit(snapshot)),
        InList(Col("persona_type", alias), tuple(Lit(t) for t in segment.persona_types))
        if segment.persona_types
        else None,
        segment.where.to_sql(rctx) if segment.where is not None else None,
    )
    order_by: tuple[OrderBy, ...] = ()
    limit = None
    if segment.top is not None:
        # Deterministic: nulls never rank, ties go to the smallest persona_id.
        order_by = (
            OrderBy(Col(segment.top.by, alias), descending=segment.top.order == "desc", nulls_last=True),
            OrderBy(Col("persona_id", alias)),
        )
        limit = segment.top.n
    return Select(
        columns=((Col("persona_id", alias), None), (Col("persona_type", alias), None)),
        source=Table(views.features),
        alias=alias,
        where=where,
        order_by=order_by,
        limit=limit,
    )
