"""Shared parsing and rendering of purchase and event windows, targets and subqueries.

Used by ``purchased``, ``did`` / ``did_not``, ``recommended``, ``in_segment`` and sequences.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from segengine.rules.registry import ParseContext, RenderContext, join_path, show
from segengine.rules.sql import (
    And,
    Between,
    BinOp,
    Col,
    Expr,
    Func,
    InList,
    InSubquery,
    IsNull,
    Join,
    Lit,
    Select,
    Table,
)

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
