"""``/api/catalog``: the feature catalog the rule compiler validates against."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends

from segengine.features.catalog import filterable
from segengine.rules import OPERATORS
from segengine.studio.auth import acting_user
from segengine.studio.models import CatalogAttribute, ErrorResponse

ERRORS: dict[int | str, dict[str, Any]] = {401: {"model": ErrorResponse}}
router = APIRouter(prefix="/api/catalog", tags=["catalog"], responses=ERRORS, dependencies=[Depends(acting_user)])


def catalog_attributes() -> list[CatalogAttribute]:
    """Every attribute a rule may use, with its operators and the value each takes."""
    return [
        CatalogAttribute(
            name=a.name,
            type=a.type,
            description=a.description,
            unit=a.unit,
            source=a.source,
            allowed_values=list(a.allowed_values) if a.allowed_values else None,
            operators=list(a.operators),
            operator_shapes={op: OPERATORS[op].shape for op in a.operators if op in OPERATORS},
        )
        for a in filterable()
    ]


@router.get("", response_model=list[CatalogAttribute])
def catalog() -> list[CatalogAttribute]:
    """The attributes of customer_features that rules may use: type, allowed values, description."""
    return catalog_attributes()
