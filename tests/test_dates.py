"""The one date parser: a real day written YYYY-MM-DD, or a date object; one-line errors."""

from __future__ import annotations

import datetime as dt

import pytest

from segengine.dates import date_problem, parse_date
from segengine.errors import InvalidDate, SegengineError


def test_iso_strings_dates_and_datetimes_give_the_day():
    assert parse_date("2025-06-30") == dt.date(2025, 6, 30)
    assert parse_date(dt.date(2025, 6, 30)) == dt.date(2025, 6, 30)
    assert parse_date(dt.datetime(2025, 6, 30, 23, 59)) == dt.date(2025, 6, 30)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("2025-02-30", "got '2025-02-30' (day is out of range for month)"),
        ("2025-13-01", "got '2025-13-01' (month must be in 1..12)"),
        # fromisoformat takes these; nobody means them on a command line.
        ("20250630", "got '20250630'"),
        ("2025-W26-1", "got '2025-W26-1'"),
        ("30/06/2025", "got '30/06/2025'"),
        ("", "got ''"),
    ],
)
def test_anything_else_is_one_line_naming_field_value_and_form(text, why):
    with pytest.raises(InvalidDate) as err:
        parse_date(text, "--date")
    assert str(err.value) == f"--date: expected a date YYYY-MM-DD, {why}"
    assert isinstance(err.value, SegengineError) and err.value.exit_code == 2
    assert err.value.field == "--date" and err.value.value == text


def test_date_problem_is_none_for_dates():
    assert date_problem("2024-02-29") is None
    assert date_problem("2025-02-29") == "a date YYYY-MM-DD, got '2025-02-29' (day is out of range for month)"


def test_the_rule_compiler_and_the_jobs_use_it():
    import argparse

    from segengine.pipeline.entry import parse_date as job_date
    from segengine.rules.compile import compile_segment

    with pytest.raises(InvalidDate, match=r"^snapshot date: expected a date YYYY-MM-DD, got '2025-02-30'"):
        compile_segment({"name": "all"}, "2025-02-30")
    with pytest.raises(argparse.ArgumentTypeError, match="^expected a date YYYY-MM-DD, got '20250630'$"):
        job_date("20250630")
    assert job_date("2025-06-30") == dt.date(2025, 6, 30)
