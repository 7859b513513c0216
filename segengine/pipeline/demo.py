"""``make demo``: sample data → the whole pipeline, end to end (on delta-spark when
``make setup`` fetched its jars, else on the embedded backend).

Two consecutive snapshot dates are run so audiences show members added and removed
and insights show migrations between AI segments. The features of a quarter before
the second date are computed first: the report's boundary review compares each rule
threshold's percentile with that snapshot's, and the recommender's evaluation takes
its segments from a snapshot before its training cutoff.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from segengine.errors import MissingInput

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config
    from segengine.lake import Lake


def run_demo(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    personas: int,
    echo: Callable[[str], None] = print,
    seed: int = 42,
) -> dict[str, Any]:
    """Generate, ingest, train, score, build audiences and insights; return what was made."""
    from segengine.features import compute_features
    from segengine.features.catalog import filterable
    from segengine.generate import generate_bronze
    from segengine.insights import add_months
    from segengine.pipeline.daily import TRAINING_STEPS, run_daily, run_steps

    out: dict[str, Any] = {"warehouse": config.warehouse_uri}
    end = dt.date.fromisoformat(config.generator.end_date)
    day1, day2 = end - dt.timedelta(days=1), end
    quarter_ago = add_months(day2, -3)

    echo(f"== 1/7 generating {personas:,} personas and ingesting them into Delta tables")
    out["generate"] = generate_bronze(spark, lake, config, personas=personas, seed=seed)
    echo(json.dumps(out["generate"], default=str)[:800])

    echo(f"== 2/7 customer features for {quarter_ago} and {day1} ({len(filterable())} filterable attributes)")
    out["features_quarter_ago"] = compute_features(spark, lake, config, quarter_ago)
    out["features_day1"] = compute_features(spark, lake, config, day1)
    lake.read("customer_features", partitions={"snapshot_date": day1}).select(
        "persona_id", "persona_type", "recency_days", "frequency", "monetary", "tenure_days", "value_tier"
    ).show(5, truncate=False)

    echo("== 3/7 training models (k-means segments, CLV, ALS) tracked in MLflow")
    out["training"] = run_steps(spark, lake, config, day1, TRAINING_STEPS, echo=echo)
    if out["training"]["status"] != "ok":
        raise RuntimeError(f"training failed: {out['training']['steps'][-1]['message']}")

    echo(f"== 4/7 daily pipeline for {day1}")
    out["daily_day1"] = run_daily(spark, lake, config, day1, echo=echo)

    echo("== 5/7 audiences: static, dynamic, uploaded, top-N, set operations")
    from segengine.pipeline.demo_audiences import build_demo_audiences

    out["audiences"] = build_demo_audiences(spark, lake, config, day1, echo=echo)

    echo(f"== 6/7 daily pipeline for {day2} (audiences refreshed: members added/removed)")
    out["daily_day2"] = run_daily(spark, lake, config, day2, echo=echo)

    from segengine.pipeline.demo_audiences import finish_demo_audiences

    out["audiences_after"] = finish_demo_audiences(spark, lake, config, day2, out["audiences"], echo=echo)

    echo("== 7/7 insights, report and a customer profile")
    from segengine.insights.profile import customer_profile
    from segengine.insights.report import render_report

    report_path = os.path.join(config.warehouse_uri, "reports", config.insights.report_name)
    out["report"] = render_report(spark, lake, config, day2, report_path)
    top = (
        lake.read("customer_features", partitions={"snapshot_date": day2})
        .filter("persona_type = 'customer'")
        .orderBy("monetary", ascending=False)
        .select("persona_id")
        .first()
    )
    if top is None:
        raise MissingInput(f"demo: no customer in customer_features for {day2}")
    profile = customer_profile(spark, lake, config, top["persona_id"], day2)
    echo(json.dumps(profile, default=str, indent=2)[:3000])

    from segengine.models.tracking import configure_mlflow

    tracking = configure_mlflow(config)
    echo("")
    echo(f"Delta tables:   {config.warehouse_uri}")
    echo(f"HTML report:    {out['report']}")
    echo(f"MLflow UI:      mlflow ui --backend-store-uri {tracking}")
    return out
