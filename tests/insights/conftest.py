"""Hand-made customer_features / order_lines partitions for the insights tests."""

from __future__ import annotations

import datetime as dt

import pytest

# The customer_features columns insights read, with their Spark types (agreed names).
FEATURE_TYPES = {
    "persona_id": "string",
    "snapshot_date": "date",
    "persona_type": "string",
    "recency_days": "int",
    "frequency": "int",
    "monetary": "double",
    "tenure_days": "int",
    "avg_basket_value": "double",
    "orders_cycle": "int",
    "revenue_cycle": "double",
    "orders_lifetime": "int",
    "revenue_lifetime": "double",
    "first_purchase_date": "date",
    "last_purchase_date": "date",
    "email_opens_90d": "int",
    "email_clicks_90d": "int",
    "consent_email": "boolean",
    "email": "string",
    "country": "string",
    "industry": "string",
    "engagement_score": "double",
    "fit_score": "double",
    "value_tier": "string",
    "behaviour_state": "string",
    "lifecycle_stage": "string",
    "ai_segment": "string",
    "ai_segment_distance": "double",
    "clv_predicted": "double",
    "clv_percentile": "double",
}

D1 = dt.date(2025, 1, 1)
D2 = dt.date(2025, 7, 1)


def make_features(spark, rows: list[dict], snapshot_date: dt.date):
    """A features partition: every column of FEATURE_TYPES, unspecified values null."""
    from pyspark.sql import functions as F

    schema = ", ".join(f"{k} {v}" for k, v in FEATURE_TYPES.items())
    filled = [tuple({**r, "snapshot_date": snapshot_date}.get(k) for k in FEATURE_TYPES) for r in rows]
    df = spark.createDataFrame(filled, schema)
    return df.withColumn("snapshot_date", F.lit(snapshot_date).cast("date"))


def customer(pid, seg, tier="top", revenue=0.0, orders=0, last=None, clv=None, opens=0, clicks=0, **kw):
    return {
        "persona_id": pid,
        "persona_type": "customer",
        "ai_segment": seg,
        "value_tier": tier,
        "behaviour_state": "active",
        "lifecycle_stage": "established",
        "revenue_cycle": revenue,
        "revenue_lifetime": revenue,
        "orders_cycle": orders,
        "orders_lifetime": orders,
        "last_purchase_date": last,
        "clv_predicted": clv,
        "email_opens_90d": opens,
        "email_clicks_90d": clicks,
        **kw,
    }


@pytest.fixture
def two_snapshots(spark, lake):
    """Two feature snapshots six months apart.

    D1: a,b,c in Champions; d in At risk; p is a prospect (no segment).
    D2: a stays, b -> At risk, c bought nothing since D1 and stays, d -> Champions,
        e is new in Champions, p still a prospect.
    """
    d1 = [
        customer("a", "Champions", revenue=100.0, orders=2, last=dt.date(2024, 12, 1), frequency=2, recency_days=31),
        customer("b", "Champions", revenue=50.0, orders=1, last=dt.date(2024, 11, 1), frequency=1, recency_days=61),
        customer("c", "Champions", revenue=30.0, orders=1, last=dt.date(2024, 10, 1), frequency=1, recency_days=92),
        customer("d", "At risk", tier="rest", revenue=10.0, orders=1, last=dt.date(2024, 6, 1)),
        {"persona_id": "p", "persona_type": "prospect", "value_tier": "rest", "email_opens_90d": 3},
    ]
    d2 = [
        customer("a", "Champions", revenue=200.0, orders=4, last=dt.date(2025, 6, 1), clv=300.0, opens=4, clicks=2),
        customer("b", "At risk", tier="middle", revenue=20.0, orders=1, last=dt.date(2025, 2, 1), clv=40.0),
        customer("c", "Champions", tier="middle", revenue=0.0, orders=0, last=dt.date(2024, 10, 1), clv=10.0, opens=1),
        customer("d", "Champions", revenue=80.0, orders=2, last=dt.date(2025, 5, 1), clv=100.0),
        customer(
            "e",
            "Champions",
            tier="rest",
            revenue=20.0,
            orders=1,
            last=dt.date(2025, 6, 20),
            clv=50.0,
            lifecycle_stage="new",
        ),
        {
            "persona_id": "p",
            "persona_type": "prospect",
            "value_tier": "rest",
            "email_opens_90d": 3,
            "email_clicks_90d": 1,
        },
    ]
    lake.overwrite_partition(make_features(spark, d1, D1), "customer_features", snapshot_date=D1)
    lake.overwrite_partition(make_features(spark, d2, D2), "customer_features", snapshot_date=D2)
    return lake
