"""The small family of exceptions segengine raises.

Every error names the thing it is about (file, row, field, rule path, table,
version) so the CLI can print it as one clear line and exit non-zero.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SegengineError(Exception):
    """Base class: the CLI turns any subclass into one line and exit code 2."""

    exit_code = 2


class ConfigError(SegengineError):
    """A configuration key is unknown, has the wrong type or an invalid value."""


class EnvironmentProblem(SegengineError):
    """The machine lacks something segengine needs (Java 17, a package, …)."""


class TableNotFound(SegengineError):
    """A Delta table was asked for that does not exist at its path."""


class TableFeatureUnsupported(SegengineError):
    """A Delta table uses a feature the active backend cannot honour."""


class SchemaMismatch(SegengineError):
    """Data written to a table does not match the table's schema."""


class WriteConflict(SegengineError):
    """A concurrent writer committed first and the write could not be retried."""


class ConstraintViolation(SegengineError):
    """A write breaks a rule the table declares: a CHECK constraint, a column invariant,
    NOT NULL, a generated column's expression, or ``delta.appendOnly``."""


class DataContractError(SegengineError):
    """Input data does not satisfy the bronze data contract."""


class SegmentDefinitionError(SegengineError):
    """A segment document is invalid; the message names the exact place."""


class AudienceError(SegengineError):
    """An audience operation is not allowed (locked, not visible, unknown, …)."""


class ModelError(SegengineError):
    """A model is missing, unregistered or incompatible with the feature catalog."""


class MissingInput(SegengineError):
    """A job was asked to act on input data that does not exist (a feature snapshot, bronze
    data for the date): it refuses instead of treating the missing input as empty."""


class FeatureSnapshotMissing(MissingInput):
    """``customer_features`` has no partition for the snapshot date asked for."""

    def __init__(self, message: str, snapshot_date: object = None, latest: object = None):
        super().__init__(message)
        self.snapshot_date = snapshot_date
        self.latest = latest


class LargeAudienceChange(AudienceError):
    """A refresh would remove more than ``audiences.max_removed_share`` of an audience's
    members; nothing was written for it (``--allow-large-change`` lets it through).

    ``blocked`` lists each refused audience (``audience``, ``audience_id``, ``size``,
    ``removed``, ``share``); ``summary`` is what a refresh of several audiences did for
    the others.
    """

    def __init__(self, message: str, blocked: list[dict] | None = None, summary: dict | None = None):
        super().__init__(message)
        self.blocked = list(blocked or [])
        self.summary = summary


class InvalidDate(SegengineError):
    """A date typed by a person is not a real day in the form YYYY-MM-DD.

    ``field`` names where it came from (``--date``, ``snapshot date``); ``value`` is what
    was given.
    """

    def __init__(self, message: str, field: str | None = None, value: object = None):
        super().__init__(message)
        self.field = field
        self.value = value


class StepFailed(SegengineError):
    """A pipeline step failed (its ``runs`` row holds the cause); exit code 1."""

    exit_code = 1


class RunLocked(SegengineError):
    """Another run of the same pipeline and date holds its lock (``run_locks``); exit code 3."""

    exit_code = 3


def did_you_mean(word: object, candidates: Iterable[str], n: int = 3) -> str:
    """`` (did you mean a, b?)`` for the known names closest to ``word``, or an empty string.

    Args:
        word: the name that was not found.
        candidates: the names that exist.
        n: at most this many suggestions (``difflib.get_close_matches``).
    """
    if not isinstance(word, str):
        return ""
    close = difflib.get_close_matches(word, sorted(set(candidates)), n=n, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


class UnknownName(KeyError):
    """A name a resolver does not know (an ``in_segment`` segment); ``candidates`` are the
    names it does know, for a "did you mean". A ``KeyError``, as resolvers raise."""

    def __init__(self, name: str, candidates: Iterable[str] = ()):
        super().__init__(name)
        self.name = name
        self.candidates = tuple(candidates)


class UnknownAudience(AudienceError):
    """No audience of that name or id is visible; ``candidates`` are the visible names."""

    def __init__(self, message: str, name: str = "", candidates: Iterable[str] = ()):
        super().__init__(message)
        self.name = name
        self.candidates = tuple(candidates)


class UnsafeStudioBind(SegengineError):
    """``segengine studio`` was asked to listen beyond this machine without an auth setting."""
