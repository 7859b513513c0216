"""Studio fixtures: a hand-written feature partition, the app over the test session, and an
app with no Spark at all (for what must be answered before any Spark work).

Features of 2025-06-30 (D1), and of 2025-07-31 (D2) where only c's fit score changed:

====  ========  =========  =========  ========  =======  =====
id    type      fit (D1)   fit (D2)   monetary  country  plan
====  ========  =========  =========  ========  =======  =====
a     customer  80         80         120.0     GB       pro
b     prospect  75         75         null      FR       free
c     customer  10         95         40.0      GB       basic
d     visitor   null       null       null      null     null
e     customer  90         90         300.0     FR       pro
====  ========  =========  =========  ========  =======  =====

So ``fit_score >= 70`` is a, b, e on D1 (2 customers, 1 prospect) and a, b, c, e on D2.
"""

from __future__ import annotations

import datetime as dt

import pytest

from segengine.studio import StudioSettings, create_app

D1 = dt.date(2025, 6, 30)
D2 = dt.date(2025, 7, 31)
FEATURES_DDL = (
    "persona_id string, snapshot_date date, persona_type string, fit_score int, monetary double, "
    "country string, plan string"
)
PEOPLE = [
    ("a", "customer", 80, 80, 120.0, "GB", "pro"),
    ("b", "prospect", 75, 75, None, "FR", "free"),
    ("c", "customer", 10, 95, 40.0, "GB", "basic"),
    ("d", "visitor", None, None, None, None, None),
    ("e", "customer", 90, 90, 300.0, "FR", "pro"),
]
HIGH_FIT = {"name": "High fit", "where": {"attr": "fit_score", "op": ">=", "value": 70}}


def write_features(spark, lake, day: dt.date) -> None:
    """The customer_features partition of ``day`` (D1 or D2)."""
    rows = [(pid, day, ptype, fit1 if day == D1 else fit2, m, c, p) for pid, ptype, fit1, fit2, m, c, p in PEOPLE]
    lake.overwrite_partition(spark.createDataFrame(rows, FEATURES_DDL), "customer_features", snapshot_date=day)


def as_user(name: str) -> dict[str, str]:
    return {"X-Segengine-User": name}


@pytest.fixture
def features(spark, lake):
    write_features(spark, lake, D1)
    return lake


@pytest.fixture
def client(spark, lake, config, features):
    """The studio over the test session and D1's features; checks for new snapshots every call."""
    from fastapi.testclient import TestClient

    app = create_app(spark, lake, config, StudioSettings(default_user="tester", check_seconds=0))
    with TestClient(app) as test_client:
        yield test_client


class NoSpark:
    """Stands in for the SparkSession where none may be used: any use fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"Spark used: spark.{name}")


class EmptyLake:
    """A lake with no tables, read without Spark."""

    def exists(self, name: str) -> bool:
        return False


@pytest.fixture
def offline(base_config):
    """``make(settings) -> TestClient`` of a studio with no SparkSession and an empty lake."""
    from fastapi.testclient import TestClient

    clients = []

    def make(settings: StudioSettings | None = None) -> TestClient:
        app = create_app(NoSpark(), EmptyLake(), base_config, settings or StudioSettings(default_user="tester"))
        test_client = TestClient(app)
        clients.append(test_client)
        return test_client

    yield make
    for test_client in clients:
        test_client.close()
