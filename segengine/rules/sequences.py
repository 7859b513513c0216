"""Ordered behaviour: the ``sequence`` condition.

A sequence is a list of steps, each an event (``did``) or a purchase (``purchased``)
filter of the same shape as the conditions of those names, in the order they must have
happened; a step after the first may say how soon after the previous step it came
(``within_days`` / ``within_hours`` / ``within_minutes``), and the last step may be
``then_not``: the step that did *not* follow within its window. For example, the
abandoned cart::

    sequence:
      - did: add_to_cart
      - {then_not: {purchased: any}, within_days: 2}
    within_days: 14

Semantics (the README's rule-language section says the same, with examples):

* Time is the event's ``event_ts`` or the order's ``order_ts`` (microseconds). "Then"
  is strictly later: the next step's time is greater than the previous step's. Two
  occurrences with equal timestamps are simultaneous and never form a sequence (so one
  event never matches two steps), and a ``then_not`` occurrence at the anchor's exact
  time does not count as following it.
* A step window is ``(t, t + N]``: open at the previous step's time ``t``, closed at its
  end (exactly 2 days later is within 2 days). ``then`` and ``then_not`` use the same
  window, so for one anchor exactly one of them holds.
* ``then_not`` with a window holds only once the whole window has passed by the end of
  the snapshot date (``t + N <= snapshot date + 1 day 00:00``): a cart added an hour
  before the snapshot is not abandoned yet. Without a window it means "never after it,
  up to the end of the snapshot date".
* The lookback (``within_days`` / ``between`` beside ``sequence``, calendar dates as in
  ``did``) bounds the dates of the positive steps; the ``then_not`` step is looked for
  in its own window, even past the end of a ``between`` lookback. Nothing after the
  snapshot date is ever read.
* The persona holds the condition when at least one chain of occurrences satisfies
  every step. An event of an anonymous visitor counts for the persona with its cookie,
  as in ``did``; a purchase is an order line with a positive quantity of a matching
  product.

Two compilations with the same answer (``sequence_strategy`` of
:func:`segengine.rules.compile_segment`): ``join`` (the default) semi-joins each step's
occurrences to the previous step's on persona and time range, and anti-joins the
``then_not`` step; ``window`` puts every step's occurrences in one relation, shuffled once
by persona and ordered by time, and finds for each occurrence the latest valid occurrence
of the previous step with a ``MAX … OVER (ORDER BY ts RANGE BETWEEN UNBOUNDED PRECEDING
AND 1 PRECEDING)`` (and the first ``then_not`` occurrence after it with a ``MIN`` over the
reversed order). ``bench/bench_sequences.py`` times both.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segengine.rules.conditions.behaviour import (
    TARGET_KEYS,
    WINDOW_KEYS,
    _event_type,
    _options,
    _target_sql,
    _target_words,
    _targets,
    _window,
    _window_sql,
    _window_words,
    event_persona,
)
from segengine.rules.registry import Condition, ParseContext, RenderContext, join_path, register_condition, show
from segengine.rules.sql import (
    BinOp,
    Cast,
    Col,
    Expr,
    Frame,
    Func,
    InList,
    InSubquery,
    IsNull,
    Join,
    Lit,
    Or,
    OrderBy,
    Over,
    Select,
    Table,
    UnionAll,
    and_,
)

MAX_STEPS = 10
STRATEGIES = ("join", "window")
GAP_UNITS = {"days": 86_400_000_000, "hours": 3_600_000_000, "minutes": 60_000_000}
GAP_KEYS = tuple(f"within_{unit}" for unit in GAP_UNITS)
GAP_MAX = {"days": 36_500, "hours": 36_500 * 24, "minutes": 36_500 * 24 * 60}
STEP_KINDS = ("did", "purchased")
NEGATED_TAG = -1


@dataclass(frozen=True)
class Step:
    """One step: what happened (or, ``negated``, did not), and how soon after the previous step.

    Attributes:
        kind: ``did`` (events) or ``purchased`` (order lines with a positive quantity).
        events: the event types of a ``did`` step.
        products: the product ids of a ``did`` step (empty: any).
        targets: product/category/brand filters of a ``purchased`` step (empty: any).
        gap: ``(N, unit)`` of ``within_<unit>: N``, or None (any time later).
        negated: a ``then_not`` step.
        path: the step's place in the document.
    """

    kind: str
    events: tuple[str, ...]
    products: tuple[str, ...]
    targets: tuple[tuple[str, tuple[str, ...]], ...]
    gap: tuple[int, str] | None
    negated: bool
    path: str

    @property
    def gap_micros(self) -> int | None:
        return None if self.gap is None else self.gap[0] * GAP_UNITS[self.gap[1]]

    def words(self) -> str:
        if self.kind == "did":
            what = "/".join(self.events) + (f" on product {'/'.join(self.products)}" if self.products else "")
            return f"did NOT do {what}" if self.negated else f"did {what}"
        target = _target_words(self.targets)
        return f"did NOT purchase {target}" if self.negated else f"purchased {target}"

    def gap_words(self, previous: int) -> str:
        if self.gap is None:
            return f" at any time after step {previous}" + (" up to the snapshot date" if self.negated else "")
        n, unit = self.gap
        return f" within {n} {unit[:-1] if n == 1 else unit} after step {previous}"


def _gap(values: dict[str, Any], paths: dict[str, str], ctx: ParseContext) -> tuple[int, str] | None:
    given = [k for k in GAP_KEYS if k in values]
    if len(given) > 1:
        raise ctx.error(paths[given[1]], f"give one of {', '.join(GAP_KEYS)}, not {given[0]} and {given[1]}")
    if not given:
        return None
    key = given[0]
    unit = key.removeprefix("within_")
    return ctx.integer(values[key], paths[key], minimum=1, maximum=GAP_MAX[unit]), unit


def _filter(
    node: Mapping[str, Any], kind: str, path: str, ctx: ParseContext, options: tuple[str, ...], what: str
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[tuple[str, tuple[str, ...]], ...], dict[str, Any], dict[str, str]]:
    """(events, products, targets, option values, option paths) of a ``did``/``purchased`` step."""
    targets_keys = ("event", "product") if kind == "did" else TARGET_KEYS
    values, paths = _options(node, kind, path, ctx, targets_keys, options, what)
    events: tuple[str, ...] = ()
    products: tuple[str, ...] = ()
    targets: tuple[tuple[str, tuple[str, ...]], ...] = ()
    if kind == "did":
        if "event" not in values:
            raise ctx.error(
                join_path(path, kind), "missing event type, e.g. {did: add_to_cart} or {did: {event: add_to_cart}}"
            )
        events = ctx.one_or_many(values["event"], paths["event"], lambda v, p: _event_type(v, p, ctx))
        if "product" in values:
            products = ctx.one_or_many(values["product"], paths["product"], lambda v, p: ctx.string(v, p))
    else:
        if values.get("product") == "any" and paths.get("product") == join_path(path, kind):
            values.pop("product")
        targets = _targets({k: values[k] for k in TARGET_KEYS if k in values}, paths, ctx)
    extra = {k: values[k] for k in options if k in values}
    return events, products, targets, extra, paths


def _step(node: Any, path: str, ctx: ParseContext, index: int, count: int) -> Step:
    example = "{did: add_to_cart}, {purchased: {category: Shoes}, within_days: 7} or {then_not: {purchased: any}, within_days: 2}"
    node = ctx.mapping(node, path, f"a sequence step such as {example}")
    kinds = [k for k in node if k in (*STEP_KINDS, "then_not")]
    if not kinds:
        keys = ", ".join(repr(str(k)) for k in node) or "none"
        raise ctx.error(path, f"a sequence step needs one of did, purchased, then_not; got keys {keys}")
    if len(kinds) > 1:
        raise ctx.error(path, f"a sequence step has exactly one of did, purchased, then_not; found {', '.join(kinds)}")
    kind = kinds[0]
    if kind == "then_not":
        if index == 0:
            raise ctx.error(join_path(path, "then_not"), "a sequence starts with something that happened, not then_not")
        if index != count - 1:
            raise ctx.error(join_path(path, "then_not"), "then_not must be the last step of a sequence")
        ctx.check_keys(node, path, ("then_not", *GAP_KEYS), "a 'then_not' step")
        inner_path = join_path(path, "then_not")
        inner = ctx.mapping(node["then_not"], inner_path, "the step that did not follow, e.g. {purchased: any}")
        for key in GAP_KEYS:
            if key in inner:
                raise ctx.error(
                    join_path(inner_path, key), f"{key} goes beside then_not: {{then_not: {{...}}, {key}: N}}"
                )
        inner_kinds = [k for k in inner if k in STEP_KINDS]
        if len(inner_kinds) != 1:
            raise ctx.error(inner_path, f"then_not takes one did or purchased filter, got {show(dict(inner))}")
        events, products, targets, _, _ = _filter(
            inner, inner_kinds[0], inner_path, ctx, (), f"a '{inner_kinds[0]}' filter of then_not"
        )
        values = {k: node[k] for k in GAP_KEYS if k in node}
        gap = _gap(values, {k: join_path(path, k) for k in values}, ctx)
        return Step(inner_kinds[0], events, products, targets, gap, True, path)
    events, products, targets, values, paths = _filter(node, kind, path, ctx, GAP_KEYS, f"a '{kind}' step")
    gap = _gap(values, paths, ctx)
    if index == 0 and gap is not None:
        key = next(k for k in GAP_KEYS if k in values)
        raise ctx.error(
            paths[key],
            f"the first step has no step before it; for the lookback put within_days or between beside "
            f"sequence, not {key} in the step",
        )
    return Step(kind, events, products, targets, gap, False, path)


@register_condition("sequence")
@dataclass(frozen=True)
class Sequence(Condition):
    """``{sequence: [step, step, …], within_days: 30}``: steps that happened in this order.

    See the module docstring for the exact semantics (ties, window edges, lookback).
    """

    steps: tuple[Step, ...]
    within_days: int | None
    between: tuple[dt.date, dt.date] | None
    path: str

    @classmethod
    def parse(cls, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Condition:
        ctx.check_keys(node, path, ("sequence", *WINDOW_KEYS), "a 'sequence' condition")
        spath = join_path(path, "sequence")
        items = node["sequence"]
        if not isinstance(items, list) or not 2 <= len(items) <= MAX_STEPS:
            got = f"{len(items)} step(s)" if isinstance(items, list) else show(items)
            raise ctx.error(
                spath, f"expected a list of 2 to {MAX_STEPS} steps (for one step use did or purchased), got {got}"
            )
        steps = []
        for i, item in enumerate(items):
            if i:  # the sequence itself counted as the first leaf
                ctx.count_leaf(join_path(spath, i))
            steps.append(_step(item, join_path(spath, i), ctx, i, len(items)))
        values = {k: node[k] for k in WINDOW_KEYS if k in node}
        within, between = _window(values, {k: join_path(path, k) for k in values}, path, ctx)
        return cls(tuple(steps), within, between, path)

    def needs_events(self) -> bool:
        return any(s.kind == "did" for s in self.steps)

    @property
    def positive(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if not s.negated)

    @property
    def negated(self) -> Step | None:
        return self.steps[-1] if self.steps[-1].negated else None

    def describe(self) -> str:
        window = _window_words(self.within_days, self.between)
        lookback = " (any time up to the snapshot date)" if window == " ever" else f",{window}"
        lines = [f"in this order, each step strictly later than the one before{lookback}:"]
        for i, step in enumerate(self.steps):
            if i == 0:
                lines.append(f"  1. {step.words()}")
                continue
            text = f"  {i + 1}. then {step.words()}{step.gap_words(i)}"
            if step.negated and step.gap is not None:
                text += " (once that time has passed by the end of the snapshot date)"
            lines.append(text)
        return "sequence " + "\n".join(lines)

    # ------------------------------------------------------------- SQL

    def to_sql(self, rctx: RenderContext) -> Expr:
        strategy = rctx.sequence_strategy
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown sequence strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
        query = self._window_sql(rctx) if strategy == "window" else self._join_sql(rctx)
        return InSubquery(Col("persona_id", rctx.alias), query)

    def _occurrences(self, step: Step, tag: int | None, rctx: RenderContext) -> Select:
        """(persona_id, ts[, step]) of every occurrence of ``step`` the lookback lets count."""
        v = rctx.views
        if step.negated:
            # Looked for after the anchor, up to the snapshot: only the lookback's start
            # bounds it (which the anchor already passed, so it only prunes).
            start = None
            if self.within_days is not None:
                start = rctx.snapshot - dt.timedelta(days=self.within_days)
            elif self.between is not None:
                start = self.between[0]
            bounds: tuple[int | None, tuple[dt.date, dt.date] | None] = (None, None)
        else:
            start, bounds = None, (self.within_days, self.between)

        def dated(col: Expr) -> Expr:
            window = _window_sql(col, bounds[0], bounds[1], rctx)
            return and_(window, BinOp(">=", col, Lit(start)) if start is not None else None)

        if step.kind == "did":
            persona, cookie_join = event_persona(rctx)
            columns: list[tuple[Expr, str | None]] = [
                (persona, "persona_id"),
                (Func("unix_micros", (Col("event_ts", "e"),)), "ts"),
            ]
            where = and_(
                dated(Col("event_date", "e")),
                InList(Col("event_type", "e"), tuple(Lit(x) for x in step.events)),
                InList(Col("product_id", "e"), tuple(Lit(x) for x in step.products)) if step.products else None,
                IsNull(persona, negated=True),
            )
            if tag is not None:
                columns.append((Lit(tag), "step"))
            return Select(tuple(columns), Table(v.events), "e", joins=(cookie_join,), where=where)
        target_preds, needs_products = _target_sql(step.targets, "ol")
        joins: tuple[Join, ...] = ()
        if needs_products:
            joins = (Join(Table(v.products), "p", BinOp("=", Col("product_id", "p"), Col("product_id", "ol"))),)
        columns = [(Col("persona_id", "ol"), "persona_id"), (Func("unix_micros", (Col("order_ts", "ol"),)), "ts")]
        if tag is not None:
            columns.append((Lit(tag), "step"))
        where = and_(
            IsNull(Col("persona_id", "ol"), negated=True),
            dated(Cast(Col("order_ts", "ol"), "date")),
            BinOp(">", Col("quantity", "ol"), Lit(0)),
            *target_preds,
        )
        return Select(tuple(columns), Table(v.order_lines), "ol", joins=joins, where=where)

    @staticmethod
    def _end_micros(rctx: RenderContext) -> Expr:
        """The first instant after the snapshot date, in the session time zone."""
        end = dt.datetime.combine(rctx.snapshot + dt.timedelta(days=1), dt.time())
        return Func("unix_micros", (Lit(end),))

    def _window_sql(self, rctx: RenderContext) -> Select:
        positive, negated = self.positive, self.negated
        parts = [self._occurrences(s, i, rctx) for i, s in enumerate(positive)]
        if negated is not None:
            parts.append(self._occurrences(negated, NEGATED_TAG, rctx))

        def carry(alias: str) -> tuple[tuple[Expr, str | None], ...]:
            return ((Col("persona_id", alias), None), (Col("ts", alias), None), (Col("step", alias), None))

        def over(func: str, value: Expr, alias: str, descending: bool = False) -> Over:
            # Every row strictly before this one in the order (ts is in whole microseconds,
            # so "1 PRECEDING" excludes equal times). Spark evaluates a frame that starts
            # UNBOUNDED PRECEDING incrementally; one that ends UNBOUNDED FOLLOWING is
            # recomputed for every row (quadratic in a persona's rows), hence the reversed
            # order for "the first one after".
            picked = Func(func, (Func("if", (value, Col("ts", alias), Lit(None))),))
            order = (OrderBy(Col("ts", alias), descending=descending),)
            return Over(picked, (Col("persona_id", alias),), order, Frame(None, -1))

        # ok: this row is an occurrence of step i ending a valid chain of steps 0..i.
        current = Select((*carry("u"), (BinOp("=", Col("step", "u"), Lit(0)), "ok")), UnionAll(tuple(parts)), "u")
        for i in range(1, len(positive)):
            a, b = f"wp{i}", f"sq{i}"
            # The latest valid occurrence of step i-1 strictly before this row.
            latest = over("max", Col("ok", a), a)
            with_prev = Select((*carry(a), (latest, "prev_ts")), current, a)
            gap = positive[i].gap_micros
            ok = and_(
                BinOp("=", Col("step", b), Lit(i)),
                IsNull(Col("prev_ts", b), negated=True),
                BinOp("<=", BinOp("-", Col("ts", b), Col("prev_ts", b)), Lit(gap)) if gap is not None else None,
            )
            current = Select((*carry(b), (ok, "ok")), with_prev, b)
        if negated is None:
            return Select(
                ((Col("persona_id", "sq"), "persona_id"),),
                current,
                "sq",
                where=Col("ok", "sq"),
                group_by=(Col("persona_id", "sq"),),
            )
        # The first occurrence of the then_not step strictly after this row.
        following = over("min", BinOp("=", Col("step", "wn"), Lit(NEGATED_TAG)), "wn", descending=True)
        with_next = Select(
            ((Col("persona_id", "wn"), None), (Col("ts", "wn"), None), (Col("ok", "wn"), None), (following, "next_ts")),
            current,
            "wn",
        )
        gap = negated.gap_micros
        if gap is None:
            absent: Expr = IsNull(Col("next_ts", "sn"))
            elapsed = None
        else:
            deadline = BinOp("+", Col("ts", "sn"), Lit(gap))
            absent = Or((IsNull(Col("next_ts", "sn")), BinOp(">", Col("next_ts", "sn"), deadline)))
            elapsed = BinOp("<=", deadline, self._end_micros(rctx))
        return Select(
            ((Col("persona_id", "sn"), "persona_id"),),
            with_next,
            "sn",
            where=and_(Col("ok", "sn"), absent, elapsed),
            group_by=(Col("persona_id", "sn"),),
        )

    def _join_sql(self, rctx: RenderContext) -> Select:
        positive, negated = self.positive, self.negated
        current = self._occurrences(positive[0], None, rctx)
        for i in range(1, len(positive)):
            gap = positive[i].gap_micros
            on = and_(
                BinOp("=", Col("persona_id", "pa"), Col("persona_id", "nx")),
                BinOp("<", Col("ts", "pa"), Col("ts", "nx")),
                BinOp("<=", Col("ts", "nx"), BinOp("+", Col("ts", "pa"), Lit(gap))) if gap is not None else None,
            )
            current = Select(
                ((Col("persona_id", "nx"), "persona_id"), (Col("ts", "nx"), "ts")),
                self._occurrences(positive[i], None, rctx),
                "nx",
                joins=(Join(current, "pa", on, kind="LEFT SEMI JOIN"),),
            )
        joins: tuple[Join, ...] = ()
        where = None
        if negated is not None:
            gap = negated.gap_micros
            on = and_(
                BinOp("=", Col("persona_id", "ng"), Col("persona_id", "an")),
                BinOp(">", Col("ts", "ng"), Col("ts", "an")),
                BinOp("<=", Col("ts", "ng"), BinOp("+", Col("ts", "an"), Lit(gap))) if gap is not None else None,
            )
            joins = (Join(self._occurrences(negated, None, rctx), "ng", on, kind="LEFT ANTI JOIN"),)
            if gap is not None:
                where = BinOp("<=", BinOp("+", Col("ts", "an"), Lit(gap)), self._end_micros(rctx))
        return Select(
            ((Col("persona_id", "an"), "persona_id"),),
            current,
            "an",
            joins=joins,
            where=where,
            group_by=(Col("persona_id", "an"),),
        )


__all__ = ["GAP_KEYS", "MAX_STEPS", "STRATEGIES", "Sequence", "Step"]
