"""Hand-written bronze data for the feature tests (the expected answers are obvious).

Snapshot 2025-06-30, cycle 6 months -> cycle 2024-12-30 .. 2025-06-30 inclusive.
"""

from __future__ import annotations

import datetime as dt

import pytest

SNAPSHOT = dt.date(2025, 6, 30)


def ts(text: str) -> dt.datetime:
    """A UTC instant as a naive datetime (the test session's time zone is UTC)."""
    return dt.datetime.fromisoformat(text)


PRODUCTS = [
    ("P1", "Runner", "Shoes", "Acme", 50.0),
    ("P2", "Tote", "Bags", "Bolt", 20.0),
    ("P3", "Sock", "Shoes", "Bolt", 10.0),
]

# persona_id, email, phone, cookie_id, created_at, country, city, birth_date, gender,
# consent_email, consent_sms, industry, company_size, account_owner, plan
PERSONAS = [
    (
        "c1",
        "c1@x.com",
        None,
        "ck-c1",
        ts("2024-01-10 09:00:00"),
        "DE",
        "Berlin",
        dt.date(1990, 6, 30),
        "female",
        True,
        False,
        None,
        None,
        None,
        "pro",
    ),
    (
        "c2",
        "c2@x.com",
        None,
        None,
        ts("2024-12-01 09:00:00"),
        "FR",
        "Paris",
        dt.date(1985, 7, 1),
        "male",
        False,
        True,
        "Retail",
        "11-50",
        "ann",
        "basic",
    ),
    (
        "r1",
        None,
        "+4912345",
        None,
        ts("2025-01-01 00:00:00"),
        "DE",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    ),
    ("f1", None, None, "ck-f1", ts("2025-05-01 00:00:00"), None, None, None, None, None, None, None, None, None, None),
    ("e1", None, None, "ck-e1", ts("2025-06-01 00:00:00"), None, None, None, None, None, None, None, None, None, None),
    ("n1", "n1@x.com", "", None, ts("2022-01-01 00:00:00"), None, None, None, None, None, None, None, None, None, None),
    (
        "late",
        "late@x.com",
        None,
        None,
        ts("2025-07-05 00:00:00"),
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        None,
    ),
]

# order_id, line_no, persona_id, order_ts, channel, product_id, quantity, unit_price
ORDER_LINES = [
    ("O1", 1, "c1", ts("2025-06-20 10:00:00"), "web", "P1", 2, 50.0),
    ("O2", 1, "c1", ts("2025-01-15 10:00:00"), "app", "P2", 1, 20.0),
    ("O3", 1, "c1", ts("2024-06-01 10:00:00"), "web", "P3", 3, 10.0),
    ("R1", 1, "c1", ts("2025-06-25 10:00:00"), "web", "P2", -1, 20.0),
    # c2: one purchase exactly on the cycle's first day, one the day before.
    ("O4", 1, "c2", ts("2024-12-30 12:00:00"), "store", "P2", 1, 20.0),
    ("O5", 1, "c2", ts("2024-12-29 23:00:00"), "store", "P2", 1, 20.0),
    # r1: a refund only.
    ("R2", 1, "r1", ts("2025-03-01 10:00:00"), "web", "P1", -1, 50.0),
    # f1: only a future order (after the end of the snapshot day).
    ("O6", 1, "f1", ts("2025-07-01 00:30:00"), "web", "P1", 1, 50.0),
]

# event_id, persona_id, cookie_id, event_ts, event_type, product_id, session_id, duration_s
EVENTS = [
    ("E1", None, "ck-e1", ts("2025-06-29 10:00:00"), "page_view", None, "s1", 120.0),
    ("E2", None, "ck-e1", ts("2025-06-29 10:02:00"), "product_view", "P1", "s1", 60.0),
    ("E3", None, "ck-e1", ts("2025-06-10 10:00:00"), "page_view", None, "s2", 300.0),
    ("E4", None, "ck-e1", ts("2025-07-02 10:00:00"), "page_view", None, "s3", 999.0),  # future
    ("E5", "c1", None, ts("2025-06-28 08:00:00"), "email_sent", None, None, None),
    ("E6", "c1", None, ts("2025-06-28 09:00:00"), "email_open", None, None, None),
    ("E7", "c1", None, ts("2025-06-28 09:01:00"), "email_click", None, None, None),
    ("E8", "c1", None, ts("2025-04-01 09:00:00"), "login", None, None, None),  # outside 30 days
    ("E9", None, "unknown-cookie", ts("2025-06-29 10:00:00"), "page_view", None, "s9", 10.0),
]


def pad_rows(rows, width):
    """Rows written before the contract's optional trailing columns (events.campaign_id): null-padded."""
    return [tuple(r) + (None,) * (width - len(r)) for r in rows]


# ticket_id, persona_id, opened_at, closed_at, channel, priority, category, status
SUPPORT_TICKETS = [
    ("T1", "c1", ts("2025-06-01 10:00:00"), ts("2025-06-02 16:00:00"), "email", "normal", "billing", "closed"),
    ("T2", "c1", ts("2025-06-29 10:00:00"), None, "chat", "high", "product", "open"),
]
# response_id, persona_id, answered_at, kind, score
SURVEY_RESPONSES = [
    ("A1", "c1", ts("2025-06-03 10:00:00"), "csat", 4),
    ("A2", "c1", ts("2025-05-01 10:00:00"), "nps", 9),
]


@pytest.fixture(scope="session")
def bronze(spark):
    """The bronze DataFrames above, with the contract's schemas."""
    from pyspark.sql import functions as F

    from segengine.contract import spark_schema

    def frame(name, rows):
        schema = spark_schema(name)
        if name == "events":
            raw = [f for f in schema.fields if f.name != "event_date"]
            from pyspark.sql.types import StructType

            rows = pad_rows(rows, len(raw))
            return spark.createDataFrame(rows, StructType(raw)).withColumn("event_date", F.to_date("event_ts"))
        return spark.createDataFrame(rows, schema)

    return {
        "personas": frame("personas", PERSONAS),
        "products": frame("products", PRODUCTS),
        "order_lines": frame("order_lines", ORDER_LINES),
        "events": frame("events", EVENTS),
        "support_tickets": frame("support_tickets", SUPPORT_TICKETS),
        "survey_responses": frame("survey_responses", SURVEY_RESPONSES),
    }


def features(spark, bronze, fconf, snapshot=SNAPSHOT):
    """Run the pure feature assembly on the bronze frames."""
    from segengine.features.build import assemble_features
    from segengine.features.windows import session_timezone

    return assemble_features(
        bronze["personas"],
        bronze["order_lines"],
        bronze["products"],
        bronze["events"],
        snapshot,
        fconf,
        session_timezone(spark),
        support_tickets=bronze.get("support_tickets"),
        survey_responses=bronze.get("survey_responses"),
    )


def by_persona(df) -> dict:
    """Collect a tiny result as {persona_id: row dict}."""
    return {r["persona_id"]: r.asDict() for r in df.collect()}


@pytest.fixture(scope="session")
def feats(spark, bronze, base_config):
    """The features of the hand-written data, computed once per test session and held in memory."""
    df = features(spark, bronze, base_config.features)
    return spark.createDataFrame(df.collect(), df.schema).cache()


@pytest.fixture(scope="session")
def rows(feats) -> dict:
    """``feats`` as {persona_id: row dict}."""
    return by_persona(feats)


@pytest.fixture(scope="session")
def generated_config(generated_bronze):
    """The config of the session's generated bronze warehouse (see the top-level conftest)."""
    return generated_bronze[0]


@pytest.fixture(scope="session")
def generated_lake(generated_bronze):
    """The Lake of the session's generated bronze warehouse (read-only here)."""
    return generated_bronze[1]


@pytest.fixture(scope="session")
def generated(spark, generated_lake, generated_config):
    """The full recompute of the generated data for the generator's last date, held in memory."""
    from segengine.features import build_features

    end = dt.date.fromisoformat(generated_config.generator.end_date)
    df = build_features(spark, generated_lake, generated_config, end)
    return spark.createDataFrame(df.collect(), df.schema).cache()
