"""``literal()`` and the expression tree: exact rendering, and Spark reads every literal back."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segengine.rules import literal
from segengine.rules.sql import BinOp, Col, Func, Lit, quote_identifier


@pytest.mark.parametrize(
    ("value", "sql"),
    [
        (None, "NULL"),
        (True, "TRUE"),
        (False, "FALSE"),
        (70, "70"),
        (-3, "-3"),
        (2**31, "2147483648L"),
        (0.5, "0.5D"),
        (-1e-05, "-1e-05D"),
        (1e20, "1e+20D"),
        ("plain", "'plain'"),
        ("it's", "'it\\'s'"),
        ("back\\slash", "'back\\\\slash'"),
        ("two\nlines\t", "'two\\u000Alines\\u0009'"),
        ("x'); DROP TABLE t; --", "'x\\'); DROP TABLE t; --'"),
        ("Café ☕", "'Café ☕'"),
        ("\u2028", "'\\u2028'"),
        ("\x00", "'\\u0000'"),
        ("${spark.app.name}", "'\\u0024{spark.app.name}'"),  # no variable substitution
        ("\U0001f600", "'\U0001f600'"),
        ("\U000e0001", "'\\uDB40\\uDC01'"),  # a non-printable code point above the BMP: surrogate pair
        (dt.date(2025, 6, 30), "DATE'2025-06-30'"),
        (dt.datetime(2025, 6, 30, 12, 1, 2), "TIMESTAMP'2025-06-30 12:01:02.000000'"),
    ],
)
def test_literal_renders_typed_escaped_sql(value, sql):
    assert literal(value) == sql


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), 2**63])
def test_literal_refuses_values_spark_cannot_represent(bad):
    with pytest.raises(ValueError):
        literal(bad)


def test_literal_refuses_unknown_types():
    with pytest.raises(TypeError):
        literal(object())


def test_identifiers_are_back_quoted_with_back_quotes_doubled():
    assert quote_identifier("a`b") == "`a``b`"
    assert Col("fit_score", "f").sql() == "f.`fit_score`"
    assert BinOp(">=", Col("x"), Lit("'")).sql() == "`x` >= '\\''"


def test_expression_tree_refuses_operators_and_functions_outside_its_closed_sets():
    with pytest.raises(AssertionError):
        BinOp("OR 1=1 --", Col("x"), Lit(1))
    with pytest.raises(AssertionError):
        Func("reflect", (Lit("java.lang.Runtime"),))
    with pytest.raises(AssertionError):
        Col("x", "f; DROP")


# Fragments that break naive quoting, mixed with arbitrary (valid UTF-8) text.
HOSTILE_FRAGMENTS = [
    "'",
    '"',
    "`",
    "\\",
    ";",
    "--",
    "/*",
    "*/",
    "\n",
    "\r",
    "\t",
    "\x00",
    "${x}",
    "\\u0027",
    "%",
    "_",
    "''",
]
HOSTILE = st.lists(
    st.one_of(st.sampled_from(HOSTILE_FRAGMENTS), st.text(st.characters(codec="utf-8"), max_size=4)), max_size=8
).map("".join)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(HOSTILE, min_size=1, max_size=5))
def test_spark_reads_every_string_literal_back_exactly(spark, values):
    row = spark.sql("SELECT " + ", ".join(f"{literal(v)} AS c{i}" for i, v in enumerate(values))).collect()[0]
    assert list(row) == values


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    number=st.one_of(
        st.integers(min_value=-(2**63), max_value=2**63 - 1),
        st.floats(allow_nan=False, allow_infinity=False),
    )
)
def test_spark_reads_every_number_literal_back_exactly(spark, number):
    assert spark.sql(f"SELECT {literal(number)} AS v").collect()[0]["v"] == number
