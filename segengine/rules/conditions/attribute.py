"""``attr``: compare one feature column with an operator of :mod:`.operators`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from segengine.rules.conditions.operators import OPERATORS, Operator
from segengine.rules.registry import Condition, ParseContext, RenderContext, join_path, register_condition, show
from segengine.rules.sql import Col, Expr, Func, IsNull, Or, two_valued


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
