"""Where empty (null) attributes change a segment's answer, in words a person can act on.

The rule: a condition on an empty attribute is false, and ``not`` flips it. So
``country != GB`` leaves out the personas with no country, and ``not: {country = GB}``
takes them in; ``recency_days > 90`` leaves out everyone who did not buy in the cycle.
``or_empty: true`` on a condition takes them in; ``is_null`` selects only them.

:func:`empty_value_notes` finds every attribute condition of a segment whose answer
depends on the rule (not ``is_null`` / ``is_not_null``, not ``or_empty``) and whether
the personas with that attribute empty end up in or out. :func:`count_empty` counts
them on a feature snapshot, in one aggregate.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from segengine.rules.conditions import OPERATORS, AttributeCondition, NotCondition

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from segengine.rules.parse import Segment
    from segengine.rules.registry import Condition

NULL_RULE = "a condition on an empty (null) attribute is false, and `not` flips it"


@dataclass(frozen=True)
class EmptyNote:
    """One attribute condition whose answer depends on the null rule.

    Attributes:
        path: the condition's place in the document (``where.all[0]``).
        attr: the attribute.
        words: the condition in words.
        included: True when the personas with ``attr`` empty are selected by this
            condition (it sits under an odd number of ``not``), False when they are left out.
    """

    path: str
    attr: str
    words: str
    included: bool

    def line(self, empty: int | None = None, snapshot_date: dt.date | None = None) -> str:
        """``where.all[0] (country != 'GB'): personas with no country are not included (12 on 2025-06-30); …``."""
        counted = ""
        if empty is not None:
            on = f" on {snapshot_date.isoformat()}" if snapshot_date else ""
            counted = f" ({empty:,d} persona{'s' if empty != 1 else ''}{on})"
        if self.included:
            return (
                f"{self.path} ({self.words}): inside `not`, personas with no {self.attr} are included{counted}; "
                f"add `{{attr: {self.attr}, op: is_not_null}}` beside it to leave them out"
            )
        return (
            f"{self.path} ({self.words}): personas with no {self.attr} are not included{counted}; "
            "add `or_empty: true` to the condition to include them"
        )


def _walk(condition: Condition, negations: int) -> Iterator[tuple[Condition, int]]:
    yield condition, negations
    inner = negations + 1 if isinstance(condition, NotCondition) else negations
    for child in condition.children():
        yield from _walk(child, inner)


def empty_value_notes(segment: Segment) -> list[EmptyNote]:
    """The attribute conditions of ``segment`` (not of segments it uses) the null rule decides.

    Args:
        segment: a parsed segment.

    Returns:
        One note per such condition, in document order.
    """
    if segment.where is None:
        return []
    notes = []
    for cond, negations in _walk(segment.where, 0):
        if not isinstance(cond, AttributeCondition) or cond.or_empty or not OPERATORS[cond.op].two_valued:
            continue
        notes.append(EmptyNote(cond.path, cond.attr, cond.describe(), included=negations % 2 == 1))
    return notes


def count_empty(features: DataFrame, attrs: Iterable[str]) -> dict[str, int]:
    """How many rows of ``features`` have each of ``attrs`` null (one aggregate, one row back).

    Args:
        features: one ``customer_features`` snapshot.
        attrs: the attributes to count.

    Returns:
        attribute -> number of personas with it null.
    """
    from pyspark.sql import functions as F

    names = list(dict.fromkeys(attrs))
    if not names:
        return {}
    row = features.agg(
        *[F.sum(F.when(F.col(a).isNull(), 1).otherwise(0)).alias(f"_{i}") for i, a in enumerate(names)]
    ).first()
    assert row is not None  # a global aggregate has exactly one row
    return {a: int(row[f"_{i}"] or 0) for i, a in enumerate(names)}


def explain_empty_values(
    segment: Segment, counts: Mapping[str, int] | None = None, snapshot_date: dt.date | None = None
) -> list[str]:
    """The "Empty values" section of ``segment explain`` (no lines when nothing depends on it).

    Args:
        segment: the parsed segment.
        counts: attribute -> personas with it empty on ``snapshot_date`` (None: not counted).
        snapshot_date: the date the counts are for.
    """
    notes = empty_value_notes(segment)
    if not notes:
        return []
    lines = [f"Empty values ({NULL_RULE}):"]
    for note in notes:
        lines.append("  - " + note.line(None if counts is None else counts.get(note.attr), snapshot_date))
    if counts is None:
        on = f" of {snapshot_date.isoformat()}" if snapshot_date else ""
        lines.append(f"  (not counted: counts need the customer_features snapshot{on})")
    return lines


def empty_attrs(segment: Segment) -> list[str]:
    """The attributes :func:`empty_value_notes` names, each once."""
    return list(dict.fromkeys(n.attr for n in empty_value_notes(segment)))


__all__: list[str] = [
    "NULL_RULE",
    "EmptyNote",
    "count_empty",
    "empty_attrs",
    "empty_value_notes",
    "explain_empty_values",
]
