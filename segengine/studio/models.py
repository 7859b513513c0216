"""Request and response models of the studio API, declared once (they make the OpenAPI spec).

Every request model forbids unknown fields, so a misspelt field is a 422 naming it rather
than silently ignored. A rule document is a JSON object (never text: a string would be
read as YAML or as a file path) and goes only to the rule compiler.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

MAX_PREVIEW = 1000
MAX_COLUMNS = 50
MAX_NAME_CHARS = 200
DATE_PATTERN = r"^\d{4}-\d{2}-\d{2}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CatalogAttribute(BaseModel):
    """One attribute of the feature catalog, with the operators a rule may use on it."""

    name: str
    type: str
    description: str
    unit: str
    source: str
    allowed_values: list[str] | None
    operators: list[str]
    operator_shapes: dict[str, str] = Field(
        description="operator -> the value it takes: none, scalar, pair, list, text, date, days"
    )


class SegmentRequest(Strict):
    """A rule document to validate, explain, count or preview."""

    document: dict[str, Any] = Field(description="The segment document as a JSON object (name, where, …)")
    date: str | None = Field(None, pattern=DATE_PATTERN, description="Snapshot date YYYY-MM-DD (default: latest)")
    columns: list[str] = Field(
        default_factory=list, max_length=MAX_COLUMNS, description="Catalog columns to preview beside persona_id"
    )
    limit: int = Field(20, ge=1, le=MAX_PREVIEW, description="Members to preview (ordered by persona_id)")


class ValidateResponse(BaseModel):
    ok: bool
    name: str
    condition_count: int
    segments_used: list[str]
    needs_events: list[str]


class ExplainResponse(BaseModel):
    name: str
    snapshot_date: dt.date
    explanation: str
    sql: str


class CountResponse(BaseModel):
    name: str
    snapshot_date: dt.date
    by_persona_type: dict[str, int]
    total: int


class PreviewResponse(BaseModel):
    name: str
    snapshot_date: dt.date
    columns: list[str]
    rows: list[dict[str, Any]]


class AudienceCreate(Strict):
    """Save a rule document as an audience owned by the acting user."""

    document: dict[str, Any]
    name: str | None = Field(None, min_length=1, max_length=MAX_NAME_CHARS, description="Default: the document's name")
    kind: Literal["static", "dynamic"] = "dynamic"
    visibility: Literal["private", "shared"] = "shared"
    date: str | None = Field(
        None, pattern=DATE_PATTERN, description="Evaluate the members on this date (default: latest)"
    )


class AudienceSummary(BaseModel):
    audience_id: str
    name: str
    owner: str
    visibility: str
    kind: str
    source: str
    size: int | None
    refreshed_for: dt.date | None
    created_at: dt.datetime
    updated_at: dt.datetime


class AudienceDetail(AudienceSummary):
    definition: dict[str, Any]


class Member(BaseModel):
    persona_id: str
    since: dt.date | None


class MembersResponse(BaseModel):
    audience: str
    members: list[Member]


class RunRow(BaseModel):
    run_id: str | None
    snapshot_date: dt.date | None
    step: str | None
    status: str | None
    rows: int | None
    seconds: float | None
    started_at: dt.datetime | None
    message: str | None


class ErrorResponse(BaseModel):
    """Every 4xx: ``detail`` in one line, ``problems`` one line per problem (field first)."""

    detail: str
    problems: list[str]
