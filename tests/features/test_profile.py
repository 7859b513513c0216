"""Persona types and profile attributes."""

from chispa import assert_df_equality


def test_persona_types_follow_the_identity_rules(spark, feats):
    expected = spark.createDataFrame(
        [
            ("c1", "customer"),
            ("c2", "customer"),
            ("e1", "visitor"),  # cookie only, events but no orders
            ("f1", "visitor"),  # cookie only, its order is in the future
            ("n1", "prospect"),  # email, blank phone
            ("r1", "prospect"),  # phone, refund only
        ],
        "persona_id string, persona_type string",
    )
    assert_df_equality(
        feats.select("persona_id", "persona_type"), expected, ignore_row_order=True, ignore_nullable=True
    )


def test_persona_first_seen_after_the_snapshot_is_absent(rows):
    assert "late" not in rows


def test_age_is_whole_years_on_the_snapshot_date(rows):
    assert rows["c1"]["age"] == 35  # born 1990-06-30: birthday on the snapshot day
    assert rows["c2"]["age"] == 39  # born 1985-07-01: birthday tomorrow


def test_nulls_in_optional_columns_give_nulls_and_no_consent(rows):
    n1 = rows["n1"]
    assert (n1["consent_email"], n1["consent_sms"]) == (False, False)
    assert n1["age"] is None and n1["country"] is None and n1["plan"] is None
    assert (n1["has_email"], n1["has_phone"], n1["is_b2b"]) == (True, False, False)
    assert rows["c2"]["is_b2b"] is True
    assert rows["c1"]["consent_email"] is True
