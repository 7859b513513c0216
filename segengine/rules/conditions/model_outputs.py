"""``in_ai_segment``, ``clv_percentile``, ``recommended``: conditions on model outputs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segengine.rules.conditions.behaviour import (
    TARGET_KEYS,
    _in_subquery,
    _options,
    _target_sql,
    _target_words,
    _targets,
)
from segengine.rules.registry import Condition, ParseContext, RenderContext, join_path, register_condition
from segengine.rules.sql import BinOp, Col, Expr, InList, IsNull, Join, Lit, Select, Table, and_, two_valued

# ----------------------------------------------------------------- model conditions


@register_condition("in_ai_segment")
@dataclass(frozen=True)
class InAiSegment(Condition):
    """``{in_ai_segment: Champions}`` or a list: the persona's AI segment is one of them."""

    names: tuple[str, ...]
    path: str

    @classmethod
    def parse(cls, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Condition:
        ctx.check_keys(node, path, ("in_ai_segment",), "an 'in_ai_segment' condition")
        ctx.attribute("ai_segment", path)
        vpath = join_path(path, "in_ai_segment")
        return cls(ctx.one_or_many(node["in_ai_segment"], vpath, lambda v, p: ctx.string(v, p)), path)

    def to_sql(self, rctx: RenderContext) -> Expr:
        return two_valued(InList(Col("ai_segment", rctx.alias), tuple(Lit(n) for n in self.names)))

    def describe(self) -> str:
        return f"in AI segment {' or '.join(map(repr, self.names))}"


@register_condition("clv_percentile")
@dataclass(frozen=True)
class ClvPercentile(Condition):
    """``{clv_percentile: {lowest: 10}}`` / ``{highest: 5}``: by predicted CLV percentile."""

    side: str
    percent: float
    path: str

    @classmethod
    def parse(cls, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Condition:
        ctx.check_keys(node, path, ("clv_percentile",), "a 'clv_percentile' condition")
        ctx.attribute("clv_percentile", path)
        vpath = join_path(path, "clv_percentile")
        spec = ctx.mapping(node["clv_percentile"], vpath, "{lowest: N} or {highest: N}")
        ctx.check_keys(spec, vpath, ("lowest", "highest"), "'clv_percentile'")
        if len(spec) != 1:
            raise ctx.error(vpath, "expected exactly one of lowest or highest")
        side, value = next(iter(spec.items()))
        percent = ctx.number(value, join_path(vpath, side), minimum=0, maximum=100)
        if percent == 0:
            raise ctx.error(join_path(vpath, side), "expected a percentage above 0")
        return cls(side, float(percent), path)

    def to_sql(self, rctx: RenderContext) -> Expr:
        col = Col("clv_percentile", rctx.alias)
        if self.side == "lowest":
            return two_valued(BinOp("<=", col, Lit(self.percent)))
        return two_valued(BinOp(">=", col, Lit(100.0 - self.percent)))

    def describe(self) -> str:
        return f"predicted CLV in the {self.side} {self.percent:g}%"


@register_condition("recommended")
@dataclass(frozen=True)
class Recommended(Condition):
    """``{recommended: {product: P123}, min_score: 70, recommender: als, max_rank: 5}``."""

    targets: tuple[tuple[str, tuple[str, ...]], ...]
    min_score: int
    recommender: str | None
    max_rank: int | None
    path: str

    @classmethod
    def parse(cls, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Condition:
        options = ("min_score", "recommender", "max_rank")
        values, paths = _options(node, "recommended", path, ctx, TARGET_KEYS, options, "a 'recommended' condition")
        min_score = ctx.integer(values["min_score"], paths["min_score"], 1, 100) if "min_score" in values else 1
        recommender = ctx.string(values["recommender"], paths["recommender"]) if "recommender" in values else None
        max_rank = ctx.integer(values["max_rank"], paths["max_rank"], minimum=1) if "max_rank" in values else None
        return cls(_targets(values, paths, ctx), min_score, recommender, max_rank, path)

    def to_sql(self, rctx: RenderContext) -> Expr:
        v = rctx.views
        target_preds, needs_products = _target_sql(self.targets, "r")
        joins: tuple[Join, ...] = ()
        if needs_products:
            joins = (Join(Table(v.products), "p", BinOp("=", Col("product_id", "p"), Col("product_id", "r"))),)
        where = and_(
            IsNull(Col("persona_id", "r"), negated=True),
            BinOp("=", Col("snapshot_date", "r"), Lit(rctx.snapshot)),
            BinOp(">=", Col("score", "r"), Lit(self.min_score)),
            BinOp("=", Col("recommender", "r"), Lit(self.recommender)) if self.recommender else None,
            BinOp("<=", Col("rank", "r"), Lit(self.max_rank)) if self.max_rank else None,
            *target_preds,
        )
        query = Select(
            columns=((Col("persona_id", "r"), "persona_id"),),
            source=Table(v.recommendations),
            alias="r",
            joins=joins,
            where=where,
        )
        return _in_subquery(rctx, query)

    def describe(self) -> str:
        by = f" by {self.recommender}" if self.recommender else ""
        rank = f" in the top {self.max_rank}" if self.max_rank else ""
        return f"recommended {_target_words(self.targets)}{by} with score >= {self.min_score}{rank}"
