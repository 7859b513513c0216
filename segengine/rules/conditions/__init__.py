"""Every condition kind a segment can use, each registered under its YAML key (see :mod:`.activity`)."""

from __future__ import annotations

from segengine.rules.conditions.activity import (
    OPERATORS,
    AllOf,
    AnyOf,
    AttributeCondition,
    ClvPercentile,
    Did,
    DidNot,
    InAiSegment,
    InSegment,
    NotCondition,
    NotInSegment,
    Operator,
    Purchased,
    Recommended,
    register_operator,
)

__all__ = [
    "OPERATORS",
    "AllOf",
    "AnyOf",
    "AttributeCondition",
    "ClvPercentile",
    "Did",
    "DidNot",
    "InAiSegment",
    "InSegment",
    "NotCondition",
    "NotInSegment",
    "Operator",
    "Purchased",
    "Recommended",
    "register_operator",
]
