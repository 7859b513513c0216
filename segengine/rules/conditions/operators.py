"""Attribute operators (``=``, ``between``, ``in``, ``within_last_days``...) and their registry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from segengine.rules.registry import RenderContext
from segengine.rules.sql import And, Between, BinOp, Expr, Func, InList, IsNull, Lit, Not

# ----------------------------------------------------------------- operators


@dataclass(frozen=True)
class Operator:
    """An attribute operator: the shape of its value and how it renders.

    Shapes: ``none`` (no value), ``scalar`` (one value of the attribute's type),
    ``pair`` ([low, high]), ``list`` (one or more values), ``text`` (a non-empty
    string), ``date`` (a date), ``days`` (a whole number of days >= 0).
    """

    name: str
    shape: str
    words: str
    render: Callable[[Expr, Any, RenderContext], Expr]
    two_valued: bool = True


OPERATORS: dict[str, Operator] = {}


def register_operator(
    name: str, shape: str, words: str, two_valued: bool = True
) -> Callable[[Callable[[Expr, Any, RenderContext], Expr]], Callable[[Expr, Any, RenderContext], Expr]]:
    """Decorator: register the renderer of attribute operator ``name``."""

    def wrap(fn: Callable[[Expr, Any, RenderContext], Expr]) -> Callable[[Expr, Any, RenderContext], Expr]:
        OPERATORS[name] = Operator(name, shape, words, fn, two_valued)
        return fn

    return wrap


def _cmp(op: str) -> Callable[[Expr, Any, RenderContext], Expr]:
    return lambda col, value, rctx: BinOp(op, col, Lit(value))


for _name, _sql_op in (("=", "="), ("!=", "<>"), ("<", "<"), ("<=", "<="), (">", ">"), (">=", ">=")):
    register_operator(_name, "scalar", _name)(_cmp(_sql_op))
register_operator("before", "date", "before")(_cmp("<"))
register_operator("after", "date", "after")(_cmp(">"))


@register_operator("between", "pair", "between")
def _between(col: Expr, value: Any, rctx: RenderContext) -> Expr:
    return Between(col, Lit(value[0]), Lit(value[1]))


@register_operator("not_between", "pair", "not between")
def _not_between(col: Expr, value: Any, rctx: RenderContext) -> Expr:
    return Not(Between(col, Lit(value[0]), Lit(value[1])))


@register_operator("in", "list", "in")
def _in(col: Expr, value: Any, rctx: RenderContext) -> Expr:
    return InList(col, tuple(Lit(v) for v in value))


@register_operator("not_in", "list", "not in")
def _not_in(col: Expr, value: Any, rctx: RenderContext) -> Expr:
    return Not(InList(col, tuple(Lit(v) for v in value)))


@register_operator("contains", "text", "contains")
def _contains(col: Expr, value: Any, rctx: RenderContext) -> Expr:
    return Func("contains", (col, Lit(value)))


@register_operator("not_contains", "text", "does not contain")
def _not_contains(col: Expr, value: Any, rctx: RenderContext) -> Expr:
    return Not(Func("contains", (col, Lit(value))))


@register_operator("starts_with", "text", "starts with")
def _starts_with(col: Expr, value: Any, rctx: RenderContext) -> Expr:
    return Func("startswith", (col, Lit(value)))


@register_operator("ends_with", "text", "ends with")
def _ends_with(col: Expr, value: Any, rctx: RenderContext) -> Expr:
    return Func("endswith", (col, Lit(value)))


@register_operator("is_null", "none", "is empty", two_valued=False)
def _is_null(col: Expr, value: Any, rctx: RenderContext) -> Expr:
    return IsNull(col)


@register_operator("is_not_null", "none", "is set", two_valued=False)
def _is_not_null(col: Expr, value: Any, rctx: RenderContext) -> Expr:
    return IsNull(col, negated=True)


# The same two in the words of the null rule (README, `segment explain`).
register_operator("is_empty", "none", "is empty", two_valued=False)(_is_null)
register_operator("is_not_empty", "none", "is set", two_valued=False)(_is_not_null)


@register_operator("within_last_days", "days", "within the last N days")
def _within_last_days(col: Expr, value: Any, rctx: RenderContext) -> Expr:
    # Inclusive on both ends: within_last_days 90 <=> 0 <= days ago <= 90.
    return And((BinOp(">=", col, Lit(rctx.snapshot - dt.timedelta(days=value))), BinOp("<=", col, Lit(rctx.snapshot))))


@register_operator("more_than_days_ago", "days", "more than N days ago")
def _more_than_days_ago(col: Expr, value: Any, rctx: RenderContext) -> Expr:
    return BinOp("<", col, Lit(rctx.snapshot - dt.timedelta(days=value)))
