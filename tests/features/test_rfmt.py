"""RFMT and value features on hand-written data (see conftest for the rows)."""

import datetime as dt

from chispa import assert_df_equality

from .conftest import SNAPSHOT, ts

RFMT_COLS = ["persona_id", "recency_days", "frequency", "monetary", "tenure_days"]


def test_rfmt_values_for_every_persona(spark, feats):
    expected = spark.createDataFrame(
        [
            ("c1", 10, 2, 100.0, 394),  # O1 + O2 in cycle, refund R1 subtracted; O3 first purchase
            ("c2", 182, 1, 20.0, 183),  # O4 on the cycle's first day counts, O5 the day before does not
            ("e1", None, 0, 0.0, None),  # events only
            ("f1", None, 0, 0.0, None),  # only a future order
            ("n1", None, 0, 0.0, None),  # nothing at all
            ("r1", None, 0, -50.0, None),  # refund only
        ],
        "persona_id string, recency_days int, frequency int, monetary double, tenure_days int",
    )
    assert_df_equality(feats.select(*RFMT_COLS), expected, ignore_row_order=True, ignore_nullable=True)


def test_value_columns_of_a_customer_with_a_refund(rows):
    c1 = rows["c1"]
    assert (c1["orders_cycle"], c1["revenue_cycle"]) == (2, 100.0)
    assert (c1["orders_lifetime"], c1["revenue_lifetime"]) == (3, 130.0)
    assert c1["avg_basket_value"] == 43.33
    assert c1["avg_monthly_spend"] == 16.67
    assert (c1["distinct_products"], c1["distinct_categories"]) == (3, 2)
    assert (c1["favourite_category"], c1["favourite_brand"]) == ("Shoes", "Acme")
    assert (c1["first_purchase_date"], c1["last_purchase_date"]) == (dt.date(2024, 6, 1), dt.date(2025, 6, 20))
    assert c1["days_since_last_purchase"] == 10
    assert c1["preferred_channel"] == "web"
    assert c1["items_cycle"] == 3
    assert (c1["refunds_lifetime"], c1["refund_amount_lifetime"]) == (1, 20.0)


def test_refund_only_persona_has_zero_frequency_negative_monetary_and_is_not_a_customer(rows):
    r1 = rows["r1"]
    assert (r1["frequency"], r1["monetary"], r1["orders_lifetime"], r1["revenue_lifetime"]) == (0, -50.0, 0, -50.0)
    assert r1["persona_type"] == "prospect"
    assert r1["avg_basket_value"] is None and r1["first_purchase_date"] is None


def test_purchase_the_day_before_the_cycle_counts_only_in_lifetime(rows):
    c2 = rows["c2"]
    assert (c2["frequency"], c2["orders_lifetime"], c2["revenue_lifetime"]) == (1, 2, 40.0)
    assert c2["first_purchase_date"] == dt.date(2024, 12, 29)


def test_future_order_is_not_used(rows):
    f1 = rows["f1"]
    assert (f1["orders_lifetime"], f1["revenue_lifetime"], f1["persona_type"]) == (0, 0.0, "visitor")


def test_order_facts_take_the_first_channel_by_name_and_group_by_hashing(spark):
    from segengine.features import bronze, rfmt

    lines = spark.createDataFrame(
        [
            ("A", 1, "p", ts("2025-06-10 10:00:00"), "web", "P1", 2, 10.0),
            ("A", 2, "p", ts("2025-06-10 10:00:00"), "app", "P2", -1, 5.0),  # lines disagree: "app" first
            ("B", 1, "p", ts("2025-06-11 10:00:00"), None, "P1", 1, 10.0),  # no channel
            ("C", 1, "q", ts("2025-06-12 10:00:00"), "fax", "P1", 1, 10.0),  # not a contract channel
            ("C", 2, "q", ts("2025-06-12 10:00:00"), None, "P1", -1, 10.0),
            ("D", 1, "q", ts("2025-06-13 10:00:00"), "store", "P1", -3, 1.0),  # a refund order
        ],
        "order_id string, line_no int, persona_id string, order_ts timestamp, channel string, "
        "product_id string, quantity int, unit_price double",
    )
    orders = rfmt.order_facts(bronze.order_lines_until(lines, SNAPSHOT, "UTC", "UTC"))
    got = {
        r["order_id"]: (r["channel"], r["is_purchase"], r["net_micros"], r["refund_micros"], r["items"])
        for r in orders.collect()
    }
    assert got == {
        "A": ("app", True, 15_000_000, 5_000_000, 2),
        "B": (None, True, 10_000_000, 0, 1),
        "C": (None, True, 0, 10_000_000, 1),
        "D": ("store", False, -3_000_000, 3_000_000, 0),
    }
    # A string minimum would make Spark sort every order line instead of hashing.
    plan = orders._jdf.queryExecution().executedPlan().toString()
    assert "HashAggregate" in plan and "SortAggregate" not in plan, plan

    # One shuffle, of the lines by persona: the groupings of the orders per persona
    # and day and per persona reuse it.
    per_day = rfmt.order_days(orders)
    lifetime = rfmt.orders_as_days(orders).groupBy("persona_id").count()
    for df in (per_day, lifetime):
        plan = df._jdf.queryExecution().executedPlan().toString()
        assert plan.count("Exchange hashpartitioning(persona_id") == 1 and plan.count("Exchange") == 1, plan


def test_a_refund_line_worth_nothing_still_makes_a_refund_order(spark):
    """refunds_lifetime counts orders with a refunded line (the catalog); a free item's refund counted 0."""
    from segengine.features import bronze, rfmt

    lines = spark.createDataFrame(
        [
            ("A", 1, "p", ts("2025-06-10 10:00:00"), "web", "P1", 1, 10.0),
            ("Z", 1, "p", ts("2025-06-11 10:00:00"), "web", "FREE", -1, 0.0),  # a refund of a free gift
        ],
        "order_id string, line_no int, persona_id string, order_ts timestamp, channel string, "
        "product_id string, quantity int, unit_price double",
    )
    orders = rfmt.order_facts(bronze.order_lines_until(lines, SNAPSHOT, "UTC", "UTC"))
    days = {
        r["day"]: (r["purchases"], r["refund_orders"], r["refund_micros"])
        for r in rfmt.orders_as_days(orders).collect()
    }
    assert days == {dt.date(2025, 6, 10): (1, 0, 0), dt.date(2025, 6, 11): (0, 1, 0)}
