"""``in_segment`` / ``not_in_segment``: membership of another saved segment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segengine.rules.conditions.behaviour import _in_subquery
from segengine.rules.registry import Condition, ParseContext, RenderContext, join_path, register_condition
from segengine.rules.sql import Col, Expr, Not, Select

# ----------------------------------------------------------------- segment crossing


@register_condition("in_segment")
@dataclass(frozen=True)
class InSegment(Condition):
    """``{in_segment: churn_risk}``: member of another saved segment (resolved at compile time)."""

    name: str
    path: str
    negated = False

    @classmethod
    def parse(cls, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Condition:
        ctx.check_keys(node, path, (cls.key,), f"an '{cls.key}' condition")
        return cls(ctx.string(node[cls.key], join_path(path, cls.key)), path)

    def to_sql(self, rctx: RenderContext) -> Expr:
        inner = rctx.subsegment(self.name, join_path(self.path, self.key))
        query = Select(columns=((Col("persona_id", "s"), None),), source=inner, alias="s")
        pred = _in_subquery(rctx, query)
        return Not(pred) if self.negated else pred

    def describe(self) -> str:
        return f"{'not ' if self.negated else ''}in segment {self.name!r}"


@register_condition("not_in_segment")
@dataclass(frozen=True)
class NotInSegment(InSegment):
    """``{not_in_segment: churn_risk}``: exclude another segment's members."""

    negated = True
