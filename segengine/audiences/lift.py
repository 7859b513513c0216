"""Lift of a campaign: treated vs holdout members, with bootstrap intervals, and the MDE before it.

For an audience with a holdout (:mod:`segengine.audiences.holdout`), the members on
the campaign date and their recorded group are joined to their orders in the
``window_days`` after it. Per group: conversion rate (share with an order), revenue
per member and orders per member; the lift is treated minus holdout (absolute) and
that over the holdout's value (relative).

Intervals come from a Poisson bootstrap computed in Spark: every member is repeated
once per replicate with a Poisson(1) weight (segengine.bootstrap: from a hash of the persona, the replicate and the seed),
the weighted means of both groups are aggregated per replicate, and the interval is
the percentiles of the replicates' lifts (``percentile_approx``). Only one row per
replicate is aggregated, nothing per member reaches the driver. The work is members x
replicates rows.

The minimum detectable effect is the usual two-proportion normal approximation:
``(z(1 - alpha/2) + z(power)) * sqrt(p (1 - p) (1/n_treated + 1/n_holdout))``.
"""

from __future__ import annotations

import datetime as dt
from statistics import NormalDist
from typing import TYPE_CHECKING, Any

from segengine.audiences.holdout import HOLDOUT, TREATED, get_holdout, member_groups
from segengine.audiences.membership import members_as_of
from segengine.audiences.registry import get_audience, stored_members
from segengine.bootstrap import poisson_weight
from segengine.errors import AudienceError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

    from segengine.lake import Lake

METRICS = {
    "conversion_rate": "converted",
    "revenue_per_member": "revenue",
    "orders_per_member": "orders",
}


def member_outcomes(lake: Lake, audience_id: str, campaign_date: dt.date, window_days: int) -> DataFrame:
    """persona_id, group, orders, revenue, converted for the members on ``campaign_date``.

    Members are those of ``audience_changes`` on that date (else every recorded group
    assigned by then); orders are those in the ``window_days`` after the campaign date
    (``order_ts`` from the next day, inclusive, up to ``campaign_date + window_days``).
    Revenue is quantity x unit_price, so refunds count against it.
    """
    from pyspark.sql import functions as F

    groups = member_groups(lake, audience_id).where(F.col("assigned_on") <= F.lit(campaign_date))
    if lake.exists("audience_changes"):
        changes = lake.read("audience_changes").where(F.col("audience_id") == F.lit(audience_id))
        on_date = members_as_of(changes, campaign_date).select("persona_id")
        groups = groups.join(on_date, "persona_id", "left_semi")
    start = dt.datetime.combine(campaign_date + dt.timedelta(days=1), dt.time())
    end = dt.datetime.combine(campaign_date + dt.timedelta(days=window_days + 1), dt.time())
    lines = lake.read("order_lines", where={"order_ts": (start, end)}).where(
        (F.col("order_ts") >= F.lit(start)) & (F.col("order_ts") < F.lit(end))
    )
    per_persona = lines.groupBy("persona_id").agg(
        F.countDistinct("order_id").alias("orders"),
        F.sum(F.col("quantity") * F.col("unit_price")).alias("revenue"),
    )
    return (
        groups.select("persona_id", "group")
        .join(per_persona, "persona_id", "left")
        .select(
            "persona_id",
            "group",
            F.coalesce(F.col("orders"), F.lit(0)).cast("long").alias("orders"),
            F.coalesce(F.col("revenue"), F.lit(0.0)).cast("double").alias("revenue"),
        )
        .withColumn("converted", (F.col("orders") > 0).cast("double"))
    )


def lift_from_outcomes(
    outcomes: DataFrame, bootstrap: int = 200, confidence: float = 0.95, seed: int = 7
) -> dict[str, Any]:
    """Treated vs holdout means and lifts, with bootstrap intervals, from per-member outcomes.

    Args:
        outcomes: persona_id, group (treated/holdout), converted (0/1), revenue, orders.
        bootstrap: replicates.
        confidence: of the two-sided intervals.
        seed: of the bootstrap's weights (same data and seed, same intervals).

    Returns:
        ``{"groups": {group: {"members", metric: mean}}, "lift": {metric: {"absolute",
        "absolute_ci", "relative", "relative_ci", "significant"}}, "bootstrap",
        "confidence"}``; ``significant`` when the absolute interval excludes 0.

    Raises:
        AudienceError: a group has no members.
    """
    from pyspark.sql import functions as F

    if bootstrap < 20 or not 0.5 < confidence < 1:
        raise AudienceError(
            f"lift: need at least 20 replicates and a confidence in (0.5, 1), got {bootstrap}, {confidence}"
        )
    spark = outcomes.sparkSession
    cols = list(METRICS.values())
    data = outcomes.select("persona_id", "group", *[F.col(c).cast("double").alias(c) for c in cols])

    def group_aggs(weight: Column) -> list[Column]:
        out = []
        for g in (TREATED, HOLDOUT):
            w = F.when(F.col("group") == F.lit(g), weight).otherwise(F.lit(0.0))
            out.append(F.sum(w).alias(f"n_{g}"))
            out.extend(F.sum(w * F.col(c)).alias(f"{c}_{g}") for c in cols)
        return out

    point = data.agg(*group_aggs(F.lit(1.0))).first()
    assert point is not None  # a global aggregate has exactly one row
    n_t, n_h = point[f"n_{TREATED}"] or 0, point[f"n_{HOLDOUT}"] or 0
    if not n_t or not n_h:
        raise AudienceError(f"lift: needs members in both groups, got {int(n_t)} treated and {int(n_h)} holdout")
    reps = spark.range(bootstrap).withColumnRenamed("id", "replicate")
    weighted = data.crossJoin(reps).withColumn(
        "_w", poisson_weight(F.col("persona_id"), F.col("replicate"), seed).cast("double")
    )
    per_rep = weighted.groupBy("replicate").agg(*group_aggs(F.col("_w")))
    lifts = []
    for metric, c in METRICS.items():
        # try_divide: a replicate whose holdout draws no member (or no buyer) gives null, not an error.
        t = F.try_divide(F.col(f"{c}_{TREATED}"), F.col(f"n_{TREATED}"))
        h = F.try_divide(F.col(f"{c}_{HOLDOUT}"), F.col(f"n_{HOLDOUT}"))
        lifts += [(t - h).alias(f"{metric}_abs"), F.try_divide(t - h, h).alias(f"{metric}_rel")]
    alpha = 1 - confidence
    probs = F.array(F.lit(alpha / 2), F.lit(1 - alpha / 2))
    ci = (
        per_rep.select(*lifts)
        .agg(
            *[
                F.percentile_approx(F.col(f"{m}_{k}"), probs, 10000).alias(f"{m}_{k}")
                for m in METRICS
                for k in ("abs", "rel")
            ]
        )
        .first()
    )
    assert ci is not None  # a global aggregate has exactly one row
    groups = {
        g: {"members": int(point[f"n_{g}"]), **{m: point[f"{c}_{g}"] / point[f"n_{g}"] for m, c in METRICS.items()}}
        for g in (TREATED, HOLDOUT)
    }
    lift = {}
    for m in METRICS:
        t, h = groups[TREATED][m], groups[HOLDOUT][m]
        lo, hi = ci[f"{m}_abs"]
        rel_ci = ci[f"{m}_rel"]
        lift[m] = {
            "absolute": t - h,
            "absolute_ci": [lo, hi],
            "relative": (t - h) / h if h else None,
            "relative_ci": list(rel_ci) if rel_ci is not None and h else None,
            "significant": lo > 0 or hi < 0,
        }
    return {"groups": groups, "lift": lift, "bootstrap": bootstrap, "confidence": confidence}


def lift_report(
    spark: SparkSession,
    lake: Lake,
    audience: str,
    campaign_date: dt.date,
    window_days: int = 30,
    user: str | None = None,
    bootstrap: int = 200,
    confidence: float = 0.95,
    seed: int = 7,
) -> dict[str, Any]:
    """The lift of a campaign sent on ``campaign_date`` to an audience with a holdout.

    Returns:
        :func:`lift_from_outcomes`'s answer with ``audience``, ``campaign_date`` and
        ``window_days``.
    """
    aud = get_audience(spark, lake, audience, user)
    if not lake.exists("audience_groups") or get_holdout(lake, aud.audience_id) is None:
        raise AudienceError(f"audience {aud.name!r} has no holdout; set one before the campaign (audience holdout)")
    if not lake.exists("order_lines"):
        raise AudienceError("lift: there is no order_lines table to measure outcomes with")
    outcomes = member_outcomes(lake, aud.audience_id, campaign_date, window_days).localCheckpoint(eager=True)
    out = lift_from_outcomes(outcomes, bootstrap, confidence, seed)
    return {"audience": aud.name, "campaign_date": campaign_date.isoformat(), "window_days": window_days, **out}


def minimum_detectable_effect(
    members: int, holdout_share: float, base_rate: float, alpha: float = 0.05, power: float = 0.8
) -> dict[str, Any]:
    """The smallest conversion-rate lift a two-sided test would detect with ``power``.

    Args:
        members: audience size.
        holdout_share: share held out (0-1).
        base_rate: expected conversion rate without the campaign.

    Returns:
        ``{"treated", "holdout", "base_rate", "absolute", "relative"}`` (None when a
        group would be empty or the base rate is 0 or 1).
    """
    n_h = round(members * holdout_share)
    n_t = members - n_h
    out: dict[str, Any] = {"treated": n_t, "holdout": n_h, "base_rate": base_rate, "alpha": alpha, "power": power}
    if n_t < 1 or n_h < 1 or not 0 < base_rate < 1:
        return {**out, "absolute": None, "relative": None}
    z = NormalDist().inv_cdf(1 - alpha / 2) + NormalDist().inv_cdf(power)
    absolute = z * (base_rate * (1 - base_rate) * (1 / n_t + 1 / n_h)) ** 0.5
    return {**out, "absolute": absolute, "relative": absolute / base_rate}


def estimate_mde(
    spark: SparkSession,
    lake: Lake,
    audience: str,
    as_of: dt.date,
    window_days: int = 30,
    holdout_share: float | None = None,
    user: str | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
) -> dict[str, Any]:
    """MDE before a campaign: the audience's size now, its members' conversion rate over
    the ``window_days`` up to ``as_of`` as the base rate, the holdout share set (or given)."""
    from pyspark.sql import functions as F

    aud = get_audience(spark, lake, audience, user)
    share = holdout_share
    if share is None:
        holdout = get_holdout(lake, aud.audience_id)
        if holdout is None:
            raise AudienceError(f"audience {aud.name!r} has no holdout; give the share to plan with (--share)")
        share = holdout.share
    current = stored_members(lake, aud.audience_id).select("persona_id")
    start = dt.datetime.combine(as_of - dt.timedelta(days=window_days - 1), dt.time())
    end = dt.datetime.combine(as_of + dt.timedelta(days=1), dt.time())
    buyers = (
        lake.read("order_lines", where={"order_ts": (start, end)})
        .where((F.col("order_ts") >= F.lit(start)) & (F.col("order_ts") < F.lit(end)))
        .select("persona_id")
        .distinct()
    )
    row = (
        current.join(buyers.withColumn("_b", F.lit(1)), "persona_id", "left")
        .agg(F.count("*").alias("n"), F.count("_b").alias("buyers"))
        .first()
    )
    assert row is not None  # a global aggregate has exactly one row
    size = int(row["n"])
    base = row["buyers"] / size if size else 0.0
    return {"audience": aud.name, "members": size, **minimum_detectable_effect(size, share, base, alpha, power)}
