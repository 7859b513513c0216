"""Every condition kind a segment can use, each registered under its YAML key.

Kinds: ``attr`` (attribute comparisons), ``all`` / ``any`` / ``not``, ``purchased``,
``did`` / ``did_not``, ``in_ai_segment``, ``clv_percentile``, ``recommended``,
``in_segment`` / ``not_in_segment``. Each class validates its arguments in ``parse``
(eagerly, with exact paths), renders itself to a :mod:`segengine.rules.sql` tree in
``to_sql`` and describes itself in words for ``explain``.

Null semantics: every leaf is two-valued. A comparison with a null attribute is false
(``COALESCE(pred, FALSE)``), so ``not`` is a plain complement: ``country != GB`` leaves
out personas with no country, ``not: {country = GB}`` keeps them. ``or_empty: true`` on
an attribute condition makes it true for a null attribute too (``is_null`` selects only
those). :mod:`segengine.rules.nulls` says where this changes a segment's answer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
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
from segengine.rules.sql import (
    And,
    Between,
    BinOp,
    Cast,
    Col,
    Expr,
    Func,
    InList,
    InSubquery,
    IsNull,
    Join,
    Lit,
    Not,
    Or,
    Select,
    Star,
    Table,
    and_,
    two_valued,
)

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


def _scalar(attr: Any, value: Any, path: str, ctx: ParseContext, check_allowed: bool) -> Any:
    if attr.type in ("integer", "double"):
        return ctx.number(value, path)
    if attr.type == "boolean":
        if not isinstance(value, bool):
            raise ctx.error(path, f"expected true or false for boolean attribute {attr.name!r}, got {show(value)}")
        return value
    if attr.type in ("date", "timestamp"):
        return ctx.date(value, path)
    text = ctx.string(value, path, non_empty=False)
    if check_allowed and attr.allowed_values and text not in attr.allowed_values:
        from segengine.rules.registry import closest

        raise ctx.error(
            path,
            f"{text!r} is not a value of {attr.name!r}{closest(text, attr.allowed_values)}; "
            f"expected one of: {', '.join(attr.allowed_values)}",
        )
    return text


# ----------------------------------------------------------------- attribute comparisons


@register_condition("attr")
@dataclass(frozen=True)
class AttributeCondition(Condition):
    """``{attr: NAME, op: OP, value: V[, or_empty: true]}``: compare one feature column.

    A null attribute makes the comparison false; with ``or_empty: true`` it makes it true.
    """

    attr: str
    type: str
    op: str
    value: Any
    path: str
    or_empty: bool = False

    @classmethod
    def parse(cls, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Condition:
        ctx.check_keys(node, path, ("attr", "op", "value", "or_empty"), "an attribute condition")
        attr = ctx.attribute(node["attr"], join_path(path, "attr"))
        op_path = join_path(path, "op")
        if "op" not in node:
            raise ctx.error(op_path, f"missing operator; expected one of: {', '.join(attr.operators)}")
        op = node["op"]
        if not isinstance(op, str) or op not in OPERATORS:
            from segengine.rules.registry import closest

            raise ctx.error(
                op_path,
                f"unknown operator {show(op)}{closest(op, OPERATORS)}; expected one of: {', '.join(attr.operators)}",
            )
        if op not in attr.operators:
            raise ctx.error(
                op_path,
                f"operator {op!r} is not allowed for {attr.type} attribute {attr.name!r}; "
                f"expected one of: {', '.join(attr.operators)}",
            )
        value = cls._value(attr, OPERATORS[op], node, join_path(path, "value"), ctx)
        or_empty = node.get("or_empty", False)
        empty_path = join_path(path, "or_empty")
        if not isinstance(or_empty, bool):
            raise ctx.error(empty_path, f"expected true or false, got {show(or_empty)}")
        if or_empty and not OPERATORS[op].two_valued:
            raise ctx.error(empty_path, f"operator {op!r} already decides empty values; or_empty does not apply")
        return cls(attr.name, attr.type, op, value, path, or_empty)

    @staticmethod
    def _value(attr: Any, op: Operator, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Any:
        if op.shape == "none":
            if node.get("value") is not None:
                raise ctx.error(path, f"operator {op.name!r} takes no value, got {show(node['value'])}")
            return None
        if "value" not in node:
            raise ctx.error(path, f"missing value for operator {op.name!r}")
        value = node["value"]
        if op.shape == "scalar":
            return _scalar(attr, value, path, ctx, check_allowed=op.name in ("=", "!="))
        if op.shape == "list":
            if isinstance(value, list) and not value:
                raise ctx.error(path, f"operator {op.name!r} needs at least one value, got an empty list")
            return ctx.one_or_many(value, path, lambda v, p: _scalar(attr, v, p, ctx, check_allowed=True))
        if op.shape == "pair":
            if not isinstance(value, list) or len(value) != 2:
                raise ctx.error(path, f"operator {op.name!r} expects [low, high], got {show(value)}")
            low = _scalar(attr, value[0], join_path(path, 0), ctx, False)
            high = _scalar(attr, value[1], join_path(path, 1), ctx, False)
            if low > high:
                raise ctx.error(path, f"expected low <= high, got [{low}, {high}]")
            return (low, high)
        if op.shape == "text":
            return ctx.string(value, path)
        if op.shape == "date":
            return ctx.date(value, path)
        if op.shape == "days":
            return ctx.integer(value, path, minimum=0)
        raise AssertionError(op.shape)

    def needs_events(self) -> bool:
        from segengine.features.catalog import EVENT_ATTRIBUTES

        return self.attr in EVENT_ATTRIBUTES

    def to_sql(self, rctx: RenderContext) -> Expr:
        col: Expr = Col(self.attr, rctx.alias)
        if self.type == "timestamp":
            # Date operators compare calendar days in the session time zone.
            col = Func("to_date", (col,))
        op = OPERATORS[self.op]
        pred = op.render(col, self.value, rctx)
        if self.or_empty:
            return Or((two_valued(pred), IsNull(col)))
        return two_valued(pred) if op.two_valued else pred

    def describe(self) -> str:
        words = self._words()
        return f"{words}, or {self.attr} is empty" if self.or_empty else words

    def _words(self) -> str:
        op = OPERATORS[self.op]
        if op.shape == "none":
            return f"{self.attr} {op.words}"
        if op.shape == "days":
            return f"{self.attr} {op.words.replace('N', str(self.value))}"
        if op.shape == "pair":
            return f"{self.attr} {op.words} {self.value[0]} and {self.value[1]}"
        if op.shape == "list":
            return f"{self.attr} {op.words} ({', '.join(map(str, self.value))})"
        return f"{self.attr} {op.words} {self.value!r}"


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


# ----------------------------------------------------------------- behaviour helpers

TARGET_KEYS = ("product", "category", "brand")
WINDOW_KEYS = ("within_days", "between")


def _options(
    node: Mapping[str, Any],
    key: str,
    path: str,
    ctx: ParseContext,
    targets: tuple[str, ...],
    options: tuple[str, ...],
    what: str,
) -> tuple[dict[str, Any], dict[str, str]]:
    """Merge the options written next to ``key`` with those inside ``key``'s mapping.

    Returns (values, paths): the merged option/target values and the path of each.
    """
    ctx.check_keys(node, path, (key, *options), what)
    inner_path = join_path(path, key)
    values: dict[str, Any] = {}
    paths: dict[str, str] = {}
    inner = node[key]
    if isinstance(inner, Mapping):
        ctx.check_keys(inner, inner_path, (*targets, *options), f"'{key}'")
        for k, v in inner.items():
            values[k], paths[k] = v, join_path(inner_path, k)
    elif inner is not None:
        # Shorthand: ``purchased: P123`` / ``did: add_to_cart`` names the first target.
        values[targets[0]], paths[targets[0]] = inner, inner_path
    for k, v in node.items():
        if k == key:
            continue
        if k in values:
            raise ctx.error(join_path(path, k), f"{k!r} is given twice (here and in {inner_path})")
        values[k], paths[k] = v, join_path(path, k)
    return values, paths


def _window(
    values: dict[str, Any], paths: dict[str, str], path: str, ctx: ParseContext
) -> tuple[int | None, tuple[dt.date, dt.date] | None]:
    within = between = None
    if "within_days" in values and "between" in values:
        raise ctx.error(paths["between"], "give either within_days or between, not both")
    if "within_days" in values:
        within = ctx.integer(values["within_days"], paths["within_days"], minimum=0)
    if "between" in values:
        raw = values["between"]
        bpath = paths["between"]
        if not isinstance(raw, list) or len(raw) != 2:
            raise ctx.error(bpath, f"expected [first_date, last_date], got {show(raw)}")
        lo, hi = ctx.date(raw[0], join_path(bpath, 0)), ctx.date(raw[1], join_path(bpath, 1))
        if lo > hi:
            raise ctx.error(bpath, f"expected first_date <= last_date, got [{lo}, {hi}]")
        between = (lo, hi)
    return within, between


def _window_sql(col: Expr, within: int | None, between: tuple[dt.date, dt.date] | None, rctx: RenderContext) -> Expr:
    # Never look past the snapshot date: behaviour after it is unknown on that date.
    preds: list[Expr] = [BinOp("<=", col, Lit(rctx.snapshot))]
    if within is not None:
        preds.append(BinOp(">=", col, Lit(rctx.snapshot - dt.timedelta(days=within))))
    if between is not None:
        preds.append(Between(col, Lit(between[0]), Lit(between[1])))
    return And(tuple(preds)) if len(preds) > 1 else preds[0]


def _window_words(within: int | None, between: tuple[dt.date, dt.date] | None) -> str:
    if within is not None:
        return f" within the last {within} days"
    if between is not None:
        return f" between {between[0]} and {between[1]}"
    return " ever"


def _targets(
    values: dict[str, Any], paths: dict[str, str], ctx: ParseContext
) -> tuple[tuple[str, tuple[str, ...]], ...]:
    out = []
    for key in TARGET_KEYS:
        if key in values:
            out.append((key, ctx.one_or_many(values[key], paths[key], lambda v, p: ctx.string(v, p))))
    return tuple(out)


def _target_words(targets: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    if not targets:
        return "any product"
    return " and ".join(f"{k} {'/'.join(v)}" for k, v in targets)


def _target_sql(targets: tuple[tuple[str, tuple[str, ...]], ...], row_alias: str) -> tuple[list[Expr], bool]:
    """Predicates on product/category/brand and whether the products table is needed."""
    preds: list[Expr] = []
    needs_products = False
    for key, vals in targets:
        if key == "product":
            col = Col("product_id", row_alias)
        else:
            col, needs_products = Col(key, "p"), True
        preds.append(InList(col, tuple(Lit(v) for v in vals)))
    return preds, needs_products


def _in_subquery(rctx: RenderContext, query: Select) -> Expr:
    return InSubquery(Col("persona_id", rctx.alias), query)


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


def _event_type(value: Any, path: str, ctx: ParseContext) -> str:
    from segengine.contract import EVENT_TYPES
    from segengine.rules.registry import closest

    text = ctx.string(value, path)
    if text not in EVENT_TYPES:
        raise ctx.error(
            path, f"unknown event type {text!r}{closest(text, EVENT_TYPES)}; expected one of: {', '.join(EVENT_TYPES)}"
        )
    return text


def event_persona(rctx: RenderContext) -> tuple[Expr, Join]:
    """The persona of an event row ``e`` and the join that finds it.

    Events of anonymous visitors carry only a cookie: they are attributed to the persona
    with that cookie in the feature snapshot (``did``, ``did_not`` and sequences alike).
    """
    cookies = Select(
        columns=((Col("persona_id", "c"), "persona_id"), (Col("cookie_id", "c"), "cookie_id")),
        source=Table(rctx.views.features),
        alias="c",
        where=And(
            (
                IsNull(Col("cookie_id", "c"), negated=True),
                BinOp("=", Col("snapshot_date", "c"), Lit(rctx.snapshot)),
            )
        ),
    )
    persona = Func("coalesce", (Col("persona_id", "e"), Col("persona_id", "ck")))
    on = And((IsNull(Col("persona_id", "e")), BinOp("=", Col("cookie_id", "e"), Col("cookie_id", "ck"))))
    return persona, Join(cookies, "ck", on, kind="LEFT JOIN")


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
