"""Statistics on generated data (the generator's personas, orders and events)."""

import pytest


def test_value_tier_shares_are_20_30_50_percent_of_customers(generated):
    from pyspark.sql import functions as F

    customers = generated.where("persona_type = 'customer'")
    n = customers.count()
    assert n > 300
    shares = {
        r["value_tier"]: r["c"] / n for r in customers.groupBy("value_tier").agg(F.count("*").alias("c")).collect()
    }
    assert shares["top"] == pytest.approx(0.2, abs=0.01)
    assert shares["middle"] == pytest.approx(0.3, abs=0.01)
    assert shares["rest"] == pytest.approx(0.5, abs=0.01)
    assert generated.where("persona_type != 'customer' AND value_tier IS NOT NULL").count() == 0


def test_top_tier_has_higher_fit_and_revenue_than_the_rest(generated):
    from pyspark.sql import functions as F

    by_tier = {
        r["value_tier"]: r
        for r in generated.where("persona_type = 'customer'")
        .groupBy("value_tier")
        .agg(F.avg("fit_score").alias("fit"), F.avg("revenue_cycle").alias("rev"))
        .collect()
    }
    assert by_tier["top"]["fit"] > by_tier["middle"]["fit"] > by_tier["rest"]["fit"]
    assert by_tier["top"]["rev"] > by_tier["middle"]["rev"] > by_tier["rest"]["rev"]


def test_all_three_persona_types_and_states_occur_and_categoricals_are_allowed(generated):
    from segengine.features.catalog import ATTRIBUTES

    for attr in ATTRIBUTES:
        if attr.allowed_values:
            seen = {r[0] for r in generated.select(attr.name).distinct().collect()} - {None}
            assert seen <= set(attr.allowed_values), attr.name
    types = {r[0] for r in generated.select("persona_type").distinct().collect()}
    assert types == {"customer", "prospect", "visitor"}
    states = {r[0] for r in generated.select("behaviour_state").distinct().collect()}
    assert states == {"active", "declining", "dormant"}


def test_support_survey_and_campaign_attributes_are_populated(generated):
    """Every customer has ticket and click counts (the tables exist); some answered surveys."""
    from pyspark.sql import functions as F

    row = (
        generated.where("persona_type = 'customer'")
        .agg(
            F.count(F.lit(1)).alias("n"),
            F.count("tickets_90d").alias("tickets"),
            F.count("campaign_clicks_30d").alias("clicks"),
            F.count("last_nps").alias("nps"),
            F.count("last_csat").alias("csat"),
            F.sum("campaign_clicks_30d").alias("clicked"),
        )
        .first()
    )
    assert row["tickets"] == row["clicks"] == row["n"]
    assert row["nps"] > row["n"] / 3 and row["csat"] > 0 and row["clicked"] > 0
