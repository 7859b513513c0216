"""The one parser of dates given by a person: the CLI, the jobs, the rule compiler and the
feature snapshots all read a date through :func:`parse_date`.

Only ``YYYY-MM-DD`` of a real day is a date (``datetime.date.fromisoformat`` also takes
``20250630`` and ``2025-W26-1``, which nobody means on a command line). ``date`` and
``datetime`` objects pass through, so library calls accept either a date or its ISO string.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from segengine.errors import InvalidDate

DATE_FORM = "YYYY-MM-DD"
_ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def date_problem(value: Any) -> str | None:
    """Why ``value`` is not a date: None when it is one, else the words after "expected".

    Args:
        value: a ``date``, ``datetime`` or string.

    Returns:
        None, or e.g. ``"a date YYYY-MM-DD, got '2025-02-30' (day is out of range for month)"``.
    """
    if isinstance(value, dt.date):
        return None
    if isinstance(value, str) and _ISO_DAY.match(value.strip()):
        try:
            dt.date.fromisoformat(value.strip())
            return None
        except ValueError as exc:
            return f"a date {DATE_FORM}, got {value!r} ({exc})"
    return f"a date {DATE_FORM}, got {value!r}"


def parse_date(value: dt.date | dt.datetime | str, field: str = "date") -> dt.date:
    """``value`` as a ``datetime.date``; a ``datetime`` gives its date.

    Args:
        value: a date, a datetime, or a string ``YYYY-MM-DD``.
        field: what the value is, for the message (``--date``, ``snapshot date``).

    Returns:
        The day.

    Raises:
        InvalidDate: one line naming ``field``, the value and the form expected, e.g.
            ``--date: expected a date YYYY-MM-DD, got '2025-02-30' (day is out of range for month)``.
    """
    problem = date_problem(value)
    if problem is not None:
        raise InvalidDate(f"{field}: expected {problem}", field, value)
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(value.strip())
