"""Every condition kind a segment can use, each registered under its YAML key.

Kinds: ``attr`` (attribute comparisons), ``all`` / ``any`` / ``not``, ``purchased``,
``did`` / ``did_not``, ``in_ai_segment``, ``clv_percentile``, ``recommended``,
``in_segment`` / ``not_in_segment``. Each class validates its arguments in ``parse``
(eagerly, with exact paths), renders itself to a :mod:`segengine.rules.sql` tree in
``to_sql`` and describes itself in words for ``explain``.

One module per family: :mod:`.operators` (attribute operators), :mod:`.attribute`
(``attr``), :mod:`.logic` (``all`` / ``any`` / ``not``), :mod:`.behaviour` (windows and
targets shared by the behaviour conditions and sequences), :mod:`.activity`
(``purchased``, ``did`` / ``did_not``), :mod:`.model_outputs` (``in_ai_segment``,
``clv_percentile``, ``recommended``) and :mod:`.membership` (``in_segment`` /
``not_in_segment``). Importing this package imports all of them, which registers every
kind.

Null semantics: every leaf is two-valued. A comparison with a null attribute is false
(``COALESCE(pred, FALSE)``), so ``not`` is a plain complement: ``country != GB`` leaves
out personas with no country, ``not: {country = GB}`` keeps them. ``or_empty: true`` on
an attribute condition makes it true for a null attribute too (``is_null`` selects only
those). :mod:`segengine.rules.nulls` says where this changes a segment's answer.
"""

from __future__ import annotations

from segengine.rules.conditions.activity import Did, DidNot, Purchased
from segengine.rules.conditions.attribute import AttributeCondition
from segengine.rules.conditions.logic import AllOf, AnyOf, NotCondition
from segengine.rules.conditions.membership import InSegment, NotInSegment
from segengine.rules.conditions.model_outputs import ClvPercentile, InAiSegment, Recommended
from segengine.rules.conditions.operators import OPERATORS, Operator, register_operator

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
