"""The feature catalog and the table agree."""

from segengine.features import catalog


def test_catalog_has_at_least_50_filterable_attributes_with_docs():
    attrs = catalog.filterable()
    assert len(attrs) >= 50
    for a in attrs:
        assert a.description and a.source and a.operators, a.name
        assert a.type in catalog.OPERATORS_BY_TYPE, a.name


def test_catalog_names_are_unique_and_include_the_agreed_columns():
    names = [a.name for a in catalog.ATTRIBUTES]
    assert len(names) == len(set(names))
    agreed = (
        "persona_id snapshot_date persona_type recency_days frequency monetary tenure_days avg_basket_value "
        "avg_monthly_spend orders_cycle revenue_cycle orders_lifetime revenue_lifetime distinct_products "
        "distinct_categories favourite_category favourite_brand first_purchase_date last_purchase_date "
        "days_since_last_purchase days_since_last_visit visits_30d time_on_site_30d email_opens_90d "
        "email_clicks_90d consent_email consent_sms email phone cookie_id age country city gender industry "
        "company_size plan account_owner engagement_score fit_score value_tier behaviour_state lifecycle_stage "
        "ai_segment ai_segment_distance b2b_segment clv_predicted clv_percentile purchase_propensity_30d "
        "purchase_propensity_30d_pct churn_risk churn_risk_pct"
    ).split()
    assert set(agreed) <= set(names)


def test_feature_table_columns_and_types_equal_the_catalog(feats):
    assert [(f.name, f.dataType) for f in feats.schema.fields] == [
        (f.name, f.dataType) for f in catalog.spark_schema().fields
    ]


def test_every_attribute_is_populated_or_a_model_column(feats):
    from pyspark.sql import functions as F

    counts = feats.agg(*[F.count(a.name).alias(a.name) for a in catalog.ATTRIBUTES]).first().asDict()
    empty = sorted(name for name, n in counts.items() if n == 0 and name not in catalog.MODEL_COLUMNS)
    assert empty == []
    assert all(counts[m] == 0 for m in catalog.MODEL_COLUMNS)


def test_categorical_values_are_within_allowed_values(rows):
    for attr in catalog.ATTRIBUTES:
        if attr.allowed_values:
            seen = {r[attr.name] for r in rows.values()} - {None}
            assert seen <= set(attr.allowed_values), attr.name


def test_catalog_renders_as_table_json_and_markdown():
    import json

    assert "recency_days" in catalog.as_rows("table")
    assert len(json.loads(catalog.as_rows("json"))) == len(catalog.ATTRIBUTES)
    assert catalog.as_rows("markdown").count("\n") == len(catalog.ATTRIBUTES) + 1
