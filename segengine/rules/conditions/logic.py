"""``all`` / ``any`` / ``not``: combine other conditions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from segengine.rules.registry import (
    Condition,
    ParseContext,
    RenderContext,
    join_path,
    parse_condition,
    register_condition,
    show,
)
from segengine.rules.sql import And, Expr, Not, Or

# ----------------------------------------------------------------- all / any / not


def _conditions_list(cls_key: str, node: Mapping[str, Any], path: str, ctx: ParseContext) -> tuple[Condition, ...]:
    ctx.check_keys(node, path, (cls_key,), f"an '{cls_key}' condition")
    items = node[cls_key]
    lpath = join_path(path, cls_key)
    if not isinstance(items, list) or not items:
        raise ctx.error(lpath, f"expected a non-empty list of conditions, got {show(items)}")
    parsed = [ctx.attempt(partial(parse_condition, item, join_path(lpath, i), ctx)) for i, item in enumerate(items)]
    if any(c is None for c in parsed):
        raise ctx.reported()
    return tuple(c for c in parsed if c is not None)


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


@register_condition("all")
@dataclass(frozen=True)
class AllOf(Condition):
    """``{all: [...]}``: every condition holds."""

    items: tuple[Condition, ...]
    path: str
    leaf = False

    @classmethod
    def parse(cls, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Condition:
        return cls(_conditions_list("all", node, path, ctx), path)

    def children(self) -> tuple[Condition, ...]:
        return self.items

    def to_sql(self, rctx: RenderContext) -> Expr:
        return And(tuple(c.to_sql(rctx) for c in self.items)) if len(self.items) > 1 else self.items[0].to_sql(rctx)

    def describe(self) -> str:
        return "ALL of:\n" + "\n".join(_indent("- " + c.describe()) for c in self.items)


@register_condition("any")
@dataclass(frozen=True)
class AnyOf(Condition):
    """``{any: [...]}``: at least one condition holds."""

    items: tuple[Condition, ...]
    path: str
    leaf = False

    @classmethod
    def parse(cls, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Condition:
        return cls(_conditions_list("any", node, path, ctx), path)

    def children(self) -> tuple[Condition, ...]:
        return self.items

    def to_sql(self, rctx: RenderContext) -> Expr:
        return Or(tuple(c.to_sql(rctx) for c in self.items)) if len(self.items) > 1 else self.items[0].to_sql(rctx)

    def describe(self) -> str:
        return "ANY of:\n" + "\n".join(_indent("- " + c.describe()) for c in self.items)


@register_condition("not")
@dataclass(frozen=True)
class NotCondition(Condition):
    """``{not: condition}``: the condition does not hold."""

    item: Condition
    path: str
    leaf = False

    @classmethod
    def parse(cls, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Condition:
        ctx.check_keys(node, path, ("not",), "a 'not' condition")
        return cls(parse_condition(node["not"], join_path(path, "not"), ctx), path)

    def children(self) -> tuple[Condition, ...]:
        return (self.item,)

    def to_sql(self, rctx: RenderContext) -> Expr:
        return Not(self.item.to_sql(rctx))

    def describe(self) -> str:
        return "NOT:\n" + _indent("- " + self.item.describe())
