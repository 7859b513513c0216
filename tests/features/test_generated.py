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


def test_declining_customers_open_more_tickets_and_answer_lower(generated):
    """The generator links support to churn: customers in the months before they stop buying
    open more tickets and give lower NPS answers than active ones."""
    from pyspark.sql import functions as F

    by_state = {
        r["behaviour_state"]: r
        for r in generated.where("persona_type = 'customer'")
        .groupBy("behaviour_state")
        .agg(
            F.avg("tickets_90d").alias("tickets"),
            F.avg("last_nps").alias("nps"),
            F.count("last_nps").alias("answers"),
        )
        .collect()
    }
    active, declining = by_state["active"], by_state["declining"]
    assert active["answers"] > 30 and declining["answers"] > 30
    assert declining["tickets"] > 1.5 * active["tickets"]
    assert declining["nps"] < active["nps"] - 0.5
    # Campaign clicks exist for some customers and never for visitors (no email address).
    clicks = {
        r["persona_type"]: r["c"]
        for r in generated.groupBy("persona_type").agg(F.sum("campaign_clicks_30d").alias("c")).collect()
    }
    assert clicks["customer"] > 0 and clicks["visitor"] == 0
