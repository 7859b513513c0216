"""The null rule: a condition on an empty attribute is false, `not` flips it, `or_empty` takes
the empty ones in; explain says where the rule decides the answer and for how many personas."""

from __future__ import annotations

import pytest

from segengine.errors import SegmentDefinitionError
from segengine.rules import compile_segment, parse_segment
from segengine.rules.nulls import count_empty, empty_value_notes, explain_empty_values

from .conftest import FEATURES, FEATURES_DDL, SNAP


def test_a_condition_on_an_empty_attribute_is_false_and_not_flips_it(select_ids):
    # plan: p1 free, p2 pro, p3 basic, p4 empty, p5 enterprise.
    assert select_ids({"where": {"attr": "plan", "op": "!=", "value": "free"}}) == ["p2", "p3", "p5"]
    assert select_ids({"where": {"not": {"attr": "plan", "op": "=", "value": "free"}}}) == ["p2", "p3", "p4", "p5"]


def test_or_empty_takes_the_personas_with_the_attribute_empty_in(select_ids):
    doc = {"where": {"attr": "plan", "op": "!=", "value": "free", "or_empty": True}}
    assert select_ids(doc) == ["p2", "p3", "p4", "p5"]
    # monetary: p1 120.5, p2 40, p3 and p4 empty, p5 120.5.
    assert select_ids({"where": {"attr": "monetary", "op": "<", "value": 50, "or_empty": True}}) == ["p2", "p3", "p4"]
    assert select_ids({"where": {"not": {"attr": "monetary", "op": "<", "value": 50, "or_empty": True}}}) == [
        "p1",
        "p5",
    ]


def test_or_empty_must_be_a_boolean_and_only_where_the_rule_decides():
    with pytest.raises(SegmentDefinitionError, match=r"where\.or_empty: expected true or false, got string 'yes'"):
        parse_segment({"name": "x", "where": {"attr": "plan", "op": "=", "value": "pro", "or_empty": "yes"}})
    with pytest.raises(SegmentDefinitionError, match=r"where\.or_empty: operator 'is_null' already decides"):
        parse_segment({"name": "x", "where": {"attr": "plan", "op": "is_null", "or_empty": True}})


def test_notes_say_whether_the_empty_ones_are_in_or_out():
    seg = parse_segment(
        {
            "name": "x",
            "where": {
                "all": [
                    {"attr": "country", "op": "!=", "value": "GB"},
                    {"not": {"attr": "recency_days", "op": "between", "value": [0, 30]}},
                    {"attr": "plan", "op": "is_null"},
                    {"attr": "frequency", "op": ">", "value": 2, "or_empty": True},
                ]
            },
        }
    )
    notes = empty_value_notes(seg)
    assert [(n.path, n.attr, n.included) for n in notes] == [
        ("where.all[0]", "country", False),
        ("where.all[1].not", "recency_days", True),
    ]
    assert explain_empty_values(seg, {"country": 12, "recency_days": 1}, SNAP) == [
        "Empty values (a condition on an empty (null) attribute is false, and `not` flips it):",
        "  - where.all[0] (country != 'GB'): personas with no country are not included (12 personas on 2025-06-30); "
        "add `or_empty: true` to the condition to include them",
        "  - where.all[1].not (recency_days between 0 and 30): inside `not`, personas with no recency_days are "
        "included (1 persona on 2025-06-30); add `{attr: recency_days, op: is_not_null}` beside it to leave them out",
    ]
    assert explain_empty_values(seg)[-1] == "  (not counted: counts need the customer_features snapshot)"
    assert explain_empty_values(parse_segment({"name": "everyone"})) == []


def test_explain_shows_the_empty_values_section_before_the_sql():
    doc = {"name": "x", "where": {"attr": "plan", "op": "!=", "value": "free"}}
    text = compile_segment(doc, SNAP).explain({"plan": 1})
    lines = text.splitlines()
    at = lines.index("Empty values (a condition on an empty (null) attribute is false, and `not` flips it):")
    assert "personas with no plan are not included (1 persona on 2025-06-30)" in lines[at + 1]
    assert lines[at + 2] == "SQL:"


def test_count_empty_counts_nulls_per_attribute(spark):
    features = spark.createDataFrame(FEATURES, FEATURES_DDL).filter(f"snapshot_date = DATE'{SNAP}'")
    assert count_empty(features, ["plan", "monetary", "plan", "persona_id"]) == {
        "plan": 1,
        "monetary": 2,
        "persona_id": 0,
    }


def test_is_empty_and_is_not_empty_are_is_null_and_is_not_null(select_ids):
    assert select_ids({"where": {"attr": "plan", "op": "is_empty"}}) == ["p4"]
    assert select_ids({"where": {"attr": "plan", "op": "is_not_empty"}}) == ["p1", "p2", "p3", "p5"]
    # Neither is decided by the null rule, so explain has nothing to say about them.
    assert empty_value_notes(parse_segment({"name": "x", "where": {"attr": "plan", "op": "is_empty"}})) == []
