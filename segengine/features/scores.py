"""Stage 5 of the features, scores: engagement and fit, both integers 0-100.

Added after the tiers (:func:`segengine.features.tiers.with_tiers`: the fit profile is
that of the ``top`` value tier) by :func:`with_scores`.

**engagement_score** = round(100 x weighted sum of capped components):

=================================  ======  ==============================
component                          weight  full marks at
=================================  ======  ==============================
visits_30d                         0.30    8 visits
time_on_site_30d                   0.15    60 minutes
email_opens_90d                    0.15    6 opens
email_clicks_90d                   0.15    3 clicks
purchase recency                   0.25    bought today; 0 after 365 days
=================================  ======  ==============================

**fit_score**: closeness to the average profile of the ``top`` value tier. Over the
features ``log1p`` of revenue_lifetime (negative clamped to 0), orders_lifetime,
avg_basket_value, distinct_categories, visits_30d and email_clicks_90d, each persona
is standardised with the mean and standard deviation of all personas of the snapshot;
``d2`` is the mean squared difference to the top tier's standardised centroid and
fit = round(100 x exp(-d2 / 2)). The statistics are one aggregate row cross-joined
back (no collect). With no top tier (no customers), fit is 0.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

FIT_FEATURES = (
    "revenue_lifetime",
    "orders_lifetime",
    "avg_basket_value",
    "distinct_categories",
    "visits_30d",
    "email_clicks_90d",
)
ENGAGEMENT_WEIGHTS = {
    "visits_30d": (0.30, 8.0),
    "time_on_site_30d": (0.15, 60.0),
    "email_opens_90d": (0.15, 6.0),
    "email_clicks_90d": (0.15, 3.0),
}
RECENCY_WEIGHT = 0.25
RECENCY_HORIZON_DAYS = 365.0


def _capped(col: str, full: float) -> Column:
    return F.least(F.coalesce(F.col(col).cast("double"), F.lit(0.0)) / full, F.lit(1.0))


def with_engagement_score(df: DataFrame) -> DataFrame:
    """Add ``engagement_score`` (see the module docstring for the formula)."""
    total = F.lit(0.0)
    for col, (weight, full) in ENGAGEMENT_WEIGHTS.items():
        total = total + F.lit(weight) * _capped(col, full)
    recency = F.greatest(F.lit(0.0), 1.0 - F.col("days_since_last_purchase") / RECENCY_HORIZON_DAYS)
    total = total + F.lit(RECENCY_WEIGHT) * F.coalesce(recency, F.lit(0.0))
    return df.withColumn("engagement_score", F.round(F.lit(100.0) * total).cast("int"))


def _fit_input(name: str) -> Column:
    return F.log1p(F.greatest(F.coalesce(F.col(name).cast("double"), F.lit(0.0)), F.lit(0.0)))


def with_fit_score(df: DataFrame) -> DataFrame:
    """Add ``fit_score`` (needs ``value_tier`` and :data:`FIT_FEATURES`)."""
    x = [_fit_input(n) for n in FIT_FEATURES]
    top = F.col("value_tier") == "top"
    stats = []
    for i, xi in enumerate(x):
        stats += [F.avg(xi).alias(f"_m{i}"), F.stddev_pop(xi).alias(f"_s{i}"), F.avg(F.when(top, xi)).alias(f"_c{i}")]
    profile = df.agg(*stats)  # one row, cross-joined back: the feature frame is not shuffled
    d2 = F.lit(0.0)
    for i, xi in enumerate(x):
        std = F.when(F.col(f"_s{i}") > 0, F.col(f"_s{i}")).otherwise(F.lit(1.0))
        d2 = d2 + F.pow((xi - F.col(f"_c{i}")) / std, 2)
    d2 = d2 / len(FIT_FEATURES)
    fit = F.coalesce(F.round(100.0 * F.exp(-d2 / 2.0)), F.lit(0.0)).cast("int")
    return df.crossJoin(F.broadcast(profile)).select(*df.columns, fit.alias("fit_score"))


def with_scores(df: DataFrame) -> DataFrame:
    """Add ``engagement_score`` and ``fit_score`` (after :func:`segengine.features.tiers.with_tiers`)."""
    return df.transform(with_engagement_score).transform(with_fit_score)
