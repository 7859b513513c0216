"""``/api/profiles/{persona_id}``: the customer 360, as ``segengine profile`` gives it.

The profile is :func:`segengine.insights.profile.customer_profile`, unchanged, except its
``audiences`` section: the studio keeps only the audiences the acting user may see, so a
private audience of someone else does not show up through a member's profile.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query

from segengine.errors import FeatureSnapshotMissing, InvalidDate, SegengineError
from segengine.insights.profile import customer_profile
from segengine.studio.auth import acting_user
from segengine.studio.models import DATE_PATTERN, ErrorResponse
from segengine.studio.state import StudioState, get_state

MAX_ID_CHARS = 200
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (400, 401, 404, 422)}
router = APIRouter(prefix="/api/profiles", tags=["profiles"], responses=ERRORS)


def persona_profile(state: StudioState, persona_id: str, date: str | None, user: str) -> dict[str, Any]:
    """The 360 of one persona as of ``date`` (default: the latest snapshot).

    Raises:
        HTTPException: 404 when the persona is in neither personas nor customer_features.
    """
    try:
        profile = customer_profile(state.spark, state.lake, state.config, persona_id, state.day(date), user)
    except (InvalidDate, FeatureSnapshotMissing):
        raise
    except SegengineError as exc:
        raise HTTPException(404, str(exc)) from None
    return profile


@router.get("/{persona_id}")
def show(
    persona_id: str = Path(..., min_length=1, max_length=MAX_ID_CHARS),
    date: str | None = Query(None, pattern=DATE_PATTERN),
    state: StudioState = Depends(get_state),
    user: str = Depends(acting_user),
) -> dict[str, Any]:
    """identity, consents, tiers, CLV, features, orders, recent events, segment history,
    recommendations, audiences (those the user may see), tickets and survey answers."""
    return persona_profile(state, persona_id, date, user)
