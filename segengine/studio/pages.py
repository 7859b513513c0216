"""The studio's pages: server-rendered HTML (Jinja2), four tabs, one small script.

Each page calls the same functions as the API routes, so what a page shows is what the
API answers. Only the segment builder needs JavaScript (``static/studio.js``): it posts
the document to ``/api/segments/count`` and ``/explain`` after every change and saves
it through ``POST /api/audiences``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from segengine.errors import SegengineError
from segengine.studio.audiences import audience_detail, audience_members, audience_rows, visible_audience
from segengine.studio.auth import acting_user
from segengine.studio.catalog import catalog_attributes
from segengine.studio.profiles import persona_profile
from segengine.studio.runs import latest_runs
from segengine.studio.state import StudioState, get_state

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
# JSON as text to read (escaped by the page's autoescape like any text); ``tojson`` is for
# data inside <script> and shows ``>`` as ``\u003e``.
TEMPLATES.env.filters["json_text"] = lambda value, indent=None: json.dumps(
    value, indent=indent, ensure_ascii=False, default=str
)
MEMBERS_SHOWN = 50
RUNS_SHOWN = 50

router = APIRouter(include_in_schema=False)


def _page(request: Request, name: str, tab: str, user: str, status: int = 200, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, name, {"tab": tab, "user": user, **context}, status_code=status)


def _problem(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, HTTPException):
        detail = exc.detail
        return exc.status_code, "; ".join(map(str, detail)) if isinstance(detail, list) else str(detail)
    return 400, " ".join(ln.strip() for ln in str(exc).splitlines() if ln.strip())


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/segments", status_code=303)


@router.get("/segments", response_class=HTMLResponse)
def segments_page(
    request: Request, state: StudioState = Depends(get_state), user: str = Depends(acting_user)
) -> HTMLResponse:
    catalog = [a.model_dump() for a in catalog_attributes()]
    latest = state.cache.latest_date()
    return _page(
        request,
        "segments.html",
        "segments",
        user,
        catalog=catalog,
        latest=latest.isoformat() if latest else None,
        audiences=audience_rows(state, user),
    )


@router.get("/audiences", response_class=HTMLResponse)
def audiences_page(
    request: Request,
    name: str | None = Query(None, max_length=200),
    state: StudioState = Depends(get_state),
    user: str = Depends(acting_user),
) -> HTMLResponse:
    rows = audience_rows(state, user)
    if not name:
        return _page(request, "audiences.html", "audiences", user, audiences=rows, audience=None)
    try:
        aud = visible_audience(state, name, user)
        detail = audience_detail(state, aud)
        shown = audience_members(state, aud, user, MEMBERS_SHOWN)
    except (HTTPException, SegengineError) as exc:
        status, message = _problem(exc)
        return _page(request, "audiences.html", "audiences", user, status, audiences=rows, audience=None, error=message)
    return _page(
        request,
        "audiences.html",
        "audiences",
        user,
        audiences=rows,
        audience=detail.model_dump(),
        members=[m.model_dump() for m in shown],
        members_shown=MEMBERS_SHOWN,
    )


@router.get("/profiles", response_class=HTMLResponse)
def profiles_page(
    request: Request,
    persona_id: str | None = Query(None, max_length=200),
    state: StudioState = Depends(get_state),
    user: str = Depends(acting_user),
) -> HTMLResponse:
    persona_id = (persona_id or "").strip() or None
    if persona_id is None:
        return _page(request, "profiles.html", "profiles", user, persona_id=None, profile=None)
    try:
        profile = persona_profile(state, persona_id, None, user)
    except (HTTPException, SegengineError) as exc:
        status, message = _problem(exc)
        return _page(
            request, "profiles.html", "profiles", user, status, persona_id=persona_id, profile=None, error=message
        )
    return _page(request, "profiles.html", "profiles", user, persona_id=persona_id, profile=profile)


@router.get("/runs", response_class=HTMLResponse)
def runs_page(
    request: Request, state: StudioState = Depends(get_state), user: str = Depends(acting_user)
) -> HTMLResponse:
    return _page(request, "runs.html", "runs", user, runs=[r.model_dump() for r in latest_runs(state, RUNS_SHOWN)])
