"""``/api/segments``: validate, explain, count and preview a rule document.

The document goes through :func:`segengine.rules.parse_segment` and
:func:`segengine.rules.compile_segment` only; nothing of it reaches Spark except the SQL
the compiler renders. Counts and previews run that SQL against the views the warm
:class:`~segengine.studio.cache.FeatureCache` registered over its cached partition.
"""

from __future__ import annotations

import datetime as dt
import decimal
import re
from typing import Any

from fastapi import APIRouter, Depends, HTTPException

from segengine.audiences import resolver as audience_resolver
from segengine.errors import (
    FeatureSnapshotMissing,
    SegmentDefinitionError,
    did_you_mean,
)
from segengine.features.catalog import CATALOG
from segengine.rules import CompiledSegment, Segment, compile_segment, count_by_persona_type, parse_segment
from segengine.rules.compile import Resolver
from segengine.rules.nulls import count_empty, empty_attrs
from segengine.studio.auth import acting_user
from segengine.studio.models import (
    CountResponse,
    ErrorResponse,
    ExplainResponse,
    PreviewResponse,
    SegmentRequest,
    ValidateResponse,
)
from segengine.studio.state import StudioState, get_state

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 401, 404, 413, 422)}
# parse_segment names a document given as a mapping ``<segment>``; a path follows it.
DOCUMENT_SOURCE = "<segment>"
_PATH = re.compile(r"^[A-Za-z_][\w.\[\]]*: ")
router = APIRouter(prefix="/api/segments", tags=["segments"], responses=ERRORS)


def _in_body(problem: str) -> str:
    """``<segment>: where.all[0].value: …`` -> ``document.where.all[0].value: …`` (the request field)."""
    rest = problem.removeprefix(f"{DOCUMENT_SOURCE}: ")
    if rest == problem:
        return problem
    return f"document.{rest}" if _PATH.match(rest) else f"document: {rest}"


def parse_document(state: StudioState, document: dict[str, Any]) -> Segment:
    """The validated segment.

    Raises:
        SegmentDefinitionError: every problem, one a line, each naming its place in the
            request body (``document.where.all[0].value: expected a number, got …``).
    """
    try:
        return parse_segment(document, max_conditions=state.config.rules.max_conditions)
    except SegmentDefinitionError as exc:
        problems = [_in_body(p) for p in getattr(exc, "problems", None) or str(exc).splitlines()]
        error = SegmentDefinitionError("\n".join(problems))
        error.problems = problems  # type: ignore[attr-defined]
        raise error from None


def visible_resolver(state: StudioState, user: str) -> Resolver:
    """``in_segment`` names -> the rule audiences ``user`` may see (another user's private
    audience is unknown, as it is everywhere else)."""
    return audience_resolver(state.spark, state.lake, user)


def compile_for(state: StudioState, segment: Segment, day: dt.date, user: str, views: Any = None) -> CompiledSegment:
    """Compile ``segment`` for ``day``; ``in_segment`` names resolve to the audiences ``user`` sees."""
    return compile_segment(segment, day, views=views, resolver=visible_resolver(state, user))


def count_segment(state: StudioState, document: dict[str, Any], date: str | None, user: str) -> CountResponse:
    """Members per persona type and the total, on the cached partition of the date."""
    segment = parse_document(state, document)
    snap = state.cache.snapshot(state.day(date))
    compiled = compile_for(state, segment, snap.snapshot_date, user, snap.views)
    counts = count_by_persona_type(state.spark.sql(compiled.sql))
    total = counts.pop("total")
    return CountResponse(name=segment.name, snapshot_date=snap.snapshot_date, by_persona_type=counts, total=total)


def plain(value: Any) -> Any:
    """A JSON-ready value (dates as ISO text, decimals as floats)."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    return value


def preview_columns(columns: list[str], available: list[str]) -> list[str]:
    """The requested columns, checked against the catalog and the partition, each once.

    Raises:
        HTTPException: 422 naming ``columns[i]`` for a name that is not an attribute.
    """
    problems = []
    for i, name in enumerate(columns):
        if name not in CATALOG or name not in available:
            problems.append(f"columns[{i}]: unknown attribute {name!r}{did_you_mean(name, available)}")
    if problems:
        raise HTTPException(422, problems)
    return [c for c in dict.fromkeys(columns) if c not in ("persona_id", "persona_type")]


def preview_segment(
    state: StudioState, document: dict[str, Any], date: str | None, columns: list[str], limit: int, user: str
) -> PreviewResponse:
    """The first ``limit`` members by persona_id, with ``columns`` from the cached partition."""
    segment = parse_document(state, document)
    snap = state.cache.snapshot(state.day(date))
    cols = preview_columns(columns, snap.frame.columns)
    compiled = compile_for(state, segment, snap.snapshot_date, user, snap.views)
    members = state.spark.sql(compiled.sql)
    if cols:
        members = members.join(snap.frame.select("persona_id", *cols), "persona_id", "left")
    rows = members.orderBy("persona_id").limit(limit).collect()  # at most MAX_PREVIEW rows
    shown = ["persona_id", "persona_type", *cols]
    return PreviewResponse(
        name=segment.name,
        snapshot_date=snap.snapshot_date,
        columns=shown,
        rows=[{c: plain(r[c]) for c in shown} for r in rows],
    )


@router.post("/validate", response_model=ValidateResponse)
def validate(
    body: SegmentRequest, state: StudioState = Depends(get_state), user: str = Depends(acting_user)
) -> ValidateResponse:
    """Check a document against the feature catalog (no Spark work); 422 lists every problem."""
    segment = parse_document(state, body.document)
    compiled = compile_for(state, segment, state.day_or_latest(body.date), user)
    return ValidateResponse(
        ok=True,
        name=segment.name,
        condition_count=segment.condition_count,
        segments_used=list(compiled.segments_used),
        needs_events=list(compiled.needs_events),
    )


@router.post("/explain", response_model=ExplainResponse)
def explain(
    body: SegmentRequest, state: StudioState = Depends(get_state), user: str = Depends(acting_user)
) -> ExplainResponse:
    """The document in words and the Spark SQL it compiles to (on the latest date by default)."""
    segment = parse_document(state, body.document)
    compiled = compile_for(state, segment, state.day_or_latest(body.date), user)
    return ExplainResponse(
        name=segment.name,
        snapshot_date=compiled.snapshot_date,
        explanation=compiled.explain(empty_counts(state, compiled)),
        sql=compiled.sql,
    )


def empty_counts(state: StudioState, compiled: CompiledSegment) -> dict[str, int] | None:
    """Personas with each attribute the null rule decides empty, from the cached partition.

    None (not counted) when no condition depends on the null rule, or the date has no
    feature snapshot (explaining needs no data).
    """
    attrs = empty_attrs(compiled.segment)
    if not attrs:
        return None
    try:
        snap = state.cache.snapshot(compiled.snapshot_date)
    except FeatureSnapshotMissing:
        return None
    return count_empty(snap.frame, attrs)


@router.post("/count", response_model=CountResponse)
def count(
    body: SegmentRequest, state: StudioState = Depends(get_state), user: str = Depends(acting_user)
) -> CountResponse:
    """Members per persona type and in total, on the warm cached partition."""
    return count_segment(state, body.document, body.date, user)


@router.post("/preview", response_model=PreviewResponse)
def preview(
    body: SegmentRequest, state: StudioState = Depends(get_state), user: str = Depends(acting_user)
) -> PreviewResponse:
    """The first ``limit`` members (by persona_id) with the chosen catalog columns."""
    return preview_segment(state, body.document, body.date, body.columns, body.limit, user)
