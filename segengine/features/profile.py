"""Profile attributes from ``personas`` and the persona type.

Identity rules (in this order):

* **customer**: at least one purchase (an order with a line of positive quantity) up
  to the snapshot date;
* **prospect**: no purchase, and a non-blank email or phone;
* **visitor**: everything else (known only by a cookie).

Personas first seen after the snapshot date do not exist yet and are left out.
"""

from __future__ import annotations

import datetime as dt

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from segengine.features.windows import local_date


def _present(col: str) -> Column:
    return F.col(col).isNotNull() & (F.trim(F.col(col)) != "")


def profile_features(personas: DataFrame, snapshot_date: dt.date, tz: str, session_tz: str) -> DataFrame:
    """Profile columns of the personas that exist on ``snapshot_date``.

    Args:
        personas: bronze personas.
        snapshot_date: the snapshot date.
        tz: ``features.timezone``.
        session_tz: the session time zone.

    Returns:
        persona_id, email, phone, cookie_id, consent_email, consent_sms, age, country,
        city, gender, industry, company_size, plan, account_owner, created_date,
        days_since_created, has_email, has_phone, is_b2b.
    """
    day = F.lit(snapshot_date)
    created = local_date(F.col("created_at"), tz, session_tz)
    return (
        personas.withColumn("created_date", created)
        .where(F.col("created_date") <= day)
        .select(
            "persona_id",
            "email",
            "phone",
            "cookie_id",
            # No recorded consent is no consent: marketing must never assume opt-in.
            F.coalesce(F.col("consent_email"), F.lit(False)).alias("consent_email"),
            F.coalesce(F.col("consent_sms"), F.lit(False)).alias("consent_sms"),
            F.when(F.col("birth_date") <= day, F.floor(F.months_between(day, F.col("birth_date")) / 12))
            .cast("int")
            .alias("age"),
            "country",
            "city",
            "gender",
            "industry",
            "company_size",
            "plan",
            "account_owner",
            "created_date",
            F.datediff(day, F.col("created_date")).alias("days_since_created"),
            _present("email").alias("has_email"),
            _present("phone").alias("has_phone"),
            (_present("industry") | _present("company_size")).alias("is_b2b"),
        )
    )


def with_persona_type(df: DataFrame) -> DataFrame:
    """Add ``persona_type`` from ``orders_lifetime``, ``has_email`` and ``has_phone``."""
    return df.withColumn(
        "persona_type",
        F.when(F.col("orders_lifetime") > 0, "customer")
        .when(F.col("has_email") | F.col("has_phone"), "prospect")
        .otherwise("visitor"),
    )
