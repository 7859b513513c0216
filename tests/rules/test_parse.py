"""Validation errors: raised before any Spark work, naming the path, line and what was expected."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path

import pytest

from segengine.errors import SegmentDefinitionError
from segengine.rules import Segment, parse_segment
from segengine.rules.conditions import AllOf, AttributeCondition, Purchased

SEGMENTS_DIR = Path(__file__).resolve().parents[2] / "conf" / "segments"


def error_of(doc, **kwargs) -> str:
    with pytest.raises(SegmentDefinitionError) as info:
        parse_segment(doc, **kwargs)
    return str(info.value)


def seg(cond) -> dict:
    return {"name": "test", "where": cond}


def test_valid_document_parses_to_typed_ast():
    s = parse_segment(
        {
            "name": "Shoe fans",
            "persona_types": ["customer"],
            "where": {
                "all": [
                    {"attr": "fit_score", "op": ">=", "value": 70},
                    {"purchased": {"category": "Shoes"}, "within_days": 90, "min_count": 2},
                ]
            },
            "top": {"n": 10, "by": "clv_predicted"},
        }
    )
    assert isinstance(s, Segment) and s.slug == "shoe_fans" and s.condition_count == 2
    assert isinstance(s.where, AllOf)
    assert s.where.items[0] == AttributeCondition("fit_score", "integer", ">=", 70, "where.all[0]")
    purchased = s.where.items[1]
    assert isinstance(purchased, Purchased)
    assert (purchased.targets, purchased.within_days, purchased.min_count) == ((("category", ("Shoes",)),), 90, 2)
    assert s.top.order == "desc" and s.persona_types == ("customer",)


def test_unknown_attribute_names_path_and_closest_names():
    msg = error_of(
        seg(
            {
                "all": [
                    {"attr": "fit_score", "op": ">", "value": 1},
                    {"any": [{"attr": "fit_scor", "op": "=", "value": 1}]},
                ]
            }
        )
    )
    assert "where.all[1].any[0].attr: unknown attribute 'fit_scor' (did you mean fit_score" in msg


def test_bookkeeping_column_is_not_usable_in_rules():
    assert "where.attr: is not usable in rules 'snapshot_date'" in error_of(
        seg({"attr": "snapshot_date", "op": "=", "value": "2025-01-01"})
    )


def test_operator_not_allowed_for_the_type_lists_allowed_ones():
    msg = error_of(seg({"attr": "consent_email", "op": ">", "value": True}))
    assert "where.op: operator '>' is not allowed for boolean attribute 'consent_email'; expected one of: =, !=" in msg
    assert "not allowed for string attribute 'plan'" in error_of(
        seg({"attr": "plan", "op": "between", "value": ["a", "b"]})
    )


def test_unknown_operator_suggests_the_closest():
    assert "unknown operator string 'startswith' (did you mean starts_with" in error_of(
        seg({"attr": "email", "op": "startswith", "value": "a"})
    )


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"attr": "fit_score", "op": ">=", "value": "ten"}, "where.value: expected a number, got string 'ten'"),
        ({"attr": "fit_score", "op": ">=", "value": True}, "where.value: expected a number, got boolean True"),
        ({"attr": "fit_score", "op": ">=", "value": float("nan")}, "where.value: expected a finite number"),
        ({"attr": "plan", "op": "=", "value": 3}, "where.value: expected a string, got integer 3 (quote it in YAML)"),
        ({"attr": "plan", "op": "=", "value": "gold"}, "where.value: 'gold' is not a value of 'plan'"),
        (
            {"attr": "plan", "op": "in", "value": ["free", "platinum"]},
            "where.value[1]: 'platinum' is not a value of 'plan'",
        ),
        ({"attr": "consent_email", "op": "=", "value": "yes"}, "where.value: expected true or false"),
        (
            {"attr": "last_purchase_date", "op": "before", "value": "01/02/2025"},
            "where.value: expected a date YYYY-MM-DD",
        ),
        (
            {"attr": "last_purchase_date", "op": "within_last_days", "value": -1},
            "where.value: expected an integer >= 0",
        ),
        ({"attr": "fit_score", "op": "between", "value": [70]}, "where.value: operator 'between' expects [low, high]"),
        ({"attr": "fit_score", "op": "between", "value": [70, 10]}, "where.value: expected low <= high"),
        (
            {"attr": "fit_score", "op": "in", "value": []},
            "where.value: operator 'in' needs at least one value, got an empty list",
        ),
        ({"attr": "email", "op": "contains", "value": ""}, "where.value: expected a non-empty string"),
        ({"attr": "email", "op": "is_null", "value": "x"}, "where.value: operator 'is_null' takes no value"),
        ({"attr": "fit_score", "op": ">="}, "where.value: missing value for operator '>='"),
        ({"attr": "fit_score", "value": 3}, "where.op: missing operator"),
        ({"attr": "fit_score", "op": ">", "value": 1, "vlaue": 2}, "where.vlaue: unknown key 'vlaue'"),
    ],
)
def test_wrong_values_name_the_path_and_the_expectation(cond, expected):
    assert expected in error_of(seg(cond))


@pytest.mark.parametrize(
    ("cond", "expected"),
    [
        ({"all": []}, "where.all: expected a non-empty list of conditions"),
        ({"any": {"attr": "x"}}, "where.any: expected a non-empty list of conditions"),
        ({"all": [{"atr": "fit_score"}]}, "where.all[0]: not a condition: keys 'atr' (did you mean attr?)"),
        ({"all": ["fit_score > 3"]}, "where.all[0]: expected a condition (a mapping"),
        ({"attr": "fit_score", "op": ">", "value": 1, "not": {}}, "a condition has exactly one kind"),
        ({"purchased": {"colour": "red"}}, "where.purchased.colour: unknown key 'colour'"),
        (
            {"purchased": {}, "within_days": 3, "between": ["2025-01-01", "2025-02-01"]},
            "where.between: give either within_days or between",
        ),
        ({"purchased": {}, "between": ["2025-03-01", "2025-02-01"]}, "where.between: expected first_date <= last_date"),
        ({"purchased": {}, "min_count": 0}, "where.min_count: expected an integer >= 1"),
        ({"purchased": {}, "min_count": 3, "max_count": 2}, "where.max_count: expected an integer >= 3"),
        ({"purchased": {"within_days": 3}, "within_days": 4}, "where.within_days: 'within_days' is given twice"),
        ({"purchased": {"category": []}}, "where.purchased.category: expected at least one value, got an empty list"),
        ({"did": "add_to_kart"}, "where.did: unknown event type 'add_to_kart' (did you mean add_to_cart?)"),
        ({"did": {"product": "P1"}}, "where.did: missing event type"),
        ({"clv_percentile": {"lowest": 120}}, "where.clv_percentile.lowest: expected a number <= 100"),
        (
            {"clv_percentile": {"lowest": 5, "highest": 5}},
            "where.clv_percentile: expected exactly one of lowest or highest",
        ),
        ({"recommended": "P1", "min_score": 101}, "where.min_score: expected an integer <= 100"),
        ({"in_segment": ""}, "where.in_segment: expected a non-empty string"),
        ({"in_ai_segment": []}, "where.in_ai_segment: expected at least one value"),
    ],
)
def test_condition_kind_errors_name_the_path(cond, expected):
    assert expected in error_of(seg(cond))


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"where": {}}, "name: missing segment name"),
        ({"name": "x", "wher": {}}, "wher: unknown key 'wher' in a segment document (did you mean where"),
        ({"name": "x", "kind": "live"}, "kind: expected one of static, dynamic"),
        ({"name": "x", "visibility": "public"}, "visibility: expected one of private, shared"),
        (
            {"name": "x", "persona_types": ["customers"]},
            "persona_types[0]: unknown persona type 'customers' (did you mean customer",
        ),
        ({"name": "x", "top": {"n": 0, "by": "monetary"}}, "top.n: expected an integer >= 1"),
        (
            {"name": "x", "top": {"n": 5, "by": "plan"}},
            "top.by: attribute 'plan' is string; expected one of: integer, double",
        ),
        ({"name": "x", "top": {"n": 5, "by": "monetary", "order": "up"}}, "top.order: expected asc or desc"),
        ({"name": "x", "top": {"n": 5}}, "top.by: missing by"),
        (["name", "x"], "<segment>: expected a mapping, YAML/JSON text or a file path, got list"),
        ("- name\n- x\n", "<segment> line 1: <document>: a segment document must be a mapping"),
    ],
)
def test_document_level_errors(doc, expected):
    assert expected in error_of(doc)


def test_too_many_conditions_is_reported_at_the_first_one_past_the_limit():
    conds = [{"attr": "fit_score", "op": ">", "value": i} for i in range(4)]
    msg = error_of(seg({"all": [{"any": conds[:2]}, {"not": {"all": conds[2:]}}]}), max_conditions=3)
    assert "where.all[1].not.all[1]: too many conditions: a segment may have at most 3 (rules.max_conditions)" in msg
    assert parse_segment(seg({"all": conds[:3]}), max_conditions=3).condition_count == 3


def test_default_limit_is_fifty_conditions():
    conds = [{"attr": "fit_score", "op": ">", "value": i} for i in range(51)]
    assert "at most 50" in error_of(seg({"all": conds}))
    assert parse_segment(seg({"all": conds[:50]})).condition_count == 50


def test_yaml_errors_carry_the_line_number(tmp_path):
    path = tmp_path / "seg.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: Lines
            where:
              all:
                - {attr: fit_score, op: ">=", value: 70}
                - any:
                    - {attr: plan, op: in, value: [free, gold]}
            """
        )
    )
    msg = error_of(path)
    assert msg.startswith(f"{path} line 6: where.all[1].any[0].value[1]: 'gold' is not a value of 'plan'")


def test_every_problem_of_a_document_is_listed_at_once_in_document_order(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        textwrap.dedent(
            """\
            name: Many problems
            visibilty: shared
            kind: sometimes
            where:
              all:
                - {attr: fit_scor, op: ">=", value: 70}
                - {attr: fit_score, op: ">=", value: ten}
                - any:
                    - {attr: plan, op: in, value: [free, gold]}
                    - {attr: fit_score, op: ">=", value: 1}
            top: {n: 0, by: clv_predicted}
            """
        )
    )
    with pytest.raises(SegmentDefinitionError) as info:
        parse_segment(path)
    lines = str(info.value).splitlines()
    assert [line.split(": ")[1] for line in lines] == [
        "visibilty",
        "kind",
        "where.all[0].attr",
        "where.all[1].value",
        "where.all[2].any[0].value[1]",
        "top.n",
    ]
    assert all(line.startswith(f"{path} line ") for line in lines)
    assert lines[2].startswith(f"{path} line 6: where.all[0].attr: unknown attribute 'fit_scor'")
    assert info.value.problems == lines
    # One problem: the message is that problem alone, as before.
    assert error_of(seg({"all": [{"attr": "fit_scor", "op": ">=", "value": 1}]})).count("\n") == 0


def test_yaml_syntax_error_and_duplicate_key_are_reported_with_lines():
    assert "<segment> line 3: not valid YAML/JSON: expected ','" in error_of("name: x\nwhere: [unclosed\n")
    assert "<segment> line 3: name: key given twice" in error_of(
        "name: x\nwhere: {attr: fit_score, op: is_null}\nname: y\n"
    )


def test_json_text_and_yaml_dates_are_accepted(tmp_path):
    s = parse_segment('{"name": "j", "where": {"attr": "last_purchase_date", "op": "after", "value": "2025-01-01"}}')
    assert s.where.value == dt.date(2025, 1, 1)
    s = parse_segment("name: y\nwhere: {attr: last_purchase_date, op: after, value: 2025-01-01}\n")
    assert s.where.value == dt.date(2025, 1, 1)
    (tmp_path / "s.json").write_text('{"name": "file", "persona_types": "visitor"}')
    assert parse_segment(tmp_path / "s.json").persona_types == ("visitor",)


def test_missing_file_is_a_clear_error(tmp_path):
    assert "segment file not found" in error_of(tmp_path / "nope.yaml")


@pytest.mark.parametrize("path", sorted(SEGMENTS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_example_segments_validate_and_compile_against_the_feature_catalog(path):
    from segengine.rules import compile_segment, directory_resolver

    compiled = compile_segment(parse_segment(path), "2025-06-30", resolver=directory_resolver(SEGMENTS_DIR))
    assert compiled.sql.startswith("SELECT f.`persona_id`, f.`persona_type`")


def test_required_example_segments_exist():
    names = {p.stem for p in SEGMENTS_DIR.glob("*.yaml")}
    assert {"sales_opportunity", "churn_risk", "top_10_paying_customers", "interested_in_product_x"} <= names
