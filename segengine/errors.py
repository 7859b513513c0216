"""The small family of exceptions segengine raises.

Every error names the thing it is about (file, row, field, rule path, table,
version) so the CLI can print it as one clear line and exit non-zero.
"""

from __future__ import annotations


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
