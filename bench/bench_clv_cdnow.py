"""Benchmark: CLV on real data, CDNOW, against lifetimes (``python -m bench.run --only clv_cdnow``).

CDNOW (23,570 customers who first bought in Q1 1997, purchases to 1998-06-30) ships in
the ``lifetimes`` wheel as ``lifetimes/datasets/CDNOW_master.txt``; it is read from the
installed package at run time and never copied into the repository. Each line becomes
one order (quantity = CDs, unit price = value / CDs) of a persona created on its first
purchase day, written to a scratch lake.

For each snapshot S and horizon c (months) the actual value of a customer is the net
spend in (S, S + c] (S + c as ``clv_windows`` computes it: 1997-09-30 + 3 months is
1997-12-30), over every customer with a purchase up to S. Three predictions:

(a) ``regressor``: ``train_clv`` (the product: GBT over the catalog inputs and the
    BG/NBD + Gamma-Gamma predictions, monthly stacked cutoffs, MLflow), its final model
    applied to the customers at S. It needs two cycles of history before S (the holdout
    and at least one training window), so it runs only where that fits the data.
(b) ``bgnbd``: our BG/NBD + Gamma-Gamma (:mod:`segengine.models.btyd`) fitted on the
    history up to S, the stage that ``clv.algorithm: bgnbd`` registers.
(c) ``lifetimes``: ``BetaGeoFitter`` + ``GammaGammaFitter`` (default settings, no
    penalizer, daily summary by ``summary_data_from_transaction_data``) fitted in the
    same run on the same history.

(d) ``zero``: 0 for every customer. Not a model: the reference that shows what MAE
    rewards. Most customers buy nothing in a horizon, so MAE is smallest at the median
    forecast (0 for most), while CLV is an expected value (what a predicted total adds up).

Reported per snapshot and horizon: MAE, RMSE and predicted total / actual total for
each, and the MAE and RMSE of (a), (b) and (d) as ratios of lifetimes' with a 95%
bootstrap interval over customers (1,000 resamples, seed 0). The per-customer errors are collected to
pandas here (23,570 rows): acceptable in a benchmark, never in the product.
Goal (issue 35): MAE <= 0.9x lifetimes' and predicted total within +-5% of actual.
"""

from __future__ import annotations

import datetime as dt
import os
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd

# (snapshot, horizon in months): every pair whose label window ends by 1998-06-30.
PAIRS: tuple[tuple[str, int], ...] = (
    ("1997-06-30", 3),
    ("1997-06-30", 6),
    ("1997-09-30", 3),
    ("1997-09-30", 6),
    ("1997-12-31", 3),
    ("1997-12-31", 6),
    ("1998-03-31", 3),
)
BOOTSTRAP = 1000


def read_cdnow() -> pd.DataFrame:
    """CDNOW_master.txt from the installed lifetimes wheel: customer, date, cds, value."""
    text = resources.files("lifetimes").joinpath("datasets/CDNOW_master.txt").read_text()
    rows = [line.split() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("customer")]
    df = pd.DataFrame(rows, columns=["customer", "date", "cds", "value"])
    return df.assign(
        date=pd.to_datetime(df["date"], format="%Y%m%d"),
        cds=df["cds"].astype(int),
        value=df["value"].astype(float),
    )


def _bronze(spark: Any, lake: Any, cdnow: pd.DataFrame) -> None:
    from pyspark.sql import functions as F

    from segengine.contract import spark_schema

    lines = pd.DataFrame(
        {
            "order_id": [f"{c}-{i}" for i, c in enumerate(cdnow["customer"])],
            "line_no": 1,
            "persona_id": cdnow["customer"],
            "order_ts": cdnow["date"] + pd.Timedelta(hours=12),
            "channel": "web",
            "product_id": "CD",
            "quantity": cdnow["cds"].clip(lower=1),
            "unit_price": cdnow["value"] / cdnow["cds"].clip(lower=1),
        }
    )
    first = cdnow.groupby("customer", as_index=False)["date"].min()
    personas = pd.DataFrame({"persona_id": first["customer"], "created_at": first["date"]})
    for table, pdf in (("order_lines", lines), ("personas", personas)):
        df = spark.createDataFrame(pdf)
        schema = spark_schema(table)
        df = df.select(
            *[(F.col(f.name) if f.name in pdf.columns else F.lit(None)).cast(f.dataType).alias(f.name) for f in schema]
        )
        lake.write(df, table, mode="append")


def lifetimes_predictions(cdnow: pd.DataFrame, snapshot: dt.date, end: dt.date) -> pd.Series:
    """BG/NBD + Gamma-Gamma with lifetimes' defaults on the daily history up to ``snapshot``."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    past = cdnow[cdnow["date"] <= pd.Timestamp(snapshot)]
    summary = summary_data_from_transaction_data(
        past, "customer", "date", monetary_value_col="value", observation_period_end=pd.Timestamp(snapshot), freq="D"
    )
    bgf = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
    repeat = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    ggf = GammaGammaFitter().fit(repeat["frequency"], repeat["monetary_value"])
    horizon = (end - snapshot).days
    trans = bgf.conditional_expected_number_of_purchases_up_to_time(
        horizon, summary["frequency"], summary["recency"], summary["T"]
    )
    value = ggf.conditional_expected_average_profit(summary["frequency"], summary["monetary_value"].clip(lower=0))
    return pd.Series(np.asarray(trans) * np.asarray(value), index=summary.index)


def _metrics(pred: np.ndarray, actual: np.ndarray) -> dict[str, float]:
    err = pred - actual
    return {
        "mae": float(np.mean(np.abs(err))),
        "rmse": float(np.sqrt(np.mean(err * err))),
        "total_ratio": float(pred.sum() / actual.sum()),
    }


def error_ratio_ci(
    ours: np.ndarray, ref: np.ndarray, actual: np.ndarray, metric: str = "mae", seed: int = 0
) -> tuple[float, float, float]:
    """MAE (or RMSE) of ours / that of ref, and its 95% bootstrap interval over customers
    (paired resamples)."""
    if metric == "mae":
        a, b = np.abs(ours - actual), np.abs(ref - actual)
    else:
        a, b = (ours - actual) ** 2, (ref - actual) ** 2
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(a), size=(BOOTSTRAP, len(a)))
    ratios = a[idx].mean(axis=1) / b[idx].mean(axis=1)
    point = a.mean() / b.mean()
    if metric == "rmse":
        ratios, point = np.sqrt(ratios), np.sqrt(point)
    lo, hi = np.percentile(ratios, [2.5, 97.5])
    return float(point), float(lo), float(hi)


def run(spark: Any, config: Any, workdir: str, scale: int) -> list[dict[str, Any]]:
    """Every snapshot/horizon pair of :data:`PAIRS`: regressor, our BG/NBD and lifetimes'."""
    import mlflow.spark
    from pyspark.sql import functions as F

    from segengine.errors import ModelError
    from segengine.lake import Lake
    from segengine.models.btyd import bgnbd_triples, btyd_summary
    from segengine.models.clv import (
        customer_value_features,
        fit_btyd_stage,
        label_frame,
        order_facts,
        shift_months,
        train_clv,
        with_btyd_summary,
    )

    cdnow = read_cdnow()
    customers_total = int(cdnow["customer"].nunique())
    base = config.replace(
        warehouse=os.path.join(workdir, "cdnow_warehouse"),
        mlflow=config.mlflow.replace(tracking_uri=None, registry_uri=None),
    )
    lake = Lake.open(spark, base)
    _bronze(spark, lake, cdnow)
    tz, session_tz = base.features.timezone, spark.conf.get("spark.sql.session.timeZone")
    orders = order_facts(lake.read("order_lines"), tz, session_tz).cache()
    personas = lake.read("personas")
    rows: list[dict[str, Any]] = []

    def row(metric: str, value: float, unit: str, notes: str) -> None:
        rows.append(
            {
                "benchmark": "clv_cdnow",
                "metric": metric,
                "value": float(value),
                "unit": unit,
                "notes": notes,
                "scale": customers_total,
            }
        )

    for snap_text, months in PAIRS:
        snapshot = dt.date.fromisoformat(snap_text)
        cfg = base.replace(
            features=base.features.replace(cycle_months=months),
            clv=base.clv.replace(model_name=f"cdnow-clv-{snap_text}-{months}m"),
        )
        end = shift_months(snapshot, months)
        key = f"{snap_text}_{months}m"
        at_s = customer_value_features(orders, personas, snapshot, months, tz, session_tz)
        at_s = with_btyd_summary(at_s, orders, snapshot, cfg.clv.btyd_unit_days)
        labels = label_frame(orders, snapshot, end)
        frame = at_s.join(labels, "persona_id", "left").withColumn("label", F.coalesce("label", F.lit(0.0)))
        preds: dict[str, pd.Series] = {}
        # (b) our BG/NBD + Gamma-Gamma on the history up to S.
        stage = fit_btyd_stage(orders, snapshot, cfg)
        scored = stage.transform(frame).select("persona_id", "label", "btyd_expected_spend").toPandas()
        scored = scored.set_index("persona_id").sort_index()
        actual = scored["label"]
        preds["bgnbd"] = scored["btyd_expected_spend"]
        bg, gg = stage.params_of()
        triples = bgnbd_triples(btyd_summary(orders, snapshot, cfg.clv.btyd_unit_days)).count()
        params = (
            f"our BG/NBD r={bg.r:.4g} alpha={bg.alpha:.4g}wk a={bg.a:.4g} b={bg.b:.4g} (likelihood over {triples} "
            f"grouped (x, t_x, T) triples); Gamma-Gamma p={gg.p:.4g} q={gg.q:.4g} v={gg.v:.4g}"
        )
        # (a) the product's regressor, where two cycles of history fit before S.
        regressor_note = ""
        try:
            summary = train_clv(spark, lake, cfg, snapshot)
            model = mlflow.spark.load_model(f"models:/{cfg.clv.model_name}/{summary['version']}")
            out = model.transform(frame).select("persona_id", "clv_prediction").toPandas()
            preds["regressor"] = out.set_index("persona_id").sort_index()["clv_prediction"]
            regressor_note = (
                f"; {summary['train_cutoffs']} monthly training cutoffs, "
                f"holdout MAE {summary['holdout']['model']['mae']:.2f} vs last cycle "
                f"{summary['holdout']['last_cycle']['mae']:.2f}"
            )
        except ModelError as exc:
            regressor_note = f"; regressor not trainable here: {str(exc).splitlines()[0][:160]}"
        # (c) lifetimes, same history.
        preds["lifetimes"] = lifetimes_predictions(cdnow, snapshot, end).reindex(actual.index).fillna(0.0)
        # (d) 0 for everyone: most customers buy nothing in the horizon, so the median (what
        # MAE rewards) is 0 while the expected value (what CLV is, and what totals add up)
        # is not. Shows what an MAE ratio alone can be won with.
        preds["zero"] = pd.Series(0.0, index=actual.index)
        y = actual.to_numpy()
        notes = f"{len(y)} customers; S={snap_text}, actual = net spend in ({snap_text}, {end}]; {params}"
        row(f"{key}_actual_total", y.sum(), "USD", notes + regressor_note)
        for who, p in preds.items():
            m = _metrics(p.to_numpy(), y)
            for metric, unit in (("mae", "USD"), ("rmse", "USD"), ("total_ratio", "ratio")):
                row(f"{key}_{who}_{metric}", m[metric], unit, notes if who != "regressor" else notes + regressor_note)
        for who in ("regressor", "bgnbd", "zero"):
            if who not in preds:
                continue
            for metric in ("mae", "rmse"):
                ratio, lo, hi = error_ratio_ci(preds[who].to_numpy(), preds["lifetimes"].to_numpy(), y, metric)
                goal = "; goal <= 0.9" if metric == "mae" and who != "zero" else ""
                row(
                    f"{key}_{who}_{metric}_ratio_vs_lifetimes",
                    ratio,
                    "ratio",
                    f"95% bootstrap CI [{lo:.3f}, {hi:.3f}] over {len(y)} customers ({BOOTSTRAP} paired "
                    f"resamples){goal}",
                )
    orders.unpersist()
    return rows
