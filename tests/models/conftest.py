"""Fixtures for the model tests: synthetic feature partitions with known cluster structure."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from segengine.features.catalog import CATALOG, Attribute

SNAPSHOT = dt.date(2025, 6, 30)

# Agreed customer_features columns the models read; added to the catalog for these
# tests if the features area has not listed them yet.
AGREED = {
    "industry": "string",
    "company_size": "string",
    "plan": "string",
    "value_tier": "string",
    "b2b_segment": "string",
    "avg_basket_value": "double",
    "orders_lifetime": "integer",
    "revenue_lifetime": "double",
    "days_since_last_visit": "integer",
    "visits_30d": "integer",
    "engagement_score": "double",
}

# name: (share, recency mean, frequency mean, monetary mean, tenure mean)
CLUSTERS = {
    "champions": (0.25, 10, 20, 3000.0, 800),
    "new": (0.25, 15, 1, 60.0, 20),
    "at_risk": (0.25, 200, 12, 1500.0, 900),
    "lost": (0.25, 500, 1, 40.0, 600),
}

SCHEMA = (
    "persona_id string, snapshot_date date, persona_type string, recency_days int, frequency int, "
    "monetary double, tenure_days int, avg_basket_value double, orders_lifetime int, revenue_lifetime double, "
    "days_since_last_visit int, visits_30d int, engagement_score double, industry string, company_size string, "
    "plan string, value_tier string, ai_segment string, ai_segment_distance double, b2b_segment string, "
    "clv_predicted double, clv_percentile double"
)


@pytest.fixture
def agreed_catalog(monkeypatch):
    """Make sure the catalog lists the agreed columns (types as agreed)."""
    for name, typ in AGREED.items():
        if name not in CATALOG:
            monkeypatch.setitem(CATALOG, name, Attribute(name, typ, f"{name} (test)"))


def synthetic_rows(n: int, seed: int = 0, snapshot: dt.date = SNAPSHOT, prospects: int = 10) -> list[tuple]:
    """``n`` customers in four well separated RFMT groups plus a few prospects.

    The true group is encoded in the persona id (``<group>-<i>``) so tests can check it.
    """
    rng = np.random.default_rng(seed)
    industries = ["retail", "software", "finance"]
    rows = []
    for group, (share, rec, freq, mon, ten) in CLUSTERS.items():
        for i in range(int(n * share)):
            r = max(0, int(rng.normal(rec, rec * 0.1 + 3)))
            f = max(1, int(round(rng.normal(freq, freq * 0.1 + 0.3))))
            m = float(max(1.0, rng.normal(mon, mon * 0.1)))
            t = max(r, int(rng.normal(ten, ten * 0.05 + 3)))
            b2b = group in ("champions", "at_risk") and i % 2 == 0
            tier = "top" if m > 1000 else ("middle" if m > 50 else "rest")
            rows.append(
                (
                    f"{group}-{i}",
                    snapshot,
                    "customer",
                    r,
                    f,
                    m,
                    t,
                    m / f,
                    f + 2,
                    m * 1.5,
                    r,
                    int(rng.integers(0, 5)),
                    float(rng.uniform(0, 100)),
                    industries[i % 3] if b2b else None,
                    ("large" if i % 4 == 0 else "small") if b2b else None,
                    ("pro" if m > 1000 else "basic") if b2b else None,
                    tier,
                    None,
                    None,
                    None,
                    None,
                    None,
                )
            )
    for i in range(prospects):
        rows.append(
            (
                f"prospect-{i}",
                snapshot,
                "prospect",
                None,
                0,
                0.0,
                None,
                None,
                0,
                0.0,
                3,
                1,
                10.0,
                None,
                None,
                None,
                "rest",
                None,
                None,
                None,
                None,
                None,
            )
        )
    return rows


@pytest.fixture
def synthetic_features(spark):
    """Factory: a synthetic customer_features partition as a DataFrame."""

    def make(n: int = 400, seed: int = 0, snapshot: dt.date = SNAPSHOT, prospects: int = 10):
        return spark.createDataFrame(synthetic_rows(n, seed, snapshot, prospects), SCHEMA)

    return make


@pytest.fixture(scope="session")
def synth():
    """The helpers above, for module-scoped fixtures (test modules do not import conftest)."""
    import types

    return types.SimpleNamespace(AGREED=AGREED, SCHEMA=SCHEMA, SNAPSHOT=SNAPSHOT, synthetic_rows=synthetic_rows)
