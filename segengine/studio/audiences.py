"""``/api/audiences``: list, create, show and preview audiences, as the acting user sees them.

Visibility is the registry's own (:mod:`segengine.audiences.registry`): a private audience
exists only for its owner. The studio goes one step further than the CLI's message: to
anyone else it is "no audience", without naming the owner.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Depends, HTTPException, Query

from segengine.audiences import create_audience, get_audience, list_audiences, members
from segengine.audiences.registry import Audience, latest_refresh_stats
from segengine.errors import AudienceError, UnknownAudience, did_you_mean
from segengine.rules import compile_segment
from segengine.studio.auth import acting_user
from segengine.studio.models import (
    MAX_PREVIEW,
    AudienceCreate,
    AudienceDetail,
    AudienceSummary,
    ErrorResponse,
    Member,
    MembersResponse,
)
from segengine.studio.segments import compile_for, parse_document
from segengine.studio.state import StudioState, get_state

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.lake import Lake

ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 401, 404, 409, 413, 422)}
router = APIRouter(prefix="/api/audiences", tags=["audiences"], responses=ERRORS)


class CachedEvaluator:
    """The rule compiler over the studio's cached partitions (an audiences ``Evaluator``).

    Saving an audience evaluates its members on the warm cache rather than reading and
    caching the partition a second time (the registry's default evaluator would).
    """

    def __init__(self, state: StudioState) -> None:
        self.state = state

    def prepare(self, spark: SparkSession, lake: Lake, snapshot_date: dt.date) -> None:
        self.state.cache.snapshot(snapshot_date)

    def __call__(
        self, spark: SparkSession, lake: Lake, definition: dict[str, Any], snapshot_date: dt.date, resolve: Any
    ) -> DataFrame:
        snap = self.state.cache.snapshot(snapshot_date)
        segment = parse_document(self.state, definition)
        compiled = compile_segment(segment, snap.snapshot_date, views=snap.views, resolver=resolve)
        return spark.sql(compiled.sql).select("persona_id")


def visible_audience(state: StudioState, name: str, user: str) -> Audience:
    """The audience ``name`` (or id) as ``user`` sees it.

    Raises:
        HTTPException: 404 when unknown or private to someone else: the same answer,
            with a "did you mean" among the audiences ``user`` sees, so the two cannot be
            told apart.
    """
    try:
        return get_audience(state.spark, state.lake, name, user)
    except AudienceError as exc:
        if isinstance(exc, UnknownAudience):
            candidates = list(exc.candidates)
        else:
            candidates = [r["name"] for r in audience_rows(state, user)]
        raise HTTPException(404, f"no audience {name!r}{did_you_mean(name, candidates)}") from None


def audience_rows(state: StudioState, user: str) -> list[dict[str, Any]]:
    """The audiences ``user`` may see, newest update first, with their latest size."""
    return list_audiences(state.spark, state.lake, user=user)


def audience_detail(state: StudioState, aud: Audience) -> AudienceDetail:
    size, day = latest_refresh_stats(state.spark, state.lake, [aud.audience_id]).get(aud.audience_id, (None, None))
    data = dataclasses.asdict(aud)
    data["definition"] = aud.definition_dict
    return AudienceDetail(**data, size=size, refreshed_for=day)


def audience_members(state: StudioState, aud: Audience, user: str, limit: int) -> list[Member]:
    """The first ``limit`` members by persona_id."""
    rows = members(state.spark, state.lake, aud.audience_id, user).orderBy("persona_id").limit(limit).collect()
    return [Member(persona_id=r["persona_id"], since=r["since"]) for r in rows]


def save_audience(state: StudioState, body: AudienceCreate, user: str) -> Audience:
    """Validate the document, then save it as a rules audience owned by ``user``.

    The members are evaluated on ``body.date`` (default: the latest snapshot) at once, for
    a dynamic audience as for a static one, so the new audience opens with its members.
    """
    segment = parse_document(state, body.document)
    day = state.day(body.date) or state.cache.latest_date()
    compile_for(state, segment, day or dt.date.today(), user)  # in_segment names, as this user sees them
    audience_id = create_audience(
        state.spark,
        state.lake,
        state.config,
        body.name or segment.name,
        user,
        body.kind,
        "rules",
        dict(body.document),
        visibility=body.visibility,
        snapshot_date=day,
        evaluator=CachedEvaluator(state),
    )
    return get_audience(state.spark, state.lake, audience_id, user)


@router.get("", response_model=list[AudienceSummary])
def list_visible(state: StudioState = Depends(get_state), user: str = Depends(acting_user)) -> list[AudienceSummary]:
    """The audiences the acting user may see (shared ones and their own private ones)."""
    return [AudienceSummary(**r) for r in audience_rows(state, user)]


@router.post("", response_model=AudienceDetail, status_code=201)
def create(
    body: AudienceCreate, state: StudioState = Depends(get_state), user: str = Depends(acting_user)
) -> AudienceDetail:
    """Save a rule document as a static or dynamic, private or shared audience."""
    return audience_detail(state, save_audience(state, body, user))


@router.get("/{name}", response_model=AudienceDetail)
def show(name: str, state: StudioState = Depends(get_state), user: str = Depends(acting_user)) -> AudienceDetail:
    """One audience by name or id, with its definition and latest size."""
    return audience_detail(state, visible_audience(state, name, user))


@router.get("/{name}/members", response_model=MembersResponse)
def show_members(
    name: str,
    limit: int = Query(20, ge=1, le=MAX_PREVIEW),
    state: StudioState = Depends(get_state),
    user: str = Depends(acting_user),
) -> MembersResponse:
    """The first ``limit`` members (by persona_id) and the date each joined."""
    aud = visible_audience(state, name, user)
    return MembersResponse(audience=aud.name, members=audience_members(state, aud, user, limit))
