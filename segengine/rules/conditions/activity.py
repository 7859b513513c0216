"""``purchased`` and ``did`` / ``did_not``: what a persona bought or did, in a window."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segengine.rules.conditions.behaviour import (
    TARGET_KEYS,
    WINDOW_KEYS,
    _event_type,
    _in_subquery,
    _options,
    _target_sql,
    _target_words,
    _targets,
    _window,
    _window_sql,
    _window_words,
    event_persona,
)
from segengine.rules.registry import Condition, ParseContext, RenderContext, join_path, register_condition
from segengine.rules.sql import BinOp, Cast, Col, Expr, Func, InList, IsNull, Join, Lit, Not, Select, Star, Table, and_

# ----------------------------------------------------------------- purchased


@register_condition("purchased")
@dataclass(frozen=True)
class Purchased(Condition):
    """``{purchased: {category: Shoes}, within_days: 90, min_count: 2, max_count: 5, min_spend: 100}``.

    Counts distinct orders with a positive quantity of a matching product; ``min_spend``
    is the net amount (refunds subtract) spent on matching products in the window.
    ``purchased`` always means at least once: write ``not: {purchased: …}`` for never.
    """

    targets: tuple[tuple[str, tuple[str, ...]], ...]
    within_days: int | None
    between: tuple[dt.date, dt.date] | None
    min_count: int
    max_count: int | None
    min_spend: float | None
    path: str

    @classmethod
    def parse(cls, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Condition:
        options = (*WINDOW_KEYS, "min_count", "max_count", "min_spend")
        values, paths = _options(node, "purchased", path, ctx, TARGET_KEYS, options, "a 'purchased' condition")
        if values.get("product") == "any" and paths.get("product") == join_path(path, "purchased"):
            values.pop("product")
        within, between = _window(values, paths, path, ctx)
        min_count = ctx.integer(values["min_count"], paths["min_count"], minimum=1) if "min_count" in values else 1
        max_count = None
        if "max_count" in values:
            max_count = ctx.integer(values["max_count"], paths["max_count"], minimum=min_count)
        min_spend = ctx.number(values["min_spend"], paths["min_spend"]) if "min_spend" in values else None
        return cls(_targets(values, paths, ctx), within, between, min_count, max_count, min_spend, path)

    def to_sql(self, rctx: RenderContext) -> Expr:
        v = rctx.views
        target_preds, needs_products = _target_sql(self.targets, "ol")
        joins: tuple[Join, ...] = ()
        if needs_products:
            joins = (Join(Table(v.products), "p", BinOp("=", Col("product_id", "p"), Col("product_id", "ol"))),)
        order_date = Cast(Col("order_ts", "ol"), "date")
        where = and_(
            IsNull(Col("persona_id", "ol"), negated=True),
            _window_sql(order_date, self.within_days, self.between, rctx),
            *target_preds,
        )
        orders = Func(
            "count",
            (Func("if", (BinOp(">", Col("quantity", "ol"), Lit(0)), Col("order_id", "ol"), Lit(None))),),
            distinct=True,
        )
        spend = Func("sum", (BinOp("*", Col("quantity", "ol"), Col("unit_price", "ol")),))
        having = and_(
            BinOp(">=", orders, Lit(self.min_count)),
            BinOp("<=", orders, Lit(self.max_count)) if self.max_count is not None else None,
            BinOp(">=", spend, Lit(float(self.min_spend))) if self.min_spend is not None else None,
        )
        query = Select(
            columns=((Col("persona_id", "ol"), "persona_id"),),
            source=Table(v.order_lines),
            alias="ol",
            joins=joins,
            where=where,
            group_by=(Col("persona_id", "ol"),),
            having=having,
        )
        return _in_subquery(rctx, query)

    def describe(self) -> str:
        count = f"at least {self.min_count}"
        if self.max_count is not None:
            count += f" and at most {self.max_count}"
        spend = f", spending at least {self.min_spend}" if self.min_spend is not None else ""
        return f"purchased {_target_words(self.targets)} {count} time(s){_window_words(self.within_days, self.between)}{spend}"


# ----------------------------------------------------------------- did / did_not


class _EventCondition(Condition):
    """Shared by ``did`` and ``did_not``: persona had >= min_count matching events."""

    negated = False

    def __init__(
        self,
        events: tuple[str, ...],
        products: tuple[str, ...],
        within_days: int | None,
        between: tuple[dt.date, dt.date] | None,
        min_count: int,
        path: str,
    ):
        self.events, self.products, self.within_days = events, products, within_days
        self.between, self.min_count, self.path = between, min_count, path

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and vars(self) == vars(other)

    def __hash__(self) -> int:
        return hash((type(self), self.events, self.products, self.within_days, self.between, self.min_count, self.path))

    @classmethod
    def parse(cls, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Condition:
        values, paths = _options(
            node, cls.key, path, ctx, ("event", "product"), (*WINDOW_KEYS, "min_count"), f"a '{cls.key}' condition"
        )
        if "event" not in values:
            raise ctx.error(
                join_path(path, cls.key), "missing event type, e.g. {did: add_to_cart} or {did: {event: add_to_cart}}"
            )
        events = ctx.one_or_many(values["event"], paths["event"], lambda v, p: _event_type(v, p, ctx))
        products = ()
        if "product" in values:
            products = ctx.one_or_many(values["product"], paths["product"], lambda v, p: ctx.string(v, p))
        within, between = _window(values, paths, path, ctx)
        min_count = ctx.integer(values["min_count"], paths["min_count"], minimum=1) if "min_count" in values else 1
        return cls(events, products, within, between, min_count, path)

    def needs_events(self) -> bool:
        return True

    def to_sql(self, rctx: RenderContext) -> Expr:
        v = rctx.views
        persona, cookie_join = event_persona(rctx)
        where = and_(
            _window_sql(Col("event_date", "e"), self.within_days, self.between, rctx),
            InList(Col("event_type", "e"), tuple(Lit(x) for x in self.events)),
            InList(Col("product_id", "e"), tuple(Lit(x) for x in self.products)) if self.products else None,
            IsNull(persona, negated=True),
        )
        query = Select(
            columns=((persona, "persona_id"),),
            source=Table(v.events),
            alias="e",
            joins=(cookie_join,),
            where=where,
            group_by=(persona,),
            having=BinOp(">=", Func("count", (Star(),)), Lit(self.min_count)),
        )
        pred = _in_subquery(rctx, query)
        return Not(pred) if self.negated else pred

    def describe(self) -> str:
        what = "/".join(self.events) + (f" on product {'/'.join(self.products)}" if self.products else "")
        times = f"at least {self.min_count} time(s)"
        verb = "did not do" if self.negated else "did"
        return f"{verb} {what} {times}{_window_words(self.within_days, self.between)}"


@register_condition("did")
class Did(_EventCondition):
    """``{did: add_to_cart, within_days: 30, min_count: 2}`` (the past-event condition)."""


@register_condition("did_not")
class DidNot(_EventCondition):
    """``{did_not: email_open, within_days: 90}``: fewer than min_count such events."""

    negated = True
