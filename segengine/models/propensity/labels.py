"""Propensity training rows: the time windows, the two targets, their labels and the features at a cutoff."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypedDict

from pyspark.sql import functions as F

from segengine.errors import ConfigError
from segengine.features.profile import profile_features
from segengine.features.windows import cycle_start
from segengine.models.clv.features import customer_value_features
from segengine.models.cutoffs import (
    LabelWindow,
    money,
    shift_months,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

    from segengine.config import Config


class PropensityWindows(TypedDict):
    """The (cutoff, label end) windows of each role, lists most recent first."""

    train: list[LabelWindow]
    holdout: LabelWindow
    final: list[LabelWindow]


def propensity_windows(snapshot_date: dt.date, horizon_days: int, cutoffs: int = 6) -> PropensityWindows:
    """The (cutoff, label end) windows of each role; a label window is ``(cutoff, end]``.

    Args:
        snapshot_date: S.
        horizon_days: N, the label window's length in days.
        cutoffs: K, the stacked monthly cutoffs of training (and of the final refit).

    Returns:
        ``{"train": [(u, u + N), …], "holdout": (S - N, S), "final": [(u, u + N), …]}``,
        lists most recent first.

    Raises:
        ConfigError: a horizon or a number of cutoffs below 1.
    """
    if horizon_days < 1:
        raise ConfigError(f"propensity horizon: must be at least 1 day, got {horizon_days}")
    if cutoffs < 1:
        raise ConfigError(f"propensity cutoffs: must be at least 1, got {cutoffs}")
    horizon = dt.timedelta(days=horizon_days)
    holdout = snapshot_date - horizon

    def windows(last_cutoff: dt.date) -> list[LabelWindow]:
        return [(u, u + horizon) for u in (shift_months(last_cutoff, -j) for j in range(cutoffs))]

    return {"train": windows(holdout - horizon), "holdout": (holdout, snapshot_date), "final": windows(holdout)}


def propensity_labels(population: DataFrame, orders: DataFrame, cutoff: dt.date, horizon_days: int) -> DataFrame:
    """Both labels at ``cutoff`` for every persona of ``population``.

    Args:
        population: DataFrame(persona_id): the personas that exist at the cutoff (e.g. the
            feature snapshot of that date).
        orders: :func:`segengine.models.clv.order_facts` (one row per order, local dates).
        cutoff: u; orders on this day are history, not label.
        horizon_days: N.

    Returns:
        DataFrame(persona_id, cutoff date, bought_before boolean, purchase_next int,
        churned int (null when not bought_before)).
    """
    day, end = F.col("order_date"), F.lit(cutoff + dt.timedelta(days=horizon_days))
    purchases = orders.filter(F.col("is_purchase") & (day <= end))
    history = purchases.groupBy("persona_id").agg(
        F.max(day <= F.lit(cutoff)).alias("bought_before"),
        F.max(day > F.lit(cutoff)).alias("bought_after"),
    )
    joined = population.select("persona_id").distinct().join(history, "persona_id", "left")
    before = F.coalesce(F.col("bought_before"), F.lit(False))
    after = F.coalesce(F.col("bought_after"), F.lit(False))
    return joined.select(
        "persona_id",
        F.lit(cutoff).alias("cutoff"),
        before.alias("bought_before"),
        after.cast("int").alias("purchase_next"),
        F.when(before, (~after).cast("int")).alias("churned"),
    )


# ------------------------------------------------------------------ targets and inputs


@dataclass(frozen=True)
class Target:
    """One propensity model: its label, population, output columns and config fields."""

    key: str  # purchase | churn
    label: str  # the column of :func:`propensity_labels`
    column: str  # the catalog attribute scoring writes
    percentile: str  # its percentile among the scored personas (0-100)
    population: tuple[str, ...]  # persona types the model learns and scores
    horizon_field: str  # the ``propensity`` field holding N
    model_field: str  # the ``propensity`` field holding the registered model name

    def horizon(self, config: Config) -> int:
        return int(getattr(config.propensity, self.horizon_field))

    def model_name(self, config: Config) -> str:
        return str(getattr(config.propensity, self.model_field))


TARGETS: tuple[Target, ...] = (
    Target(
        "purchase",
        "purchase_next",
        "purchase_propensity_30d",
        "purchase_propensity_30d_pct",
        ("customer", "prospect"),
        "horizon_days",
        "purchase_model_name",
    ),
    Target("churn", "churned", "churn_risk", "churn_risk_pct", ("customer",), "churn_days", "churn_model_name"),
)
OUTPUT_COLUMNS: tuple[str, ...] = tuple(c for t in TARGETS for c in (t.column, t.percentile))


# ------------------------------------------------------------------ training rows


def propensity_features(
    orders: DataFrame, personas: DataFrame, cutoff: dt.date, cycle_months: int, tz: str, session_tz: str
) -> DataFrame:
    """Every persona that exists at ``cutoff`` with the catalog columns the models read, as then.

    The feature catalog's definitions (``docs/features.md``) computed from the order
    lines and personas only: the CLV model's order features
    (:func:`segengine.models.clv.customer_value_features`), the net revenue of the cycle
    before the current one, and the persona's profile columns
    (:func:`segengine.features.profile.profile_features`). A test holds them equal to the
    feature table's.

    Args:
        orders: :func:`segengine.models.clv.order_facts`.
        personas: bronze personas (a persona exists from its local creation date on).
        cutoff: the date the features describe (data up to the end of that day).
        cycle_months: ``features.cycle_months``.
        tz: ``features.timezone``.
        session_tz: the session time zone.

    Returns:
        persona_id, snapshot_date, persona_type (customer: a purchase on or before the
        cutoff; prospect: an email or phone; else visitor), days_since_created,
        consent_email, is_b2b, revenue_prev_cycle and the columns of
        :func:`segengine.models.clv.customer_value_features` (the order columns are
        null for non-customers).
    """
    value = customer_value_features(orders, personas, cutoff, cycle_months, tz, session_tz).drop(
        "snapshot_date", "persona_type"
    )
    current = cycle_start(cutoff, cycle_months)
    previous = cycle_start(current, cycle_months)
    day = F.col("order_date")
    prev = (
        orders.where((day >= F.lit(previous)) & (day < F.lit(current)))
        .groupBy("persona_id")
        .agg(F.sum("net_micros").alias("_prev_micros"))
    )
    profile = profile_features(personas, cutoff, tz, session_tz).select(
        "persona_id", "days_since_created", "consent_email", "is_b2b", "has_email", "has_phone"
    )
    customer = F.col("orders_lifetime").isNotNull()
    kind = F.when(customer, "customer").when(F.col("has_email") | F.col("has_phone"), "prospect").otherwise("visitor")
    micros = F.coalesce(F.col("_prev_micros"), F.lit(0).cast("long"))
    revenue_prev = F.when(customer, money(micros))
    joined = profile.join(value, "persona_id", "left").join(prev, "persona_id", "left")
    rest = [c for c in value.columns if c != "persona_id"]
    return joined.select(
        "persona_id",
        F.lit(cutoff).alias("snapshot_date"),
        kind.alias("persona_type"),
        "days_since_created",
        "consent_email",
        "is_b2b",
        revenue_prev.alias("revenue_prev_cycle"),
        *rest,
    )


def labelled_rows(
    features: DataFrame, orders: DataFrame, cutoff: dt.date, horizon_days: int, target: Target
) -> DataFrame:
    """The target's population at ``cutoff`` with its 0/1 ``label`` (double) in ``(cutoff, cutoff + N]``.

    Args:
        features: rows built at ``cutoff`` (:func:`propensity_features` or the feature table).
        orders: :func:`segengine.models.clv.order_facts`.
        cutoff: the features' snapshot date.
        horizon_days: N.
        target: which label and population.

    Returns:
        The population's feature rows plus ``label``.
    """
    population = features.where(F.col("persona_type").isin(*target.population))
    labels = propensity_labels(population, orders, cutoff, horizon_days)
    return population.join(
        labels.select("persona_id", F.col(target.label).cast("double").alias("label")), "persona_id"
    ).where(F.col("label").isNotNull())
