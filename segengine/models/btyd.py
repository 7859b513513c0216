"""BG/NBD and Gamma-Gamma ("buy till you die") fitted at scale; predictions in Spark.

BG/NBD (Fader, Hardie and Lee 2005, "Counting your customers the easy way") models the
repeat purchases of a customer as Poisson with rate lambda ~ Gamma(r, alpha), who may
drop out after each purchase with probability p ~ Beta(a, b). Gamma-Gamma (Fader, Hardie
and Lee 2005, note 025) models the mean value of a customer's repeat purchases with
parameters (p, q, v). The likelihoods and the conditional expectations are those of
the ``lifetimes`` package (0.11.3), whose results a test reproduces. Why not call
``lifetimes`` itself: its predictions are numpy over per-customer arrays on one machine,
where these must be Spark columns over every customer, and it is a development
dependency only (it brings autograd); the formulas are short and the test pins them.

How it scales:

1. :func:`btyd_summary` aggregates, in Spark, each customer's sufficient statistics
   from the order facts up to the end of the cutoff day: a *purchase day* is a local
   day with at least one purchase (several orders of one day count once, as in
   ``lifetimes.utils.summary_data_from_transaction_data``); ``frequency`` x = purchase
   days after the first, ``recency`` t_x = first to last purchase day, ``T`` = first
   purchase day to the cutoff, both in units of ``unit_days`` days (default 7: weeks),
   and ``monetary`` = the mean net value of the repeat purchase days.
2. The BG/NBD likelihood depends on a customer through (x, t_x, T) only. For the fit
   (:func:`fit_bgnbd`), t_x and T are **rounded to whole units** (weeks by default) and
   the customers grouped by the distinct triples with a count; only those grouped
   rows reach the driver. T in weeks is below 520 for ten years of history, t_x <= T,
   and x is small for almost everyone, so 10M customers give at most a few hundred
   thousand triples (CDNOW's 23,570 customers give a few thousand). Rounding moves
   each time by at most half a unit, which changes the parameters by far less than
   their standard errors.
3. The Gamma-Gamma likelihood depends on (x, m_x); for its fit (:func:`fit_gamma_gamma`)
   m_x is rounded to **3 significant digits** (at most 0.05% off) and the repeat
   customers (x > 0, m_x > 0) grouped by (x, rounded m_x) with a count.
4. Both are maximised on the driver with ``scipy.optimize.minimize`` (BFGS over the
   log parameters, analytic gradients, time rescaled so the largest T is 1, the same
   objective and penaliser as ``lifetimes``: the weighted mean negative
   log-likelihood plus ``penalizer * sum(params**2)``).
5. Predictions (:func:`btyd_predict`, :class:`BtydModel`) are per-customer column
   expressions on the *unrounded* statistics: P(alive), expected transactions in the
   horizon, expected mean value, expected spend.

The conditional expectation of transactions needs the Gauss hypergeometric function
2F1(r+x, b+x; a+b+x-1; z), z = t / (alpha + T + t). It is the one part computed by a
pandas (Arrow) UDF, ``scipy.special.hyp2f1``, vectorised per batch: a fixed-term series
in SQL expressions is not accurate over the range that occurs. The series' terms behave
like n^(a-r-x-2) z^n (after Euler's transformation, the better-behaved form), so for a
customer whose first purchase is recent (T small against the horizon, z near 1) and a
fitted ``a`` above 2 they *grow* for hundreds of terms before they fall: no fixed number
of terms is right for every customer and every fitted model, and a wrong one is silently
wrong. Everything else is built-in column functions.
"""

from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray
from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable

from segengine.errors import ModelError

if TYPE_CHECKING:
    import datetime as dt

    from pyspark.sql import Column, DataFrame

MICROS = 1_000_000
UNIT_DAYS = 7.0
# The columns :func:`btyd_summary` adds and :class:`BtydModel` reads / writes.
SUMMARY_COLUMNS = ("btyd_frequency", "btyd_recency", "btyd_T", "btyd_monetary")
OUTPUT_COLUMNS = ("btyd_p_alive", "btyd_expected_transactions", "btyd_expected_value", "btyd_expected_spend")


@dataclasses.dataclass(frozen=True)
class BgNbdParams:
    """Fitted BG/NBD parameters; ``alpha`` is in the summary's time unit."""

    r: float
    alpha: float
    a: float
    b: float
    unit_days: float = UNIT_DAYS
    customers: int = 0  # customers in the fit
    groups: int = 0  # distinct (x, t_x, T) triples the likelihood was evaluated on
    neg_log_likelihood: float = math.nan


@dataclasses.dataclass(frozen=True)
class GammaGammaParams:
    """Fitted Gamma-Gamma parameters (money in the orders' currency)."""

    p: float
    q: float
    v: float
    customers: int = 0
    groups: int = 0
    neg_log_likelihood: float = math.nan


# ------------------------------------------------------------------ statistics in Spark


def btyd_summary(orders: DataFrame, cutoff: dt.date, unit_days: float = UNIT_DAYS) -> DataFrame:
    """Each customer's BG/NBD and Gamma-Gamma statistics from the orders up to ``cutoff``.

    Args:
        orders: :func:`segengine.models.clv.order_facts` (persona_id, order_date,
            is_purchase, net_micros).
        cutoff: the last day of history (inclusive).
        unit_days: the time unit of ``btyd_recency`` and ``btyd_T``, in days.

    Returns:
        DataFrame(persona_id, btyd_frequency int, btyd_recency double, btyd_T double,
        btyd_monetary double): one row per persona with at least one purchase day.
        ``btyd_monetary`` is the mean net value of the repeat purchase days (refunds of
        a day are netted in that day), 0 when there is none.
    """
    from pyspark.sql import functions as F

    day = F.col("order_date")
    days = (
        orders.where(day <= F.lit(cutoff))
        .groupBy("persona_id", "order_date")
        .agg(F.max("is_purchase").alias("_buy"), F.sum("net_micros").alias("_micros"))
        .where(F.col("_buy"))
    )
    unit = F.lit(float(unit_days))
    return (
        days.groupBy("persona_id")
        .agg(
            F.min("order_date").alias("_first"),
            F.max("order_date").alias("_last"),
            (F.count(F.lit(1)) - F.lit(1)).cast("int").alias("btyd_frequency"),
            # Net value of the repeat days: all days less the first one.
            (F.sum("_micros") - F.min_by("_micros", "order_date")).alias("_repeat_micros"),
        )
        .select(
            "persona_id",
            "btyd_frequency",
            (F.datediff("_last", "_first").cast("double") / unit).alias("btyd_recency"),
            (F.datediff(F.lit(cutoff), "_first").cast("double") / unit).alias("btyd_T"),
            F.when(
                F.col("btyd_frequency") > 0,
                F.col("_repeat_micros").cast("double") / F.lit(float(MICROS)) / F.col("btyd_frequency"),
            )
            .otherwise(F.lit(0.0))
            .alias("btyd_monetary"),
        )
    )


def bgnbd_triples(summary: DataFrame) -> DataFrame:
    """The distinct (x, t_x, T) of :func:`btyd_summary`, times rounded to whole units, with counts.

    Returns:
        DataFrame(frequency int, recency double, T double, n long): small (see the module
        docstring), the only BG/NBD data that reaches the driver.
    """
    from pyspark.sql import functions as F

    return summary.groupBy(
        F.col("btyd_frequency").alias("frequency"),
        F.round("btyd_recency").alias("recency"),
        F.round("btyd_T").alias("T"),
    ).agg(F.count(F.lit(1)).alias("n"))


def _significant(col: Column, digits: int) -> Column:
    """``col`` (> 0) rounded to ``digits`` significant digits."""
    from pyspark.sql import functions as F

    scale = F.pow(F.lit(10.0), F.floor(F.log10(col)) - F.lit(digits - 1))
    return F.round(col / scale) * scale


def gamma_gamma_groups(summary: DataFrame, digits: int = 3) -> DataFrame:
    """Repeat customers (x > 0, mean repeat value > 0) grouped by (x, value to ``digits`` significant digits).

    Returns:
        DataFrame(frequency int, monetary double, n long).
    """
    from pyspark.sql import functions as F

    return (
        summary.where((F.col("btyd_frequency") > 0) & (F.col("btyd_monetary") > 0))
        .groupBy(
            F.col("btyd_frequency").alias("frequency"),
            _significant(F.col("btyd_monetary"), digits).alias("monetary"),
        )
        .agg(F.count(F.lit(1)).alias("n"))
    )


# ------------------------------------------------------------------ likelihoods on the driver


def _bgnbd_nll(
    log_params: NDArray[Any], x: NDArray[Any], tx: NDArray[Any], T: NDArray[Any], w: NDArray[Any], pen: float
) -> tuple[float, NDArray[Any]]:
    """lifetimes' BG/NBD objective and its gradient in the log parameters."""
    from scipy.special import digamma, gammaln

    r, alpha, a, b = np.exp(log_params)
    bx1 = b + np.maximum(x, 1) - 1
    a1 = gammaln(r + x) - gammaln(r) + r * np.log(alpha)
    a2 = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    a3 = -(r + x) * np.log(alpha + T)
    a4 = np.log(a) - np.log(bx1) - (r + x) * np.log(alpha + tx)
    repeat = x > 0
    top = np.where(repeat, np.maximum(a3, a4), a3)
    e3 = np.exp(a3 - top)
    e4 = np.where(repeat, np.exp(a4 - top), 0.0)
    total = e3 + e4
    ll = a1 + a2 + np.log(total) + top
    w3, w4 = e3 / total, e4 / total
    sw = w.sum()
    params = np.array([r, alpha, a, b])
    value = -(w * ll).sum() / sw + pen * (params**2).sum()
    d_r = digamma(r + x) - digamma(r) + np.log(alpha) - w3 * np.log(alpha + T) - w4 * np.log(alpha + tx)
    d_alpha = r / alpha - w3 * (r + x) / (alpha + T) - w4 * (r + x) / (alpha + tx)
    d_a = digamma(a + b) - digamma(a + b + x) + w4 / a
    d_b = digamma(a + b) + digamma(b + x) - digamma(b) - digamma(a + b + x) - w4 / bx1
    grad_ll = np.array([(w * d).sum() for d in (d_r, d_alpha, d_a, d_b)])
    grad = (-grad_ll / sw + 2 * pen * params) * params  # chain rule: d/d log(theta) = theta d/d theta
    return value, grad


def _gamma_gamma_nll(
    log_params: NDArray[Any], x: NDArray[Any], m: NDArray[Any], w: NDArray[Any], pen: float
) -> tuple[float, NDArray[Any]]:
    """lifetimes' Gamma-Gamma objective and its gradient in the log parameters."""
    from scipy.special import digamma, gammaln

    p, q, v = np.exp(log_params)
    px = p * x
    xmv = x * m + v
    ll = (
        gammaln(px + q)
        - gammaln(px)
        - gammaln(q)
        + q * np.log(v)
        + (px - 1) * np.log(m)
        + px * np.log(x)
        - (px + q) * np.log(xmv)
    )
    sw = w.sum()
    params = np.array([p, q, v])
    value = -(w * ll).sum() / sw + pen * (params**2).sum()
    d_p = x * (digamma(px + q) - digamma(px) + np.log(m) + np.log(x) - np.log(xmv))
    d_q = digamma(px + q) - digamma(q) + np.log(v) - np.log(xmv)
    d_v = q / v - (px + q) / xmv
    grad_ll = np.array([(w * d).sum() for d in (d_p, d_q, d_v)])
    grad = (-grad_ll / sw + 2 * pen * params) * params
    return value, grad


def _minimize(fun: Any, size: int, args: tuple[Any, ...], what: str, bounds: Any = None) -> Any:
    from scipy.optimize import minimize

    # lifetimes' start (log parameters 0.1) and method (BFGS, L-BFGS-B with bounds); a
    # tighter tolerance. A line search may try huge parameters on the way (overflow
    # there is expected, not an error).
    x0 = np.full(size, 0.1)
    with np.errstate(all="ignore"):
        if bounds is None:
            out = minimize(fun, x0=x0, args=args, jac=True, method="BFGS", options={"gtol": 1e-10})
        else:
            x0 = np.maximum(x0, [lo if lo is not None else -np.inf for lo, _ in bounds])
            out = minimize(fun, x0=x0, args=args, jac=True, method="L-BFGS-B", bounds=bounds)
    if not np.all(np.isfinite(out.x)) or not np.isfinite(out.fun):
        raise ModelError(f"{what}: the likelihood did not converge ({out.message}); try a penalizer above 0")
    return out


def fit_bgnbd_arrays(
    frequency: Any,
    recency: Any,
    T: Any,
    weights: Any = None,
    penalizer: float = 0.0,
    unit_days: float = UNIT_DAYS,
) -> BgNbdParams:
    """Maximise the BG/NBD likelihood over (possibly grouped) customers on the driver.

    Args:
        frequency: repeat purchase days x per row.
        recency: t_x per row, in the time unit.
        T: age per row, in the time unit.
        weights: customers per row (default 1 each).
        penalizer: ``lifetimes``' ``penalizer_coef``.
        unit_days: the time unit in days (recorded with the parameters).

    Returns:
        The parameters, ``alpha`` in the time unit.

    Raises:
        ModelError: no customer, an inconsistent row, or no convergence.
    """
    x = np.asarray(frequency, dtype=float)
    tx = np.asarray(recency, dtype=float)
    age = np.asarray(T, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    if x.size == 0 or w.sum() <= 0:
        raise ModelError("BG/NBD: no customers to fit")
    bad = np.flatnonzero((x < 0) | (tx < 0) | (tx > age) | ((x == 0) & (tx != 0)))
    if bad.size:
        i = int(bad[0])
        raise ModelError(
            f"BG/NBD: row {i} has frequency {x[i]:g}, recency {tx[i]:g}, T {age[i]:g}: needs 0 <= recency <= T "
            "and recency 0 when frequency is 0"
        )
    scale = 1.0 / age.max() if age.max() > 0 else 1.0
    out = _minimize(_bgnbd_nll, 4, (x, tx * scale, age * scale, w, penalizer), "BG/NBD")
    r, alpha, a, b = np.exp(out.x)
    return BgNbdParams(
        r=float(r),
        alpha=float(alpha / scale),
        a=float(a),
        b=float(b),
        unit_days=float(unit_days),
        customers=int(w.sum()),
        groups=int(x.size),
        neg_log_likelihood=float(out.fun),
    )


def fit_gamma_gamma_arrays(
    frequency: Any, monetary: Any, weights: Any = None, penalizer: float = 0.0, q_min: float | None = None
) -> GammaGammaParams:
    """Maximise the Gamma-Gamma likelihood over (possibly grouped) repeat customers.

    Args:
        frequency: repeat purchase days x per row (> 0).
        monetary: mean repeat purchase value per row (> 0).
        weights: customers per row (default 1 each).
        penalizer: ``lifetimes``' ``penalizer_coef``.
        q_min: constrain q to at least this (q <= 1 leaves the expected value undefined:
            spend too heavy-tailed for the model); default unconstrained, as lifetimes.

    Raises:
        ModelError: no repeat customer, a row with x or value not above 0, no
            convergence, or q <= 1.
    """
    x = np.asarray(frequency, dtype=float)
    m = np.asarray(monetary, dtype=float)
    w = np.ones_like(x) if weights is None else np.asarray(weights, dtype=float)
    if x.size == 0 or w.sum() <= 0:
        raise ModelError("Gamma-Gamma: no repeat customer with a positive mean value to fit")
    bad = np.flatnonzero((x <= 0) | (m <= 0))
    if bad.size:
        i = int(bad[0])
        raise ModelError(f"Gamma-Gamma: row {i} has frequency {x[i]:g}, monetary {m[i]:g}: both must be above 0")
    bounds = None if q_min is None else [(None, None), (math.log(q_min), None), (None, None)]
    out = _minimize(_gamma_gamma_nll, 3, (x, m, w, penalizer), "Gamma-Gamma", bounds)
    p, q, v = np.exp(out.x)
    if q <= 1:
        raise ModelError(f"Gamma-Gamma: fitted q = {q:.4g} <= 1, the expected value is undefined; use a penalizer")
    return GammaGammaParams(
        p=float(p),
        q=float(q),
        v=float(v),
        customers=int(w.sum()),
        groups=int(x.size),
        neg_log_likelihood=float(out.fun),
    )


def fit_bgnbd(summary: DataFrame, penalizer: float = 0.0, unit_days: float = UNIT_DAYS) -> BgNbdParams:
    """BG/NBD fitted on the grouped triples of ``summary`` (:func:`bgnbd_triples`).

    Args:
        summary: :func:`btyd_summary` rows (times in units of ``unit_days``).
        penalizer: ``lifetimes``' ``penalizer_coef``.
        unit_days: the unit the summary was built with.
    """
    rows = bgnbd_triples(summary).orderBy("frequency", "recency", "T").collect()  # grouped: small
    if not rows:
        raise ModelError("BG/NBD: no customer with a purchase before the cutoff")
    cols = np.array([(r["frequency"], r["recency"], r["T"], r["n"]) for r in rows], dtype=float)
    return fit_bgnbd_arrays(cols[:, 0], cols[:, 1], cols[:, 2], cols[:, 3], penalizer, unit_days)


def fit_gamma_gamma(
    summary: DataFrame, penalizer: float = 0.0, digits: int = 3, q_min: float | None = None
) -> GammaGammaParams:
    """Gamma-Gamma fitted on the grouped repeat customers of ``summary`` (:func:`gamma_gamma_groups`)."""
    rows = gamma_gamma_groups(summary, digits).orderBy("frequency", "monetary").collect()  # grouped: small
    if not rows:
        raise ModelError("Gamma-Gamma: no repeat customer with a positive mean value before the cutoff")
    cols = np.array([(r["frequency"], r["monetary"], r["n"]) for r in rows], dtype=float)
    return fit_gamma_gamma_arrays(cols[:, 0], cols[:, 1], cols[:, 2], penalizer, q_min)


# ------------------------------------------------------------------ predictions in Spark


def _log_hyp2f1(a: pd.Series, b: pd.Series, c: pd.Series, z: pd.Series) -> pd.Series:
    """log 2F1(a, b; c; z) as lifetimes computes it (Euler's transformation when 2F1 overflows)."""
    from scipy.special import hyp2f1

    a, b, c, z = (np.asarray(s, dtype=float) for s in (a, b, c, z))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        direct = np.log(hyp2f1(a, b, c, z))
        alt = np.log(hyp2f1(c - a, c - b, c, z)) + (c - a - b) * np.log1p(-z)
    return pd.Series(np.where(np.isinf(direct), alt, direct))


def _log_hyp2f1_udf() -> Any:
    from pyspark.sql.pandas.functions import pandas_udf

    # The stubs' overloads want a Series-typed function; pandas has no stubs here.
    return pandas_udf(_log_hyp2f1, "double")  # type: ignore[call-overload]


def bgnbd_columns(params: BgNbdParams, x: Column, tx: Column, T: Column, horizon: Column) -> dict[str, Column]:
    """P(alive) and expected transactions in ``horizon`` (all times in the params' unit).

    lifetimes' ``conditional_probability_alive`` and
    ``conditional_expected_number_of_purchases_up_to_time`` (FHL 2005 eq. 10).
    """
    from pyspark.sql import functions as F

    r, alpha, a, b = (F.lit(float(v)) for v in (params.r, params.alpha, params.a, params.b))
    xd = x.cast("double")
    repeat = x > 0
    # a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x), for x > 0 only.
    odds = F.when(
        repeat,
        a / (b + F.greatest(xd, F.lit(1.0)) - 1) * F.exp((r + xd) * F.log((alpha + T) / (alpha + tx))),
    ).otherwise(F.lit(0.0))
    p_alive = F.lit(1.0) / (F.lit(1.0) + odds)
    z = horizon / (alpha + T + horizon)
    log_hyp = _log_hyp2f1_udf()(r + xd, b + xd, a + b + xd - 1, z)
    expected = (
        (a + b + xd - 1)
        / (a - 1)
        * (F.lit(1.0) - F.exp(log_hyp + (r + xd) * F.log((alpha + T) / (alpha + T + horizon))))
        * p_alive
    )
    return {"btyd_p_alive": p_alive, "btyd_expected_transactions": expected}


def gamma_gamma_column(params: GammaGammaParams, x: Column, monetary: Column) -> Column:
    """Expected mean transaction value (lifetimes' ``conditional_expected_average_profit``).

    A customer without repeat purchases gets the population mean p v / (q - 1); a
    negative mean (refunds) counts as 0.
    """
    from pyspark.sql import functions as F

    p, q, v = (F.lit(float(val)) for val in (params.p, params.q, params.v))
    xd = x.cast("double")
    weight = p * xd / (p * xd + q - 1)
    population = v * p / (q - 1)
    return (F.lit(1.0) - weight) * population + weight * F.greatest(monetary, F.lit(0.0))


def btyd_predict(summary: DataFrame, bgnbd: BgNbdParams, gamma_gamma: GammaGammaParams, horizon: Column) -> DataFrame:
    """``summary`` plus :data:`OUTPUT_COLUMNS` for a horizon given in the summary's time unit.

    Args:
        summary: rows with :data:`SUMMARY_COLUMNS`.
        bgnbd: fitted BG/NBD.
        gamma_gamma: fitted Gamma-Gamma.
        horizon: the prediction horizon, a column (or literal) in the time unit.
    """
    from pyspark.sql import functions as F

    x, tx, T, m = (F.col(c) for c in SUMMARY_COLUMNS)
    cols = bgnbd_columns(bgnbd, x, tx, T, horizon)
    value = gamma_gamma_column(gamma_gamma, x, m)
    out = summary.withColumns({**cols, "btyd_expected_value": value})
    return out.withColumn("btyd_expected_spend", F.col("btyd_expected_transactions") * F.col("btyd_expected_value"))


# ------------------------------------------------------------------ the pipeline stage


class _BtydParams(Params):
    bgnbd: Param[list[float]] = Param(
        Params._dummy(), "bgnbd", "BG/NBD r, alpha, a, b (alpha in unitDays)", typeConverter=TypeConverters.toListFloat
    )
    gammaGamma: Param[list[float]] = Param(
        Params._dummy(), "gammaGamma", "Gamma-Gamma p, q, v", typeConverter=TypeConverters.toListFloat
    )
    unitDays: Param[float] = Param(
        Params._dummy(), "unitDays", "time unit in days", typeConverter=TypeConverters.toFloat
    )
    horizonMonths: Param[int] = Param(
        Params._dummy(),
        "horizonMonths",
        "prediction horizon: months after each row's dateCol",
        typeConverter=TypeConverters.toInt,
    )
    dateCol: Param[str] = Param(
        Params._dummy(), "dateCol", "the date the history ends (inclusive)", typeConverter=TypeConverters.toString
    )

    def __init__(self, *args: Any):
        super().__init__(*args)
        self._setDefault(bgnbd=[], gammaGamma=[], unitDays=UNIT_DAYS, horizonMonths=6, dateCol="snapshot_date")


class BtydModel(Transformer, _BtydParams, DefaultParamsReadable["BtydModel"], DefaultParamsWritable):
    """Adds :data:`OUTPUT_COLUMNS` to rows with :data:`SUMMARY_COLUMNS` and a date column.

    The horizon of a row runs from its date to ``horizonMonths`` later (month ends
    clamp, as ``add_months``), converted to the time unit. Saved with the pipeline
    (``DefaultParamsWritable``), so MLflow's spark flavour stores the fitted parameters.
    """

    # Set by @keyword_only on every call; declared here as pyspark's own stages do.
    _input_kwargs: dict[str, Any]

    @keyword_only
    def __init__(
        self,
        *,
        bgnbd: list[float] | None = None,
        gammaGamma: list[float] | None = None,
        unitDays: float | None = None,
        horizonMonths: int | None = None,
        dateCol: str | None = None,
    ):
        super().__init__()
        self._set(**{k: v for k, v in self._input_kwargs.items() if v is not None})

    @classmethod
    def of(cls, bgnbd: BgNbdParams, gamma_gamma: GammaGammaParams, horizon_months: int) -> BtydModel:
        """The stage for fitted parameters."""
        return cls(
            bgnbd=[bgnbd.r, bgnbd.alpha, bgnbd.a, bgnbd.b],
            gammaGamma=[gamma_gamma.p, gamma_gamma.q, gamma_gamma.v],
            unitDays=bgnbd.unit_days,
            horizonMonths=horizon_months,
        )

    def params_of(self) -> tuple[BgNbdParams, GammaGammaParams]:
        bg, gg = self.getOrDefault(self.bgnbd), self.getOrDefault(self.gammaGamma)
        if len(bg) != 4 or len(gg) != 3:
            raise ModelError("BtydModel has no fitted parameters (bgnbd needs 4 values, gammaGamma 3)")
        unit = self.getOrDefault(self.unitDays)
        r, alpha, a, b = bg
        p, q, v = gg
        return BgNbdParams(r, alpha, a, b, unit_days=unit), GammaGammaParams(p, q, v)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        from pyspark.sql import functions as F

        bg, gg = self.params_of()
        missing = [c for c in (*SUMMARY_COLUMNS, self.getOrDefault(self.dateCol)) if c not in dataset.columns]
        if missing:
            raise ModelError(f"BtydModel: input rows lack column(s) {', '.join(missing)} (see btyd_summary)")
        day = F.col(self.getOrDefault(self.dateCol))
        horizon = F.datediff(F.add_months(day, self.getOrDefault(self.horizonMonths)), day).cast("double") / F.lit(
            float(bg.unit_days)
        )
        return btyd_predict(dataset, bg, gg, horizon)
