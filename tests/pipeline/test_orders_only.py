"""A warehouse with orders but no web events (a classic transaction log): every daily step runs.

Bronze holds personas, products and order_lines only: there is no ``events`` table. The
features of event attributes are null (unknown, not 0), the order features are exact,
and training, scoring, recommendations, audiences, insights and the report all run.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from segengine.contract import spark_schema
from segengine.features.catalog import EVENT_ATTRIBUTES
from segengine.lake import Lake

pytestmark = pytest.mark.slow

DAY1 = dt.date(2025, 6, 30)
DAY2 = dt.date(2025, 7, 1)
CREATED = dt.datetime(2023, 1, 1, 9)
PRICES = {f"P{i:02d}": 10.0 + 5 * i for i in range(1, 9)}


def _personas():
    rows = []
    for i in range(1, 17):
        b2b = i > 12  # four B2B contacts, so the B2B segments have customers to cluster
        rows.append(
            (
                f"c{i:02d}",
                f"c{i:02d}@example.com",
                None,
                None,
                CREATED,
                "DE",
                "Berlin",
                None,
                "unknown",
                i % 2 == 0,
                False,
                "retail" if b2b else None,
                "11-50" if b2b else None,
                None,
                None,
            )
        )
    rows.append(("p01", "p01@example.com", None, None, CREATED, "DE", None, None, None, True, False) + (None,) * 4)
    rows.append(("v01", None, None, "cookie-v01", CREATED, None, None, None, None, None, None) + (None,) * 4)
    return rows


def _order_lines():
    """c01 by hand (below); c02..c16 buy every 10 + 5 i days from 2023-06-01, two lines an order."""
    rows = [
        # c01: 130.00 on 2024-12-15 (before the 6-month cycle of DAY1), 20.00 on 2025-06-20.
        ("o-c01-1", 1, "c01", dt.datetime(2024, 12, 15, 10), "web", "P01", 2, 50.0),
        ("o-c01-1", 2, "c01", dt.datetime(2024, 12, 15, 10), "web", "P02", 1, 30.0),
        ("o-c01-2", 1, "c01", dt.datetime(2025, 6, 20, 10), "store", "P03", 1, 20.0),
    ]
    for i in range(2, 17):
        day, n = dt.datetime(2023, 6, 1, 12), 0
        while day.date() <= DAY2:
            oid = f"o-c{i:02d}-{n}"
            for line, pid in enumerate((f"P{(i + n) % 8 + 1:02d}", f"P{(i * n) % 8 + 1:02d}"), start=1):
                rows.append((oid, line, f"c{i:02d}", day, "web" if n % 3 else "app", pid, 1 + n % 2, PRICES[pid]))
            day, n = day + dt.timedelta(days=10 + 5 * i), n + 1
    return rows


@pytest.fixture
def orders_only(spark, config, mlflow_local, other_backend):
    # The suite's one end-to-end daily pipeline on the other Delta backend (embedded when
    # the suite runs on delta-spark), so both backends run the whole pipeline in CI.
    backend = other_backend
    config = config.replace(
        delta=config.delta.replace(backend=backend),
        segments=config.segments.replace(k=3),
        clv=config.clv.replace(
            max_iter=5,
            train_cycles=1,
            cutoff_step_months=config.features.cycle_months,
            min_instances_per_node=1,
        ),
        recommend=config.recommend.replace(rank=4, max_iter=5, block_size=64),
        mlflow=config.mlflow.replace(tracking_uri=mlflow_local, experiment="test-orders-only"),
    )
    lake = Lake.open(spark, config)
    assert lake.backend.name == backend
    products = [
        (pid, f"product {pid}", "shoes" if i % 2 else "bags", "acme", p) for i, (pid, p) in enumerate(PRICES.items())
    ]
    lake.write(spark.createDataFrame(products, spark_schema("products")), "products", mode="overwrite")
    lake.write(spark.createDataFrame(_personas(), spark_schema("personas")), "personas", mode="overwrite")
    lake.write(spark.createDataFrame(_order_lines(), spark_schema("order_lines")), "order_lines", mode="overwrite")
    assert not lake.exists("events")
    return config, lake


def test_daily_pipeline_runs_without_events(spark, orders_only):
    from segengine.audiences import create_audience, members
    from segengine.features import compute_features
    from segengine.pipeline.daily import DAILY_STEPS, TRAINING_STEPS, run_daily, run_steps

    config, lake = orders_only
    quiet = {"echo": lambda _: None}
    assert compute_features(spark, lake, config, DAY1)["mode"] == "full"
    trained = run_steps(spark, lake, config, DAY1, TRAINING_STEPS, **quiet)
    assert trained["status"] == "ok", trained
    evaluation = trained["steps"][2]["result"]["evaluation"]
    # Segments come from features on or before the test window's training cutoff (a month
    # before DAY1); the only partition is DAY1's, so the evaluation says it has none.
    assert (evaluation["segmentation"], evaluation["test"]["segments_as_of"]) == ("none", None)
    doc = {"name": "bought lately", "where": {"attr": "recency_days", "op": "<=", "value": 30}}
    aid = create_audience(spark, lake, config, "bought lately", "ann", "dynamic", "rules", doc)

    result = run_daily(spark, lake, config, DAY2, **quiet)

    assert {s["step"]: s["status"] for s in result["steps"]} == {s.name: "ok" for s in DAILY_STEPS}
    assert result["steps"][1]["result"]["mode"] == "incremental"
    assert not lake.exists("events")
    features = lake.read("customer_features", partitions={"snapshot_date": DAY2})
    rows = {r["persona_id"]: r.asDict() for r in features.collect()}  # 18 personas
    assert sorted(rows) == [f"c{i:02d}" for i in range(1, 17)] + ["p01", "v01"]
    for name in EVENT_ATTRIBUTES:
        assert {r[name] for r in rows.values()} == {None}, name
    c01 = rows["c01"]
    assert {k: c01[k] for k in ("persona_type", "recency_days", "frequency", "monetary", "tenure_days")} == {
        "persona_type": "customer",
        "recency_days": 11,
        "frequency": 1,
        "monetary": 20.0,
        "tenure_days": 198,
    }
    assert (c01["orders_lifetime"], c01["revenue_lifetime"], c01["avg_basket_value"]) == (2, 150.0, 75.0)
    assert (c01["distinct_products"], c01["first_purchase_date"], c01["last_purchase_date"]) == (
        3,
        dt.date(2024, 12, 15),
        dt.date(2025, 6, 20),
    )
    # Activity comes from the order lines alone: one purchase day in the last 90.
    assert c01["active_days_90d"] == 1
    assert (rows["p01"]["persona_type"], rows["p01"]["frequency"], rows["p01"]["monetary"]) == ("prospect", 0, 0.0)
    assert all(rows[f"c{i:02d}"]["ai_segment"] is not None for i in range(1, 17))
    assert all(rows[f"c{i:02d}"]["clv_predicted"] is not None for i in range(1, 17))
    recs = lake.read("recommendations", partitions={"snapshot_date": DAY2})
    # 8 products, 3 bought by c01 (bought ones are never recommended).
    assert recs.where("persona_id = 'c01'").count() == 5
    assert "c01" in {r.persona_id for r in members(spark, lake, aid).collect()}
    # The insights step rebuilt the tables and wrote the report from them.
    report = Path(result["steps"][-1]["result"]["report"])
    assert report == Path(config.warehouse_uri) / "reports" / f"segengine_report_{DAY2}.html"
    assert report.stat().st_size > 10_000 and str(DAY2) in report.read_text()
