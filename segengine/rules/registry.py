"""The condition registry, parse context and value validators shared by every condition kind.

Each condition kind (``attr``, ``all``, ``purchased``, ``did``, …) is a class registered
under the YAML key that introduces it, as ``databrickslabs/dqx`` registers its check
functions: :func:`parse_condition` looks the key up and the class validates its own
arguments, raising :class:`~segengine.errors.SegmentDefinitionError` with the exact path
(``where.all[2].any[0].value``) before any Spark work.
"""

from __future__ import annotations

import datetime as dt
import difflib
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

from segengine.dates import date_problem, parse_date
from segengine.errors import SegmentDefinitionError

if TYPE_CHECKING:
    from segengine.features.catalog import Attribute
    from segengine.rules.sql import Expr, Select

MAX_LIST_VALUES = 10_000


def join_path(path: str, key: str | int) -> str:
    """``where`` + ``all`` → ``where.all``; ``where.all`` + 2 → ``where.all[2]``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def closest(word: Any, candidates: Iterable[str], n: int = 3) -> str:
    """`` (did you mean a, b?)`` or an empty string."""
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, sorted(candidates), n=n, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def show(value: Any) -> str:
    """A value as the error message shows it, with its YAML type."""
    kind = {bool: "boolean", int: "integer", float: "number", str: "string", list: "list", dict: "mapping"}
    name = "null" if value is None else kind.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{name} {text}"


T = TypeVar("T")


class _Reported(SegmentDefinitionError):
    """Raised by a composite whose part failed: the part's problem is already recorded."""


@dataclass
class ParseContext:
    """State of one document's validation: catalog, limits, line numbers, counters."""

    catalog: Mapping[str, Attribute]
    max_conditions: int = 50
    source: str = "<segment>"
    lines: dict[str, int] = field(default_factory=dict)
    leaves: int = 0
    # Every problem found so far: a document's problems are reported all at once.
    problems: list[SegmentDefinitionError] = field(default_factory=list)

    def attempt(self, parse: Callable[[], T]) -> T | None:
        """``parse()``, or None with its problem recorded, so that the parts after it
        are still checked (the siblings in a list, the other keys of the document)."""
        try:
            return parse()
        except _Reported:
            return None
        except SegmentDefinitionError as exc:
            self.problems.append(exc)
            return None

    def reported(self) -> SegmentDefinitionError:
        """The error a composite raises when a part of it had a problem, already recorded."""
        return _Reported(str(self.problems[-1]) if self.problems else "invalid segment document")

    def raise_problems(self) -> None:
        """One error listing every recorded problem, one per line (none: nothing)."""
        if not self.problems:
            return
        error = SegmentDefinitionError("\n".join(str(p) for p in self.problems))
        error.problems = [str(p) for p in self.problems]  # type: ignore[attr-defined]
        raise error

    def error(self, path: str, message: str) -> SegmentDefinitionError:
        """An error naming the source, the YAML line (when known) and the path."""
        # The line of the path, else of its nearest ancestor present in the YAML.
        line = None
        probe = path
        while line is None:
            line = self.lines.get(probe)
            if not probe:
                break
            shorter = re.sub(r"(\.[^.\[\]]+|\[\d+\])$", "", probe)
            probe = "" if shorter == probe else shorter
        where = f"{self.source}" + (f" line {line}" if line else "")
        return SegmentDefinitionError(f"{where}: {path or '<document>'}: {message}")

    def count_leaf(self, path: str) -> None:
        self.leaves += 1
        if self.leaves == self.max_conditions + 1:  # once: every leaf after it is past the limit too
            raise self.error(
                path,
                f"too many conditions: a segment may have at most {self.max_conditions} (rules.max_conditions)",
            )

    # ------------------------------------------------------------- attributes

    def attribute(self, name: Any, path: str, types: tuple[str, ...] | None = None) -> Attribute:
        """The filterable catalog attribute ``name``, else an error with the closest names."""
        usable = {n: a for n, a in self.catalog.items() if a.filterable}
        if not isinstance(name, str):
            raise self.error(path, f"expected an attribute name (a string), got {show(name)}")
        attr = usable.get(name)
        if attr is None:
            why = "is not usable in rules" if name in self.catalog else "unknown attribute"
            raise self.error(path, f"{why} {name!r}{closest(name, usable)}")
        if types is not None and attr.type not in types:
            raise self.error(path, f"attribute {name!r} is {attr.type}; expected one of: {', '.join(types)}")
        return attr

    # ------------------------------------------------------------- mappings

    def check_keys(self, node: Mapping[str, Any], path: str, allowed: Iterable[str], what: str) -> None:
        allowed = tuple(allowed)
        for key in node:
            if key not in allowed:
                raise self.error(
                    join_path(path, str(key)),
                    f"unknown key {key!r} in {what}{closest(key, allowed)}; expected one of: {', '.join(allowed)}",
                )

    def mapping(self, value: Any, path: str, what: str) -> Mapping[str, Any]:
        if not isinstance(value, Mapping):
            raise self.error(path, f"expected {what} (a mapping), got {show(value)}")
        return value

    # ------------------------------------------------------------- scalars

    def integer(self, value: Any, path: str, minimum: int | None = None, maximum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(path, f"expected an integer, got {show(value)}")
        if minimum is not None and value < minimum:
            raise self.error(path, f"expected an integer >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(path, f"expected an integer <= {maximum}, got {value}")
        return value

    def number(self, value: Any, path: str, minimum: float | None = None, maximum: float | None = None) -> float | int:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(path, f"expected a number, got {show(value)}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.error(path, f"expected a finite number, got {value!r}")
        if isinstance(value, int) and not -(2**63) <= value < 2**63:
            raise self.error(path, f"expected a number in the 64-bit range, got {value}")
        if minimum is not None and value < minimum:
            raise self.error(path, f"expected a number >= {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise self.error(path, f"expected a number <= {maximum}, got {value}")
        return value

    def string(self, value: Any, path: str, non_empty: bool = True) -> str:
        if not isinstance(value, str):
            hint = " (quote it in YAML)" if isinstance(value, (bool, int, float, dt.date)) else ""
            raise self.error(path, f"expected a string, got {show(value)}{hint}")
        if non_empty and not value:
            raise self.error(path, "expected a non-empty string")
        return value

    def date(self, value: Any, path: str) -> dt.date:
        if isinstance(value, dt.datetime):
            raise self.error(path, f"expected a date YYYY-MM-DD, got a timestamp {value.isoformat()!r}")
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str) and date_problem(value) is None:
            return parse_date(value, path)
        raise self.error(path, f"expected a date YYYY-MM-DD, got {show(value)}")

    def one_or_many(self, value: Any, path: str, item: Callable[[Any, str], Any]) -> tuple[Any, ...]:
        """A scalar or a non-empty list of scalars, each checked by ``item``."""
        if isinstance(value, list):
            if not value:
                raise self.error(path, "expected at least one value, got an empty list")
            if len(value) > MAX_LIST_VALUES:
                raise self.error(path, f"expected at most {MAX_LIST_VALUES} values, got {len(value)}")
            return tuple(item(v, join_path(path, i)) for i, v in enumerate(value))
        return (item(value, path),)


@dataclass
class RenderContext:
    """What rendering needs: the snapshot date, view names, the row alias, sub-segments."""

    snapshot: dt.date
    views: Any  # segengine.rules.compile.TableViews
    alias: str
    # (segment name, path of the in_segment node) -> compiled SELECT of that segment
    subsegment: Callable[[str, str], Select]
    # How sequence conditions compile: "window" (window functions) or "join" (self-joins).
    sequence_strategy: str = "join"


class Condition:
    """A validated condition node. Subclasses register under their YAML key."""

    key: ClassVar[str]
    leaf: ClassVar[bool] = True
    path: str

    @classmethod
    def parse(cls, node: Mapping[str, Any], path: str, ctx: ParseContext) -> Condition:  # pragma: no cover
        raise NotImplementedError

    def to_sql(self, rctx: RenderContext) -> Expr:  # pragma: no cover
        raise NotImplementedError

    def describe(self) -> str:  # pragma: no cover
        raise NotImplementedError

    def children(self) -> tuple[Condition, ...]:
        return ()

    def needs_events(self) -> bool:
        """Whether this node (not its children) reads events: ``did``, ``did_not``, or an
        attribute computed only from events (null in a warehouse without them)."""
        return False

    def walk(self) -> Iterable[Condition]:
        yield self
        for child in self.children():
            yield from child.walk()


CONDITIONS: dict[str, type[Condition]] = {}


def register_condition(key: str) -> Callable[[type[Condition]], type[Condition]]:
    """Class decorator: make ``{key: …}`` in a segment document parse into this class."""

    def wrap(cls: type[Condition]) -> type[Condition]:
        if key in CONDITIONS:
            raise ValueError(f"condition kind {key!r} registered twice")
        cls.key = key
        CONDITIONS[key] = cls
        return cls

    return wrap


def parse_condition(node: Any, path: str, ctx: ParseContext) -> Condition:
    """Dispatch one condition mapping to its registered kind."""
    kinds = sorted(CONDITIONS)
    if not isinstance(node, Mapping):
        raise ctx.error(path, f"expected a condition (a mapping with one of: {', '.join(kinds)}), got {show(node)}")
    found = [k for k in node if k in CONDITIONS]
    if not found:
        hint = ""
        for key in node:
            hint = closest(key, kinds, n=1)
            if hint:
                break
        keys = ", ".join(repr(str(k)) for k in node) or "none"
        raise ctx.error(path, f"not a condition: keys {keys}{hint}; expected one of: {', '.join(kinds)}")
    if len(found) > 1:
        raise ctx.error(path, f"a condition has exactly one kind, found {', '.join(map(repr, found))}")
    cls = CONDITIONS[found[0]]
    if cls.leaf:
        ctx.count_leaf(path)
    return cls.parse(node, path, ctx)
