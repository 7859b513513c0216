"""Hand-made feature, order, event, product and recommendation views for rule tests.

Snapshot 2025-06-30. Five personas chosen so each operator has an obvious answer:

====  ========  =====  ========  ==========  =======  ===============  =========  ==========  =======
id    type      fit    monetary  plan        consent  last_purchase    fav cat    ai_segment  clv_pct
====  ========  =====  ========  ==========  =======  ===============  =========  ==========  =======
p1    customer  80     120.5     free        true     2025-06-20       Shoes      Champions   95
p2    customer  50     40.0      pro         false    2024-12-01       Bags       At risk     10
p3    prospect  70     null      basic       true     null             null       null        null
p4    visitor   null   null      null        null     null             null       null        null
p5    customer  90     120.5     enterprise  true     2025-04-01       Shoes      Champions   50
====  ========  =====  ========  ==========  =======  ===============  =========  ==========  =======
"""

from __future__ import annotations

import datetime as dt

import pytest

from segengine.rules import TableViews

SNAP = dt.date(2025, 6, 30)
VIEWS = TableViews(
    features="t_rules_features",
    order_lines="t_rules_order_lines",
    events="t_rules_events",
    recommendations="t_rules_recommendations",
    products="t_rules_products",
)

FEATURES_DDL = (
    "persona_id string, snapshot_date date, persona_type string, cookie_id string, fit_score int, "
    "monetary double, plan string, consent_email boolean, last_purchase_date date, favourite_category string, "
    "ai_segment string, clv_percentile double, clv_predicted double, email string"
)
D = dt.date
FEATURES = [
    (
        "p1",
        SNAP,
        "customer",
        "c1",
        80,
        120.5,
        "free",
        True,
        D(2025, 6, 20),
        "Shoes",
        "Champions",
        95.0,
        900.0,
        "a@x.com",
    ),
    ("p2", SNAP, "customer", "c2", 50, 40.0, "pro", False, D(2024, 12, 1), "Bags", "At risk", 10.0, 50.0, "b@y.org"),
    ("p3", SNAP, "prospect", "c3", 70, None, "basic", True, None, None, None, None, None, "o'brien@z.com"),
    ("p4", SNAP, "visitor", "c4", None, None, None, None, None, None, None, None, None, None),
    (
        "p5",
        SNAP,
        "customer",
        None,
        90,
        120.5,
        "enterprise",
        True,
        D(2025, 4, 1),
        "Shoes",
        "Champions",
        50.0,
        900.0,
        "e@x.com",
    ),
    # Another snapshot's row must never leak into this date's answers.
    (
        "p9",
        D(2025, 5, 31),
        "customer",
        "c9",
        99,
        999.0,
        "free",
        True,
        D(2025, 5, 1),
        "Shoes",
        "Champions",
        99.0,
        9.0,
        "z@x.com",
    ),
]

ORDERS_DDL = (
    "order_id string, line_no int, persona_id string, order_ts timestamp, channel string, "
    "product_id string, quantity int, unit_price double"
)
T = dt.datetime
ORDER_LINES = [
    ("o1", 1, "p1", T(2025, 6, 20, 10), "web", "P1", 1, 100.0),
    ("o2", 1, "p1", T(2025, 5, 15, 9), "web", "P1", 2, 10.0),
    ("o3", 1, "p1", T(2025, 7, 5, 9), "web", "P1", 1, 999.0),  # after the snapshot
    ("o4", 1, "p2", T(2024, 12, 1, 12), "app", "P2", 1, 50.0),
    ("o5", 1, "p2", T(2025, 6, 1, 12), "app", "P2", -1, 50.0),  # refund of o4
    ("o6", 1, "p5", T(2025, 4, 1, 8), "store", "P1", 1, 100.0),
]
PRODUCTS_DDL = "product_id string, name string, category string, brand string, price double"
PRODUCTS = [
    ("P1", "Runner", "Shoes", "Nike", 100.0),
    ("P2", "Tote", "Bags", "Acme", 50.0),
    ("P3", "Boot", "Shoes", "Acme", 120.0),
]
EVENTS_DDL = (
    "event_id string, persona_id string, cookie_id string, event_ts timestamp, event_type string, "
    "product_id string, session_id string, duration_s double, event_date date"
)
EVENTS = [
    ("e1", "p1", "c1", T(2025, 6, 25, 10), "add_to_cart", "P3", "s1", 5.0, D(2025, 6, 25)),
    ("e2", "p1", "c1", T(2025, 6, 26, 10), "add_to_cart", "P3", "s2", 5.0, D(2025, 6, 26)),
    ("e3", None, "c4", T(2025, 6, 28, 10), "product_view", "P3", "s3", 30.0, D(2025, 6, 28)),  # visitor by cookie
    ("e4", "p2", "c2", T(2025, 3, 1, 10), "add_to_cart", "P2", "s4", 5.0, D(2025, 3, 1)),
    ("e5", "p3", "c3", T(2025, 7, 2, 10), "email_click", None, "s5", 0.0, D(2025, 7, 2)),  # after the snapshot
    ("e6", "p3", "c3", T(2025, 6, 10, 10), "email_click", None, "s6", 0.0, D(2025, 6, 10)),
]
RECS_DDL = "persona_id string, product_id string, rank int, score int, recommender string, snapshot_date date"
RECOMMENDATIONS = [
    ("p1", "P3", 1, 90, "als", SNAP),
    ("p2", "P3", 2, 60, "als", SNAP),
    ("p2", "P1", 1, 70, "als", SNAP),
    ("p3", "P1", 1, 80, "popular", SNAP),
    ("p2", "P3", 1, 95, "als", D(2025, 5, 31)),  # an older scoring run
]


@pytest.fixture(scope="session")
def rule_views(spark):
    """Register the hand-made views once for the whole rules test session."""
    for rows, ddl, name in (
        (FEATURES, FEATURES_DDL, VIEWS.features),
        (ORDER_LINES, ORDERS_DDL, VIEWS.order_lines),
        (PRODUCTS, PRODUCTS_DDL, VIEWS.products),
        (EVENTS, EVENTS_DDL, VIEWS.events),
        (RECOMMENDATIONS, RECS_DDL, VIEWS.recommendations),
    ):
        spark.createDataFrame(rows, ddl).createOrReplaceTempView(name)
    return VIEWS


@pytest.fixture
def select_ids(spark, rule_views):
    """Compile a document for SNAP over the hand-made views and return the persona ids."""
    from segengine.rules import compile_segment

    def run(doc, resolver=None, ordered=False):
        if "name" not in doc:
            doc = {"name": "test", **doc}
        sql = compile_segment(doc, SNAP, views=rule_views, resolver=resolver).sql
        ids = [r["persona_id"] for r in spark.sql(sql).collect()]
        return ids if ordered else sorted(ids)

    return run
