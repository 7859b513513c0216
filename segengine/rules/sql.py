"""A tiny SQL expression tree for the rule compiler, rendered to Spark SQL.

The compiler never formats user text into SQL. It builds a tree of the classes below
(in the spirit of ``sqlglot.expressions``) and the tree renders itself: identifiers are
back-quoted, operators and function names come from closed sets defined here, and every
value goes through :func:`literal`, the one place that turns a Python value into a typed,
escaped Spark SQL literal.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, overload

# Binary operators and functions the compiler may emit. Anything else is a programming
# error, caught by an assertion at construction (never reachable from user input).
BINARY_OPS = frozenset({"=", "<>", "<", "<=", ">", ">=", "*", "+", "-"})
FUNCTIONS = frozenset(
    {
        "coalesce",
        "contains",
        "startswith",
        "endswith",
        "to_date",
        "count",
        "sum",
        "if",
        "lower",
        "max",
        "min",
        "unix_micros",
    }
)
JOIN_KINDS = frozenset({"JOIN", "LEFT JOIN", "LEFT SEMI JOIN", "LEFT ANTI JOIN"})
CAST_TYPES = frozenset({"date", "string", "double", "timestamp"})
_ALIAS_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_INT32 = 2**31
_INT64 = 2**63

# Printable characters that still get escaped: ``$`` because Spark substitutes ``${var}``
# in the raw SQL text before parsing (spark.sql.variable.substitute, on by default), and
# line/paragraph separators and BOM so a rendered literal stays on one readable line.
_ALWAYS_ESCAPE = frozenset({"$", "\u2028", "\u2029", "\ufeff"})


def quote_identifier(name: str) -> str:
    """Back-quote an identifier (a doubled back-quote stands for itself inside)."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"identifier must be a non-empty string, got {name!r}")
    return "`" + name.replace("`", "``") + "`"


def _escape_string(value: str) -> str:
    out = ["'"]
    for ch in value:
        if ch == "'":
            out.append("\\'")
        elif ch == "\\":
            out.append("\\\\")
        elif ch.isprintable() and ch not in _ALWAYS_ESCAPE:
            out.append(ch)
        else:
            # Control characters, newlines, lone surrogates, unassigned code points:
            # \uXXXX escapes (a UTF-16 surrogate pair above the BMP) so the text the
            # parser sees is plain ASCII around them.
            cp = ord(ch)
            if cp <= 0xFFFF:
                out.append(f"\\u{cp:04X}")
            else:
                cp -= 0x10000
                out.append(f"\\u{0xD800 + (cp >> 10):04X}\\u{0xDC00 + (cp & 0x3FF):04X}")
    out.append("'")
    return "".join(out)


def literal(value: Any) -> str:
    """Render a Python value as a typed Spark SQL literal.

    Strings are single-quoted with ``'`` and ``\\`` backslash-escaped and every
    non-printable character (and ``$``, which would start a ``${var}`` substitution)
    written as ``\\uXXXX``, so no value can end the literal early or be rewritten.
    Spark's default string-literal parsing (``spark.sql.parser.escapedStringLiterals``
    = false) is required; :func:`segengine.rules.evaluate.check_session` enforces it.

    Args:
        value: None, bool, int, float, str, ``datetime.date`` or ``datetime.datetime``.

    Returns:
        The literal's SQL text, e.g. ``'it\\'s'``, ``70``, ``0.5D``, ``DATE'2025-06-30'``.

    Raises:
        ValueError: for a non-finite float or an integer outside the 64-bit range.
        TypeError: for any other Python type.
    """
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        if not -_INT64 <= value < _INT64:
            raise ValueError(f"integer {value} is outside the 64-bit range")
        text = str(value)
        return text if -_INT32 <= value < _INT32 else text + "L"
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"number {value!r} is not finite")
        return repr(value) + "D"
    if isinstance(value, str):
        return _escape_string(value)
    if isinstance(value, dt.datetime):
        return "TIMESTAMP'" + value.strftime("%Y-%m-%d %H:%M:%S.%f") + "'"
    if isinstance(value, dt.date):
        return "DATE'" + value.isoformat() + "'"
    raise TypeError(f"cannot render a {type(value).__name__} as a SQL literal")


class Expr:
    """A SQL expression node."""

    def sql(self, indent: int = 0) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def __str__(self) -> str:
        return self.sql()


@dataclass(frozen=True)
class Col(Expr):
    """A column of a query-internal alias: ``f.`recency_days```."""

    name: str
    alias: str | None = None

    def __post_init__(self) -> None:
        assert self.alias is None or _ALIAS_RE.match(self.alias), self.alias

    def sql(self, indent: int = 0) -> str:
        col = quote_identifier(self.name)
        return f"{self.alias}.{col}" if self.alias else col


@dataclass(frozen=True)
class Lit(Expr):
    """A literal value (rendered by :func:`literal`)."""

    value: Any

    def sql(self, indent: int = 0) -> str:
        return literal(self.value)


@dataclass(frozen=True)
class Star(Expr):
    def sql(self, indent: int = 0) -> str:
        return "*"


@dataclass(frozen=True)
class BinOp(Expr):
    op: str
    left: Expr
    right: Expr

    def __post_init__(self) -> None:
        assert self.op in BINARY_OPS, self.op

    def sql(self, indent: int = 0) -> str:
        return f"{self.left.sql(indent)} {self.op} {self.right.sql(indent)}"


@dataclass(frozen=True)
class Func(Expr):
    name: str
    args: tuple[Expr, ...]
    distinct: bool = False

    def __post_init__(self) -> None:
        assert self.name in FUNCTIONS, self.name

    def sql(self, indent: int = 0) -> str:
        inner = ", ".join(a.sql(indent) for a in self.args)
        return f"{self.name.upper()}({'DISTINCT ' if self.distinct else ''}{inner})"


@dataclass(frozen=True)
class Cast(Expr):
    expr: Expr
    type: str

    def __post_init__(self) -> None:
        assert self.type in CAST_TYPES, self.type

    def sql(self, indent: int = 0) -> str:
        return f"CAST({self.expr.sql(indent)} AS {self.type.upper()})"


@dataclass(frozen=True)
class Not(Expr):
    expr: Expr

    def sql(self, indent: int = 0) -> str:
        return f"NOT ({self.expr.sql(indent)})"


def _bool_chain(word: str, items: Sequence[Expr], indent: int) -> str:
    parts = [i.sql(indent + 1) for i in items]
    if len(parts) == 1:
        return parts[0]
    inline = f" {word} ".join(f"({p})" for p in parts)
    if len(inline) <= 100 and "\n" not in inline:
        return inline
    pad = "  " * (indent + 1)
    body = f"\n{pad}{word} ".join(f"({p})" for p in parts)
    return f"\n{pad}{body}\n{'  ' * indent}"


@dataclass(frozen=True)
class And(Expr):
    items: tuple[Expr, ...]

    def sql(self, indent: int = 0) -> str:
        return _bool_chain("AND", self.items, indent)


@dataclass(frozen=True)
class Or(Expr):
    items: tuple[Expr, ...]

    def sql(self, indent: int = 0) -> str:
        return _bool_chain("OR", self.items, indent)


@dataclass(frozen=True)
class Between(Expr):
    expr: Expr
    low: Expr
    high: Expr

    def sql(self, indent: int = 0) -> str:
        return f"{self.expr.sql(indent)} BETWEEN {self.low.sql(indent)} AND {self.high.sql(indent)}"


@dataclass(frozen=True)
class InList(Expr):
    expr: Expr
    items: tuple[Expr, ...]

    def __post_init__(self) -> None:
        assert self.items, "IN needs at least one value"

    def sql(self, indent: int = 0) -> str:
        return f"{self.expr.sql(indent)} IN ({', '.join(i.sql(indent) for i in self.items)})"


@dataclass(frozen=True)
class IsNull(Expr):
    expr: Expr
    negated: bool = False

    def sql(self, indent: int = 0) -> str:
        return f"{self.expr.sql(indent)} IS {'NOT ' if self.negated else ''}NULL"


@dataclass(frozen=True)
class Join:
    """``LEFT JOIN``/``JOIN`` of a table or subquery under an alias."""

    source: Table | Select | UnionAll
    alias: str
    on: Expr
    kind: str = "JOIN"

    def __post_init__(self) -> None:
        assert self.kind in JOIN_KINDS, self.kind
        assert _ALIAS_RE.match(self.alias), self.alias


@dataclass(frozen=True)
class Frame:
    """A ``RANGE`` window frame in units of the ORDER BY key: negative offsets precede the
    current row, positive ones follow it, 0 is the current row (with its peers), None is
    unbounded on that side. ``Frame(None, -1)`` is every row strictly before the current
    one when the key is an integer."""

    start: int | None
    end: int | None

    def __post_init__(self) -> None:
        for bound in (self.start, self.end):
            assert bound is None or (isinstance(bound, int) and not isinstance(bound, bool)), bound

    @staticmethod
    def _bound(value: int | None, unbounded: str) -> str:
        if value is None:
            return f"UNBOUNDED {unbounded}"
        if value == 0:
            return "CURRENT ROW"
        return f"{abs(value)} {'PRECEDING' if value < 0 else 'FOLLOWING'}"

    def sql(self) -> str:
        return f"RANGE BETWEEN {self._bound(self.start, 'PRECEDING')} AND {self._bound(self.end, 'FOLLOWING')}"


@dataclass(frozen=True)
class Over(Expr):
    """``func OVER (PARTITION BY … ORDER BY … RANGE BETWEEN …)``."""

    func: Func
    partition_by: tuple[Expr, ...]
    order_by: tuple[OrderBy, ...]
    frame: Frame

    def sql(self, indent: int = 0) -> str:
        parts = []
        if self.partition_by:
            parts.append("PARTITION BY " + ", ".join(p.sql(indent) for p in self.partition_by))
        if self.order_by:
            parts.append("ORDER BY " + ", ".join(o.sql(indent) for o in self.order_by))
        parts.append(self.frame.sql())
        return f"{self.func.sql(indent)} OVER ({' '.join(parts)})"


@dataclass(frozen=True)
class UnionAll:
    """``SELECT … UNION ALL SELECT …``, usable as the source of a :class:`Select`."""

    selects: tuple[Select, ...]

    def __post_init__(self) -> None:
        assert self.selects, "UNION ALL needs at least one SELECT"

    def sql(self, indent: int = 0) -> str:
        pad = "\n" + "  " * indent
        return f"{pad}UNION ALL{pad}".join(s.sql(indent) for s in self.selects)


@dataclass(frozen=True)
class Table:
    """A table or temp view, by name (back-quoted when rendered)."""

    name: str

    def sql(self, indent: int = 0) -> str:
        return quote_identifier(self.name)


@dataclass(frozen=True)
class OrderBy:
    expr: Expr
    descending: bool = False
    nulls_last: bool = True

    def sql(self, indent: int = 0) -> str:
        return f"{self.expr.sql(indent)} {'DESC' if self.descending else 'ASC'} NULLS {'LAST' if self.nulls_last else 'FIRST'}"


@dataclass(frozen=True)
class Select(Expr):
    """``SELECT … FROM … [JOIN …] [WHERE …] [GROUP BY …] [HAVING …] [ORDER BY …] [LIMIT n]``."""

    columns: tuple[tuple[Expr, str | None], ...]
    source: Table | Select | UnionAll
    alias: str
    joins: tuple[Join, ...] = ()
    where: Expr | None = None
    group_by: tuple[Expr, ...] = ()
    having: Expr | None = None
    order_by: tuple[OrderBy, ...] = ()
    limit: int | None = None
    meta: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        assert _ALIAS_RE.match(self.alias), self.alias
        assert self.limit is None or (isinstance(self.limit, int) and self.limit >= 0)

    @staticmethod
    def _source_sql(source: Table | Select | UnionAll, indent: int) -> str:
        if isinstance(source, Table):
            return source.sql(indent)
        pad = "  " * (indent + 1)
        return f"(\n{pad}{source.sql(indent + 1)}\n{'  ' * indent})"

    def sql(self, indent: int = 0) -> str:
        pad = "\n" + "  " * indent
        cols = ", ".join(c.sql(indent) + (f" AS {quote_identifier(a)}" if a else "") for c, a in self.columns)
        lines = [f"SELECT {cols}", f"FROM {self._source_sql(self.source, indent)} AS {self.alias}"]
        for j in self.joins:
            lines.append(f"{j.kind} {self._source_sql(j.source, indent)} AS {j.alias} ON {j.on.sql(indent)}")
        if self.where is not None:
            lines.append(_clause("WHERE", self.where, indent))
        if self.group_by:
            lines.append("GROUP BY " + ", ".join(g.sql(indent) for g in self.group_by))
        if self.having is not None:
            lines.append(_clause("HAVING", self.having, indent))
        if self.order_by:
            lines.append("ORDER BY " + ", ".join(o.sql(indent) for o in self.order_by))
        if self.limit is not None:
            lines.append(f"LIMIT {int(self.limit)}")
        return pad.join(lines)


def _clause(word: str, expr: Expr, indent: int) -> str:
    body = expr.sql(indent).rstrip()
    return f"{word}{body}" if body.startswith("\n") else f"{word} {body}"


@dataclass(frozen=True)
class InSubquery(Expr):
    """``expr`` is among the values of a one-column subquery, rendered as a correlated ``EXISTS``.

    The subquery's column and ``expr`` are never null (persona ids), so this is
    ``expr IN (SELECT …)``. It is not written that way because Spark plans ``NOT (x IN
    (subquery))`` (and an ``IN`` under ``OR``/``NOT``) as a null-aware join that falls back
    to a broadcast nested loop join, pairing every persona with every subquery row: at 1M
    personas a "did not add to cart in 30 days" condition ran for more than ten minutes.
    ``EXISTS`` with an equality is planned as a hash or sort-merge semi/anti join.
    """

    expr: Expr
    query: Select

    def sql(self, indent: int = 0) -> str:
        column, name = self.query.columns[0]
        if name is None:
            assert isinstance(column, Col), column
            name = column.name
        alias = f"{self.query.alias}_in"
        inner = "  " * (indent + 2)
        match = BinOp("=", Col(name, alias), self.expr)
        return (
            f"EXISTS (\n{'  ' * (indent + 1)}SELECT 1 FROM (\n{inner}{self.query.sql(indent + 2)}\n"
            f"{'  ' * (indent + 1)}) AS {alias} WHERE {match.sql(indent + 1)}\n{'  ' * indent})"
        )


@overload
def and_(first: Expr, /, *items: Expr | None) -> Expr: ...
@overload
def and_(*items: Expr | None) -> Expr | None: ...


def and_(*items: Expr | None) -> Expr | None:
    """AND of the non-None items (None when there are none: never when the first is an Expr)."""
    kept = tuple(i for i in items if i is not None)
    if not kept:
        return None
    return kept[0] if len(kept) == 1 else And(kept)


def two_valued(pred: Expr) -> Expr:
    """``COALESCE(pred, FALSE)``: a comparison with a null is false, never unknown.

    This keeps ``not`` a plain complement: ``not {attr: x, op: '=', value: 1}`` matches
    personas whose ``x`` is null.
    """
    return Func("coalesce", (pred, Lit(False)))
