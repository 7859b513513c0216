"""Hand-written personas and feature partitions, and a stub rule evaluator.

The stub stands in for the rule compiler: a definition ``{"attr", "op", "value"}``
filters the feature partition of the date, which keeps these tests independent of
``segengine.rules`` while exercising the same refresh path.
"""

from __future__ import annotations

import datetime as dt
import operator

import pytest

D1 = dt.date(2025, 6, 1)
D2 = dt.date(2025, 6, 2)

FEATURE_COLS = "persona_id string, snapshot_date date, persona_type string, monetary double, frequency int, country string, email string"

# persona, type, monetary on D1, monetary on D2, frequency, country, email
PEOPLE = [
    ("p1", "customer", 500.0, 20.0, 9, "FR", "ann@example.com"),
    ("p2", "customer", 300.0, 300.0, 5, "DE", "bob@example.com"),
    ("p3", "customer", 120.0, 400.0, 2, "FR", "cy@example.com"),
    ("p4", "prospect", 0.0, 0.0, 0, "FR", "dee@example.com"),
    ("p5", "customer", 80.0, 150.0, 1, "ES", None),
    ("p6", "visitor", None, None, None, None, None),
]


def write_features(spark, lake, day: dt.date) -> None:
    """One customer_features partition: monetary differs between D1 and D2."""
    rows = [
        (pid, day, ptype, m1 if day == D1 else m2, freq, country, email)
        for pid, ptype, m1, m2, freq, country, email in PEOPLE
    ]
    lake.overwrite_partition(spark.createDataFrame(rows, FEATURE_COLS), "customer_features", snapshot_date=day)


@pytest.fixture
def features(spark, lake):
    write_features(spark, lake, D1)
    write_features(spark, lake, D2)
    return lake


@pytest.fixture
def personas(spark, lake):
    rows = [
        ("p1", "ann@example.com", "+44 20 7946 0001", "c-1"),
        ("p2", "Bob@Example.com", "020 7946 0002", "c-2"),
        ("p3", "cy@example.com", None, "c-3"),
        ("p4", "dee@example.com", "(555) 010-9999", None),
        ("p5", None, "5550100005", "c-5"),
        ("p6", None, None, "c-6"),
    ]
    df = spark.createDataFrame(rows, "persona_id string, email string, phone string, cookie_id string")
    lake.write(df, "personas", mode="overwrite")
    return lake


_OPS = {">=": operator.ge, ">": operator.gt, "<": operator.lt, "<=": operator.le, "=": operator.eq}


class StubEvaluator:
    """Evaluates ``{"attr", "op", "value"}`` on the features partition; counts prepare() calls."""

    def __init__(self):
        self.prepared = []
        self.calls = 0

    def prepare(self, spark, lake, snapshot_date):
        self.prepared.append(snapshot_date)

    def __call__(self, spark, lake, definition, snapshot_date, resolve):
        from pyspark.sql import functions as F

        self.calls += 1
        feats = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
        cond = _OPS[definition["op"]](F.col(definition["attr"]), F.lit(definition["value"]))
        return feats.filter(cond).select("persona_id")


@pytest.fixture
def stub():
    return StubEvaluator()


def ids(df) -> list[str]:
    """Sorted persona ids of a small DataFrame (test helper)."""
    return sorted(r["persona_id"] for r in df.select("persona_id").collect())
