"""The feature catalog: one source of truth for every customer attribute.

The features job, the rule compiler, the CLI (``segengine features catalog``) and the
docs all read this list. A test fails if the ``customer_features`` table and the
catalog disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Operators allowed per attribute type (the rule compiler enforces these).
# is_empty / is_not_empty are is_null / is_not_null in the words of the null rule.
EMPTY_OPS = ("is_null", "is_not_null", "is_empty", "is_not_empty")
NUMERIC_OPS = ("=", "!=", "<", "<=", ">", ">=", "between", "not_between", "in", "not_in", *EMPTY_OPS)
STRING_OPS = (
    "=",
    "!=",
    "in",
    "not_in",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    *EMPTY_OPS,
)
BOOLEAN_OPS = ("=", "!=", *EMPTY_OPS)
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
    *EMPTY_OPS,
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


# Keep this list ordered as the table's columns: ``build_features`` selects exactly
# these columns, in this order, cast to these types (a test checks the table).
_CH = ("web", "app", "store", "phone")
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
    # --- RFMT (cycle = the last features.cycle_months months, boundary day included)
    Attribute(
        "recency_days", "integer", "Days since the last purchase in the cycle (null if none)", "days", "order_lines"
    ),
    Attribute("frequency", "integer", "Purchases (orders with a bought line) in the cycle", "count", "order_lines"),
    Attribute(
        "monetary", "double", "Net spend in the cycle (refunds subtracted; may be negative)", "currency", "order_lines"
    ),
    Attribute("tenure_days", "integer", "Days since the first purchase (null if none)", "days", "order_lines"),
    # --- value
    Attribute(
        "avg_basket_value",
        "double",
        "Lifetime net revenue / lifetime purchases (null if none)",
        "currency",
        "order_lines",
    ),
    Attribute(
        "avg_monthly_spend", "double", "Net spend in the cycle / cycle length in months", "currency", "order_lines"
    ),
    Attribute("orders_cycle", "integer", "Purchases in the cycle (same as frequency)", "count", "order_lines"),
    Attribute("revenue_cycle", "double", "Net revenue in the cycle (same as monetary)", "currency", "order_lines"),
    Attribute("orders_lifetime", "integer", "Purchases up to the snapshot date", "count", "order_lines"),
    Attribute(
        "revenue_lifetime",
        "double",
        "Net revenue up to the snapshot date (refunds subtracted)",
        "currency",
        "order_lines",
    ),
    Attribute("distinct_products", "integer", "Distinct products ever bought", "count", "order_lines"),
    Attribute(
        "distinct_categories", "integer", "Distinct product categories ever bought", "count", "order_lines+products"
    ),
    Attribute(
        "favourite_category",
        "string",
        "Category with the highest lifetime spend (ties: alphabetical)",
        "",
        "order_lines+products",
    ),
    Attribute(
        "favourite_brand",
        "string",
        "Brand with the highest lifetime spend (ties: alphabetical)",
        "",
        "order_lines+products",
    ),
    Attribute("first_purchase_date", "date", "Local date of the first purchase", "date", "order_lines"),
    Attribute("last_purchase_date", "date", "Local date of the last purchase", "date", "order_lines"),
    Attribute(
        "days_since_last_purchase", "integer", "Days since the last purchase ever (null if none)", "days", "order_lines"
    ),
    # --- behaviour (events)
    Attribute("days_since_last_visit", "integer", "Days since the last visit event (null if none)", "days", "events"),
    Attribute("visits_30d", "integer", "Sessions with a visit event in the last 30 days", "count", "events"),
    Attribute("time_on_site_30d", "double", "Minutes on site/app in the last 30 days", "minutes", "events"),
    Attribute("email_opens_90d", "integer", "Email opens in the last 90 days", "count", "events"),
    Attribute("email_clicks_90d", "integer", "Email clicks in the last 90 days", "count", "events"),
    # --- profile (personas)
    Attribute("consent_email", "boolean", "Opted in to email (no record = false)", "", "personas"),
    Attribute("consent_sms", "boolean", "Opted in to SMS (no record = false)", "", "personas"),
    Attribute("email", "string", "Email address", "", "personas"),
    Attribute("phone", "string", "Phone number", "", "personas"),
    Attribute("cookie_id", "string", "First-party cookie id", "", "personas"),
    Attribute("age", "integer", "Age in whole years on the snapshot date", "years", "personas"),
    Attribute("country", "string", "ISO 3166-1 alpha-2 country code", "", "personas"),
    Attribute("city", "string", "City", "", "personas"),
    Attribute("gender", "string", "Gender", "", "personas", ("female", "male", "other", "unknown")),
    Attribute("industry", "string", "B2B: industry of the persona's company", "", "personas"),
    Attribute(
        "company_size", "string", "B2B: employees", "", "personas", ("1-10", "11-50", "51-200", "201-1000", "1000+")
    ),
    Attribute("plan", "string", "Subscription plan", "", "personas", ("free", "basic", "pro", "enterprise")),
    Attribute("account_owner", "string", "B2B: sales owner", "", "personas"),
    # --- scores and tiers
    Attribute(
        "engagement_score", "integer", "Recent visits, time on site, email activity and purchase recency", "score 0-100"
    ),
    Attribute("fit_score", "integer", "Closeness to the profile of the top value tier", "score 0-100"),
    Attribute(
        "value_tier",
        "string",
        "Rank of revenue_cycle among customers: top 20% / next 30% / rest (null if not a customer)",
        allowed_values=("top", "middle", "rest"),
    ),
    Attribute(
        "behaviour_state",
        "string",
        "Trend of active days: last 90 days vs the 90 before",
        allowed_values=("active", "declining", "dormant"),
    ),
    Attribute(
        "lifecycle_stage",
        "string",
        "Days since first seen: new <= 90, established <= 730, else long_term",
        allowed_values=("new", "established", "long_term"),
    ),
    # --- more behaviour, value and profile attributes
    Attribute("last_visit_date", "date", "Local date of the last visit event", "date", "events"),
    Attribute("created_date", "date", "Local date the persona was first seen", "date", "personas"),
    Attribute("days_since_created", "integer", "Days since the persona was first seen", "days", "personas"),
    Attribute("preferred_channel", "string", "Channel of most purchases (ties: alphabetical)", "", "order_lines", _CH),
    Attribute(
        "items_cycle", "integer", "Units bought in the cycle (refunded units not subtracted)", "count", "order_lines"
    ),
    Attribute("refunds_lifetime", "integer", "Orders with at least one refunded line", "count", "order_lines"),
    Attribute("refund_amount_lifetime", "double", "Total refunded value (positive)", "currency", "order_lines"),
    Attribute("product_views_30d", "integer", "Product views in the last 30 days", "count", "events"),
    Attribute("add_to_cart_30d", "integer", "Add-to-cart events in the last 30 days", "count", "events"),
    Attribute("logins_30d", "integer", "Logins in the last 30 days", "count", "events"),
    Attribute("feature_uses_30d", "integer", "Product feature uses in the last 30 days (SaaS)", "count", "events"),
    Attribute(
        "email_open_rate_90d",
        "double",
        "Email opens / emails sent in the last 90 days (null if none sent)",
        "ratio 0-1",
        "events",
    ),
    Attribute(
        "active_days_90d", "integer", "Days with a purchase or visit in the last 90 days", "days", "order_lines+events"
    ),
    Attribute(
        "active_days_prev_90d",
        "integer",
        "Days with a purchase or visit in the 90 days before those",
        "days",
        "order_lines+events",
    ),
    Attribute("has_email", "boolean", "Has an email address", "", "personas"),
    Attribute("has_phone", "boolean", "Has a phone number", "", "personas"),
    Attribute("is_b2b", "boolean", "Has a company (industry or company size known)", "", "personas"),
    # --- expansion, support, satisfaction and campaigns (the last three from optional
    # tables: null for everyone when the warehouse lacks the table)
    Attribute(
        "revenue_prev_cycle",
        "double",
        "Net revenue in the cycle before the current one",
        "currency",
        "order_lines",
    ),
    Attribute(
        "expansion_revenue",
        "double",
        "revenue_cycle - revenue_prev_cycle of a customer who bought before the cycle (null otherwise; "
        "negative = contraction)",
        "currency",
        "order_lines",
    ),
    Attribute("tickets_90d", "integer", "Support tickets opened in the last 90 days", "count", "support_tickets"),
    Attribute(
        "open_tickets",
        "integer",
        "Support tickets not closed by the end of the snapshot day",
        "count",
        "support_tickets",
    ),
    Attribute(
        "median_hours_to_close_90d",
        "double",
        "Median hours from opening to closing of the tickets closed in the last 90 days",
        "hours",
        "support_tickets",
    ),
    Attribute("last_csat", "integer", "Score of the latest CSAT answer (1-5)", "score 1-5", "survey_responses"),
    Attribute("last_nps", "integer", "Score of the latest NPS answer (0-10)", "score 0-10", "survey_responses"),
    Attribute(
        "nps_category",
        "string",
        "From the latest NPS answer: promoter 9-10, passive 7-8, detractor 0-6",
        "",
        "survey_responses",
        ("promoter", "passive", "detractor"),
    ),
    Attribute(
        "campaign_clicks_30d", "integer", "Clicks on campaign emails in the last 30 days", "count", "events.campaign_id"
    ),
    Attribute(
        "campaign_conversions_30d",
        "integer",
        "Orders in the last 30 days placed within 7 days after a campaign click",
        "count",
        "events.campaign_id+order_lines",
    ),
    # Model outputs, written as typed nulls by the features job; scoring jobs fill them.
    Attribute("ai_segment", "string", "AI segment name from the RFMT k-means model", source="model"),
    Attribute("ai_segment_distance", "double", "Distance to the AI segment's centroid (scaled RFMT)", source="model"),
    Attribute("b2b_segment", "string", "B2B segment name from the firmographic model", source="model"),
    Attribute("clv_predicted", "double", "Predicted spend in the next cycle", "currency", "model"),
    Attribute("clv_percentile", "double", "Percentile of clv_predicted among customers (0-100)", "percentile", "model"),
    Attribute(
        "purchase_propensity_30d",
        "double",
        "Calibrated probability of a purchase in the next propensity.horizon_days days (default 30); "
        "customers and prospects",
        "probability 0-1",
        "model",
    ),
    Attribute(
        "purchase_propensity_30d_pct",
        "double",
        "Percentile of purchase_propensity_30d among customers and prospects (0-100)",
        "percentile",
        "model",
    ),
    Attribute(
        "churn_risk",
        "double",
        "Calibrated probability of no purchase in the next propensity.churn_days days (default 90); "
        "customers only (null for those who never bought)",
        "probability 0-1",
        "model",
    ),
    Attribute("churn_risk_pct", "double", "Percentile of churn_risk among customers (0-100)", "percentile", "model"),
]

MODEL_COLUMNS = (
    "ai_segment",
    "ai_segment_distance",
    "b2b_segment",
    "clv_predicted",
    "clv_percentile",
    "purchase_propensity_30d",
    "purchase_propensity_30d_pct",
    "churn_risk",
    "churn_risk_pct",
)
# Null in a warehouse without an ``events`` table (unknown, not zero). The attributes of
# source order_lines+events (active days, and so behaviour_state) and the scores that
# weigh visits and email activity are computed from what there is: the order lines.
EVENT_ATTRIBUTES = tuple(a.name for a in ATTRIBUTES if a.source == "events")

CATALOG: dict[str, Attribute] = {a.name: a for a in ATTRIBUTES}


def attribute(name: str) -> Attribute:
    """Look up an attribute; unknown names raise KeyError."""
    return CATALOG[name]


def filterable() -> list[Attribute]:
    """Attributes segment rules may use."""
    return [a for a in ATTRIBUTES if a.filterable]


def spark_schema() -> Any:
    """The Spark schema of ``customer_features`` (every column nullable)."""
    from pyspark.sql import types as T

    by_type = {
        "integer": T.IntegerType(),
        "double": T.DoubleType(),
        "string": T.StringType(),
        "boolean": T.BooleanType(),
        "date": T.DateType(),
        "timestamp": T.TimestampType(),
    }
    return T.StructType([T.StructField(a.name, by_type[a.type], True) for a in ATTRIBUTES])


def as_rows(fmt: str = "table") -> str:
    """Render the catalog as ``table`` (plain text), ``json`` or ``markdown``.

    Args:
        fmt: table | json | markdown.

    Returns:
        The rendered catalog.
    """
    import json

    if fmt == "json":
        return json.dumps(
            [
                {
                    "name": a.name,
                    "type": a.type,
                    "unit": a.unit,
                    "source": a.source,
                    "description": a.description,
                    "allowed_values": list(a.allowed_values) if a.allowed_values else None,
                    "operators": list(a.operators),
                    "filterable": a.filterable,
                }
                for a in ATTRIBUTES
            ],
            indent=2,
        )
    if fmt == "markdown":
        lines = ["| name | type | unit | source | description | allowed values |", "|---|---|---|---|---|---|"]
        for a in ATTRIBUTES:
            allowed = ", ".join(a.allowed_values) if a.allowed_values else ""
            lines.append(f"| `{a.name}` | {a.type} | {a.unit} | {a.source} | {a.description} | {allowed} |")
        return "\n".join(lines)
    if fmt != "table":
        raise ValueError(f"unknown catalog format {fmt!r}: expected table, json or markdown")
    lines = [f"{'name':26s} {'type':8s} {'unit':12s} {'source':22s} description"]
    for a in ATTRIBUTES:
        lines.append(f"{a.name:26s} {a.type:8s} {a.unit:12s} {a.source:22s} {a.description}")
    return "\n".join(lines)
