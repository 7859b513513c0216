"""The bronze data contract: what ingest accepts, column by column.

Raw files (CSV, JSON lines, Parquet) are validated against these specs. A row that
cannot be parsed, misses a required key or holds an impossible value goes to the
``quarantine`` table with the file, row number and reason; nothing is dropped.

Orders are delivered as denormalised order lines (one row per product in an order,
with the order's persona, timestamp and channel repeated), which is what shop
exports produce and saves a 20M-row join in every feature run. ``orders`` is the
view of those lines grouped by ``order_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.lake import Lake

EVENT_TYPES = (
    "page_view",
    "product_view",
    "add_to_cart",
    "search",
    "login",
    "feature_use",
    "email_sent",
    "email_open",
    "email_click",
    "app_open",
)
CHANNELS = ("web", "app", "store", "phone")
TICKET_CHANNELS = ("email", "phone", "chat", "web")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
TICKET_CATEGORIES = ("billing", "delivery", "product", "account", "technical", "other")
TICKET_STATUSES = ("open", "pending", "solved", "closed")
SURVEY_KINDS = ("csat", "nps")
# Score range per survey kind (both ends included): CSAT 1-5, NPS 0-10.
SURVEY_RANGES = {"csat": (1, 5), "nps": (0, 10)}
COMPANY_SIZES = ("1-10", "11-50", "51-200", "201-1000", "1000+")
PLANS = ("free", "basic", "pro", "enterprise")
GENDERS = ("female", "male", "other", "unknown")


@dataclass(frozen=True)
class ColumnSpec:
    """One column of a bronze table."""

    name: str
    type: str  # Spark SQL type name
    required: bool = False
    description: str = ""
    allowed: tuple[str, ...] | None = None  # for strings: the only accepted values
    min_value: float | None = None  # for numbers: the smallest accepted value
    nonzero: bool = False  # for numbers: 0 is impossible (quantity)
    pattern: str | None = None  # Java regex a string must match


@dataclass(frozen=True)
class TableContract:
    """A bronze table: its columns and its key."""

    name: str
    columns: tuple[ColumnSpec, ...]
    key: tuple[str, ...]
    description: str = ""
    # At least one of these must be present (e.g. persona_id or cookie_id on events).
    one_of: tuple[str, ...] = field(default_factory=tuple)
    # Derived columns added on ingest (name -> Spark SQL expression over the columns).
    derived: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    # A warehouse may have no such table (e.g. a shop with orders but no web events):
    # readers get an empty frame of this schema (:func:`read_bronze`).
    optional: bool = False
    # Row checks across columns: (Spark SQL condition over the typed columns that is
    # true for a bad row, reason). Written here, never from user input.
    checks: tuple[tuple[str, str], ...] = field(default_factory=tuple)

    def column(self, name: str) -> ColumnSpec:
        for col in self.columns:
            if col.name == name:
                return col
        raise KeyError(name)

    @property
    def ddl(self) -> str:
        """The Spark DDL of the raw columns, e.g. for a CSV reader's schema."""
        return ", ".join(f"`{c.name}` {c.type}" for c in self.columns)


EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"

CONTRACTS: dict[str, TableContract] = {
    c.name: c
    for c in [
        TableContract(
            "personas",
            (
                ColumnSpec("persona_id", "string", True, "Stable id of a person or company contact"),
                ColumnSpec(
                    "email", "string", description="Email address (lower-cased on ingest)", pattern=EMAIL_PATTERN
                ),
                ColumnSpec("phone", "string", description="Phone number, E.164 preferred"),
                ColumnSpec("cookie_id", "string", description="First-party cookie of an anonymous visitor"),
                ColumnSpec("created_at", "timestamp", True, "When the persona was first seen"),
                ColumnSpec("country", "string", description="ISO 3166-1 alpha-2 country code"),
                ColumnSpec("city", "string"),
                ColumnSpec("birth_date", "date"),
                ColumnSpec("gender", "string", allowed=GENDERS),
                ColumnSpec("consent_email", "boolean", description="Opted in to email"),
                ColumnSpec("consent_sms", "boolean", description="Opted in to SMS"),
                ColumnSpec("industry", "string", description="B2B: industry of the persona's company"),
                ColumnSpec("company_size", "string", allowed=COMPANY_SIZES),
                ColumnSpec("account_owner", "string", description="B2B: sales owner"),
                ColumnSpec("plan", "string", allowed=PLANS),
            ),
            key=("persona_id",),
            description="People, B2B contacts and anonymous visitors",
        ),
        TableContract(
            "products",
            (
                ColumnSpec("product_id", "string", True),
                ColumnSpec("name", "string"),
                ColumnSpec("category", "string", True),
                ColumnSpec("brand", "string"),
                ColumnSpec("price", "double", True, "List price", min_value=0.0),
            ),
            key=("product_id",),
            description="Product catalogue",
        ),
        TableContract(
            "order_lines",
            (
                ColumnSpec("order_id", "string", True),
                ColumnSpec("line_no", "int", True, min_value=1),
                ColumnSpec("persona_id", "string", True),
                ColumnSpec("order_ts", "timestamp", True),
                ColumnSpec("channel", "string", allowed=CHANNELS),
                ColumnSpec("product_id", "string", True),
                ColumnSpec("quantity", "int", True, "Units; negative for a refund", nonzero=True),
                ColumnSpec("unit_price", "double", True, "Price paid per unit", min_value=0.0),
            ),
            key=("order_id", "line_no"),
            description="Order lines (denormalised orders); refunds are negative quantities",
        ),
        TableContract(
            "events",
            (
                ColumnSpec("event_id", "string", True),
                ColumnSpec("persona_id", "string"),
                ColumnSpec("cookie_id", "string"),
                ColumnSpec("event_ts", "timestamp", True),
                ColumnSpec("event_type", "string", True, allowed=EVENT_TYPES),
                ColumnSpec("product_id", "string"),
                ColumnSpec("session_id", "string"),
                ColumnSpec("duration_s", "double", min_value=0.0),
                ColumnSpec("campaign_id", "string", description="Campaign of an email event (optional)"),
            ),
            key=("event_id",),
            description="Web, app and email events of known personas or anonymous cookies",
            one_of=("persona_id", "cookie_id"),
            derived=(("event_date", "to_date(event_ts)"),),
            optional=True,
        ),
        TableContract(
            "support_tickets",
            (
                ColumnSpec("ticket_id", "string", True),
                ColumnSpec("persona_id", "string", True),
                ColumnSpec("opened_at", "timestamp", True),
                ColumnSpec("closed_at", "timestamp", description="When the ticket was closed (null while open)"),
                ColumnSpec("channel", "string", allowed=TICKET_CHANNELS),
                ColumnSpec("priority", "string", allowed=TICKET_PRIORITIES),
                ColumnSpec("category", "string", allowed=TICKET_CATEGORIES),
                ColumnSpec("status", "string", allowed=TICKET_STATUSES),
            ),
            key=("ticket_id",),
            description="Support tickets of known personas (optional)",
            checks=(("closed_at < opened_at", "closed_at is before opened_at"),),
            optional=True,
        ),
        TableContract(
            "survey_responses",
            (
                ColumnSpec("response_id", "string", True),
                ColumnSpec("persona_id", "string", True),
                ColumnSpec("answered_at", "timestamp", True),
                ColumnSpec("kind", "string", True, "csat (score 1-5) or nps (score 0-10)", allowed=SURVEY_KINDS),
                ColumnSpec("score", "int", True, "The answer, in the kind's range", min_value=0),
            ),
            key=("response_id",),
            description="CSAT and NPS survey answers (optional)",
            checks=tuple(
                (
                    f"kind = '{kind}' AND (score < {lo} OR score > {hi})",
                    f"score is outside {lo}-{hi} for kind {kind}",
                )
                for kind, (lo, hi) in SURVEY_RANGES.items()
            ),
            optional=True,
        ),
    ]
}


def contract(name: str) -> TableContract:
    """The contract of a bronze table."""
    try:
        return CONTRACTS[name]
    except KeyError:
        from segengine.errors import DataContractError

        raise DataContractError(f"no data contract for table {name!r}; known: {', '.join(CONTRACTS)}") from None


def spark_schema(name: str) -> Any:
    """The bronze Spark schema (raw columns plus derived ones)."""
    from pyspark.sql.types import StructType, _parse_datatype_string

    tc = contract(name)
    schema = _parse_datatype_string(tc.ddl)
    assert isinstance(schema, StructType)
    for col_name, _expr in tc.derived:
        if col_name == "event_date":
            from pyspark.sql.types import DateType

            schema = schema.add(col_name, DateType())
    return schema


def optional_tables() -> tuple[str, ...]:
    """The bronze tables a warehouse may lack (``events``, ``support_tickets``, ``survey_responses``)."""
    return tuple(name for name, tc in CONTRACTS.items() if tc.optional)


def empty_bronze(spark: SparkSession, name: str) -> Any:
    """An empty DataFrame with the bronze schema of ``name`` (raw and derived columns)."""
    return spark.createDataFrame([], spark_schema(name))


def read_bronze(lake: Lake, name: str, **kwargs: Any) -> Any:
    """Read a bronze table; an optional one the warehouse lacks reads as empty.

    The one place that decides what a missing optional input means: a warehouse without
    ``events`` (orders only) reads them as an empty frame of the contract schema, so every
    reader goes on and the features that need them come out null. A required table that
    is missing stays an error (the lake's "no Delta table at ...").

    Args:
        lake: the :class:`~segengine.lake.Lake`.
        name: the bronze table.
        **kwargs: passed to ``lake.read`` (``version``, ``partitions``, ``where``).

    Returns:
        The DataFrame.
    """
    if contract(name).optional and not lake.exists(name):
        return empty_bronze(lake.spark, name)
    return lake.read(name, **kwargs)
