"""The feature table's parts: assortment columns from item rows."""


def test_assortment_ties_unknown_products_and_personas_without_a_bought_line(spark):
    from segengine.features.table import assortment_features

    items = spark.createDataFrame(
        [
            ("p", "product", "A", 1, 100),
            ("p", "product", "B", 2, 60),
            ("p", "product", "C", 1, 40),
            ("p", "product", "Z", 5, 500),  # not in the catalogue: a product, no category or brand
            ("p", "channel", "web", 2, 0),
            ("p", "channel", "app", 2, 0),
            ("q", "channel", "store", 1, 0),  # no bought line: no assortment row
            (None, "cookie", "ck-1", 3, 0),
        ],
        "persona_id string, kind string, key string, n long, micros long",
    )
    products = spark.createDataFrame(
        [("A", "Shoes", "Acme"), ("B", "Bags", "Bolt"), ("C", "Bags", "Acme")],
        "product_id string, category string, brand string",
    )
    got = {r["persona_id"]: r.asDict() for r in assortment_features(items, products).collect()}
    # Shoes 100 = Bags 60 + 40 and Acme 140 > Bolt 60: the tie goes to the first name.
    assert got == {
        "p": {
            "persona_id": "p",
            "distinct_products": 4,
            "distinct_categories": 2,
            "favourite_category": "Bags",
            "favourite_brand": "Acme",
            "preferred_channel": "app",
        }
    }


def test_assortment_codes_negative_spend_unknown_channels_and_groups_by_hashing(spark):
    from segengine.features.table import assortment_features

    items = spark.createDataFrame(
        [
            ("r", "product", "A", -1, -70),  # a refund only: Shoes -70
            ("r", "product", "B", 1, -90),  # Bags -90: Shoes still ranks first
            ("r", "channel", "fax", 9, 0),  # not a contract channel: ignored
            ("r", "channel", "store", 1, 0),
            ("s", "product", "D", 1, 5),  # no category or brand in the catalogue
            ("s", "channel", "fax", 1, 0),
        ],
        "persona_id string, kind string, key string, n long, micros long",
    )
    products = spark.createDataFrame(
        [("A", "Shoes", "Acme"), ("B", "Bags", None), ("D", None, None)],
        "product_id string, category string, brand string",
    )
    df = assortment_features(items, products)
    # A minimum of a (score, key) struct made Spark sort every item row, twice; the
    # packed codes group by hashing. Each item row is shuffled once, by persona: one
    # exchange of the product rows, one of the channel rows, none per (persona, key).
    plan = df._jdf.queryExecution().executedPlan().toString()
    assert "HashAggregate" in plan and "SortAggregate" not in plan, plan
    assert plan.count("Exchange hashpartitioning(persona_id") == 2, plan
    assert plan.count("Exchange hashpartitioning(") == 2, plan
    got = {r["persona_id"]: r.asDict() for r in df.collect()}
    assert got == {
        "r": {
            "persona_id": "r",
            "distinct_products": 2,
            "distinct_categories": 2,
            "favourite_category": "Shoes",
            "favourite_brand": "Acme",
            "preferred_channel": "store",
        },
        "s": {
            "persona_id": "s",
            "distinct_products": 1,
            "distinct_categories": 0,
            "favourite_category": None,
            "favourite_brand": None,
            "preferred_channel": None,
        },
    }
