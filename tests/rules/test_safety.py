"""Property tests: nothing a user writes in a segment document can change the SQL's shape.

(a) names that are not catalog attributes are rejected while parsing, before any SQL exists;
(b) hostile string values (quotes, back-quotes, semicolons, comments, ``${var}``, unicode,
    newlines) give a query whose parsed plan has exactly the skeleton of the same query
    with a benign value, whose string literals hold the value unchanged, and which runs.
"""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from segengine.errors import SegmentDefinitionError
from segengine.features.catalog import CATALOG
from segengine.rules import compile_segment, parse_segment

SNAP = dt.date(2025, 6, 30)

FRAGMENTS = [
    "'",
    '"',
    "`",
    "\\",
    ";",
    "--",
    "/*",
    "*/",
    "\n",
    "\r\n",
    "\x00",
    "${spark.app.name}",
    "\\u0027",
    "' OR 1=1 --",
    "')",
    "é",
    "☃",
    "\U0001f600",
    "\u202e",
]
HOSTILE = (
    st.lists(
        st.one_of(st.sampled_from(FRAGMENTS), st.text(st.characters(codec="utf-8"), max_size=4)), min_size=1, max_size=8
    )
    .map("".join)
    .filter(bool)
)
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(name=HOSTILE, op=st.sampled_from(["=", "in", "contains", ">="]), use_as=st.sampled_from(["attr", "top"]))
def test_unknown_attribute_names_are_rejected_before_any_sql(name, op, use_as):
    assume(name not in CATALOG)
    if use_as == "attr":
        doc = {
            "name": "x",
            "where": {"all": [{"attr": "fit_score", "op": ">", "value": 1}, {"attr": name, "op": op, "value": 1}]},
        }
        path = "where.all[1].attr"
    else:
        doc = {"name": "x", "top": {"n": 3, "by": name}}
        path = "top.by"
    with pytest.raises(SegmentDefinitionError, match=re.escape(f"{path}: unknown attribute")):
        parse_segment(doc)


# Every kind of condition that carries user text, as a function of that text.
TEMPLATES = {
    "attr_eq": lambda v: {"attr": "email", "op": "=", "value": v},
    "attr_ne": lambda v: {"attr": "favourite_category", "op": "!=", "value": v},
    "attr_in": lambda v: {"attr": "email", "op": "in", "value": [v, "x@y.z"]},
    "attr_not_in": lambda v: {"attr": "ai_segment", "op": "not_in", "value": [v]},
    "contains": lambda v: {"attr": "email", "op": "contains", "value": v},
    "not_contains": lambda v: {"attr": "email", "op": "not_contains", "value": v},
    "starts_with": lambda v: {"attr": "favourite_category", "op": "starts_with", "value": v},
    "ends_with": lambda v: {"attr": "email", "op": "ends_with", "value": v},
    "purchased": lambda v: {"purchased": {"category": v, "brand": [v, "Acme"]}, "within_days": 30},
    "did": lambda v: {"did": {"event": "product_view", "product": v}, "min_count": 1},
    "did_not": lambda v: {"did_not": {"event": "add_to_cart", "product": [v]}},
    "in_ai_segment": lambda v: {"in_ai_segment": [v, "Champions"]},
    "recommended": lambda v: {"recommended": {"product": v}, "recommender": v, "min_score": 10},
}


def _skeleton(node):
    """The parsed plan's JSON with literal values blanked: its shape only."""
    if isinstance(node, dict):
        if node.get("class", "").endswith(".Literal"):
            return {**node, "value": "?"}
        # exprId numbers are fresh per parse; they say nothing about shape.
        return {k: _skeleton(v) for k, v in node.items() if k != "exprId"}
    if isinstance(node, list):
        return [_skeleton(v) for v in node]
    return node


def _string_literals(node, out):
    if isinstance(node, dict):
        if node.get("class", "").endswith(".Literal") and node.get("dataType") == "string":
            out.append(node.get("value"))
        for v in node.values():
            _string_literals(v, out)
    elif isinstance(node, list):
        for v in node:
            _string_literals(v, out)
    return out


def _plan(spark, sql):
    return json.loads(spark._jsparkSession.sessionState().sqlParser().parsePlan(sql).toJSON())


def _sql(rule_views, template, value):
    doc = {
        "name": "safety",
        "persona_types": ["customer", "prospect"],
        "where": {"all": [{"attr": "fit_score", "op": ">", "value": 1}, template(value)]},
    }
    return compile_segment(doc, SNAP, views=rule_views).sql


@pytest.fixture(scope="module")
def benign(spark, rule_views):
    out = {}
    for name, template in TEMPLATES.items():
        plan = _plan(spark, _sql(rule_views, template, "benign"))
        out[name] = (_skeleton(plan), _string_literals(plan, []).count("benign"))
    return out


@SETTINGS
@given(value=HOSTILE, kind=st.sampled_from(sorted(TEMPLATES)))
def test_hostile_values_never_change_the_query_shape_and_always_run(spark, rule_views, benign, value, kind):
    assume(value != "benign")
    sql = _sql(rule_views, TEMPLATES[kind], value)
    plan = _plan(spark, sql)
    skeleton, n_values = benign[kind]
    assert _skeleton(plan) == skeleton
    assert _string_literals(plan, []).count(value) == n_values  # the value arrived intact, as data
    spark.sql(sql)  # parses and analyses against the views: never a syntax or analysis error


def test_every_hostile_fragment_in_every_condition_kind_runs(spark, rule_views):
    # One query holding every fragment in every kind of condition, executed end to end.
    value = "".join(FRAGMENTS)
    doc = {"name": "all hostile", "where": {"any": [t(value) for t in TEMPLATES.values()]}}
    rows = spark.sql(compile_segment(doc, SNAP, views=rule_views).sql).collect()
    # did_not on a product nobody touched matches every persona
    assert sorted(r["persona_id"] for r in rows) == ["p1", "p2", "p3", "p4", "p5"]


def test_hostile_value_matches_only_the_exact_text(spark, rule_views, select_ids):
    # p3's email contains a quote; an injection attempt must match nothing.
    assert select_ids({"where": {"attr": "email", "op": "=", "value": "x' OR '1'='1"}}) == []
    assert select_ids({"where": {"attr": "email", "op": "=", "value": "o'brien@z.com"}}) == ["p3"]
