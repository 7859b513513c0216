from __future__ import annotations

from pyspark.sql import functions as F

from segengine.identity.normalise import email_is_valid, normalise_email, normalise_phone


def _one(spark, fn, values):
    df = spark.createDataFrame([(i, v) for i, v in enumerate(values)], "i int, v string")
    return [r["out"] for r in df.select("i", fn(F.col("v")).alias("out")).orderBy("i").collect()]


def test_emails_are_trimmed_and_lower_cased_and_blank_is_null(spark):
    got = _one(spark, normalise_email, ["  Ann.Lee@Example.COM ", "ann.lee@example.com", "   ", None])
    assert got == ["ann.lee@example.com", "ann.lee@example.com", None, None]


def test_an_email_without_a_domain_is_invalid(spark):
    got = _one(spark, lambda c: email_is_valid(normalise_email(c)), ["a@b.co", "a at b.co", "a@b"])
    assert got == [True, False, False]


def test_phones_in_every_written_form_become_one_e164(spark):
    forms = [
        "+49 151 2345678",  # international, spaces
        "0049-151-2345678",  # 00 prefix, dashes
        "0151 2345678",  # national, default country 49
        "(+49) 151/234.5678",  # brackets, slash, dots
        "+49 (0)151 2345678",  # national trunk written after the country code
        "49 151 2345678",  # digits only: taken as a full number
    ]
    assert _one(spark, lambda c: normalise_phone(c, "49"), forms) == ["+491512345678"] * len(forms)


def test_the_default_country_code_only_applies_to_national_numbers(spark):
    got = _one(spark, lambda c: normalise_phone(c, "44"), ["020 7946 0018", "+33 1 23 45 67 89", "0033123456789"])
    assert got == ["+442079460018", "+33123456789", "+33123456789"]


def test_too_short_too_long_and_blank_phones_are_null(spark):
    got = _one(
        spark, lambda c: normalise_phone(c, "49"), ["12345", "+1234567890123456", "  ", None, "n/a", "+0123456789"]
    )
    assert got == [None, None, None, None, None, None]
