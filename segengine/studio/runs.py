"""``/api/runs``: the latest rows of the ``runs`` table (one per pipeline step run)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Depends, Query

from segengine.studio.auth import acting_user
from segengine.studio.models import ErrorResponse, RunRow
from segengine.studio.state import StudioState, get_state

MAX_RUNS = 500
ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorResponse} for code in (401, 422)}
router = APIRouter(prefix="/api/runs", tags=["runs"], responses=ERRORS, dependencies=[Depends(acting_user)])


def latest_runs(state: StudioState, limit: int) -> list[RunRow]:
    """The newest ``limit`` runs rows, newest first (the table is small: read on the driver)."""
    if not state.lake.exists("runs"):
        return []
    rows = state.lake.read_rows("runs")
    rows.sort(key=lambda r: r.get("started_at") or dt.datetime.min, reverse=True)
    return [RunRow(**{k: r.get(k) for k in RunRow.model_fields}) for r in rows[:limit]]


@router.get("", response_model=list[RunRow])
def runs(limit: int = Query(30, ge=1, le=MAX_RUNS), state: StudioState = Depends(get_state)) -> list[RunRow]:
    """The latest ``limit`` pipeline step runs: step, status, rows, seconds, message."""
    return latest_runs(state, limit)
