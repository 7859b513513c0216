"""The feature catalog: one source of truth for every customer attribute.

The features job, the rule compiler, the CLI (``segengine features catalog``) and the
docs all read this list. A test fails if the ``customer_features`` table and the
catalog disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

# Operators allowed per attribute type (the rule compiler enforces these).
NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=", "between", "not_between", "in", "not_in", "is_null", "is_not_null")
STRING_OPS = (
    "=",
    "!=",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "is_null",
    "is_not_null",
)
BOOLEAN_OPS = ("=", "!=", "is_null", "is_not_null")
DATE_OPS = (
    "=",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "between",
    "not_between",
    "before",
    "after",
    "within_last_days",
    "more_than_days_ago",
    "is_null",
    "is_not_null",
)
OPERATORS_BY_TYPE = {
    "integer": NUMERIC_OPS,
    "double": NUMERIC_OPS,
    "string": STRING_OPS,
    "boolean": BOOLEAN_OPS,
    "date": DATE_OPS,
    "timestamp": DATE_OPS,
}
SPARK_TYPES = {
    "integer": "int",
    "double": "double",
    "string": "string",
    "boolean": "boolean",
    "date": "date",
    "timestamp": "timestamp",
}


@dataclass(frozen=True)
class Attribute:
    """One column of ``customer_features``.

    Attributes:
        name: column name (also the name used in segment rules).
        type: integer | double | string | boolean | date | timestamp.
        description: what it means, in a marketer's words.
        unit: days, count, currency, score 0-100, … ("" if none).
        source: where it comes from (personas, order_lines, events, model, derived).
        allowed_values: for categorical strings, the closed set of values.
        filterable: False for bookkeeping columns rules may not use.
    """

    name: str
    type: str
    description: str
    unit: str = ""
    source: str = "derived"
    allowed_values: tuple[str, ...] | None = None
    filterable: bool = True

    @property
    def operators(self) -> tuple[str, ...]:
        return OPERATORS_BY_TYPE[self.type] if self.filterable else ()

    @property
    def spark_type(self) -> str:
        return SPARK_TYPES[self.type]


# The features helper module fills this list; keep it ordered as the table's columns.
ATTRIBUTES: list[Attribute] = [
    Attribute("persona_id", "string", "Persona identifier", source="personas"),
    Attribute("snapshot_date", "date", "Date the features describe (data up to the end of this day)", filterable=False),
    Attribute(
        "persona_type",
        "string",
        "customer (>=1 purchase), prospect (no purchase, has email or phone) or visitor (cookie only)",
        source="derived",
        allowed_values=("customer", "prospect", "visitor"),
    ),
    Attribute("recency_days", "integer", "Days since the last purchase in the cycle (null if none)", "days", "order_lines"),
    Attribute("frequency", "integer", "Purchases (orders) in the cycle", "count", "order_lines"),
    Attribute("monetary", "double", "Net spend in the cycle (refunds subtracted)", "currency", "order_lines"),
    Attribute("tenure_days", "integer", "Days since the first purchase (null if none)", "days", "order_lines"),
    # Model outputs, null until the scoring jobs fill them for the snapshot.
    Attribute("ai_segment", "string", "AI segment name from the RFMT k-means model", source="model"),
    Attribute("ai_segment_distance", "double", "Distance to the AI segment's centroid (scaled RFMT)", source="model"),
    Attribute("clv_predicted", "double", "Predicted spend in the next cycle", "currency", "model"),
    Attribute("clv_percentile", "double", "Percentile of clv_predicted among customers (0-100)", "percentile", "model"),
]

CATALOG: dict[str, Attribute] = {a.name: a for a in ATTRIBUTES}


def attribute(name: str) -> Attribute:
    """Look up an attribute; unknown names raise KeyError."""
    return CATALOG[name]


def filterable() -> list[Attribute]:
    """Attributes segment rules may use."""
    return [a for a in ATTRIBUTES if a.filterable]
