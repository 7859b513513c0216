"""Segment definitions (YAML/JSON) → validated AST → injection-proof Spark SQL.

Example::

    from segengine.rules import parse_segment, compile_segment, evaluate_segment

    seg = parse_segment("conf/segments/churn_risk.yaml")
    print(compile_segment(seg, "2025-06-30").explain())
    members = evaluate_segment(spark, lake, seg, "2025-06-30")   # persona_id, persona_type
"""

from __future__ import annotations

from segengine.rules.compile import CompiledSegment, TableViews, compile_segment
from segengine.rules.conditions import OPERATORS, register_operator
from segengine.rules.evaluate import (
    chain_resolvers,
    check_session,
    count_by_persona_type,
    directory_resolver,
    evaluate_segment,
    register_views,
)
from segengine.rules.parse import Segment, Top, parse_segment, slugify
from segengine.rules.registry import CONDITIONS, register_condition
from segengine.rules.sql import literal

__all__ = [
    "CONDITIONS",
    "OPERATORS",
    "CompiledSegment",
    "Segment",
    "TableViews",
    "Top",
    "chain_resolvers",
    "check_session",
    "compile_segment",
    "count_by_persona_type",
    "directory_resolver",
    "evaluate_segment",
    "literal",
    "parse_segment",
    "register_condition",
    "register_operator",
    "register_views",
    "slugify",
]
