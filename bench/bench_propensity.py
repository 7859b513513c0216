"""Benchmark: the propensity models (purchase in 30 days, churn in 90) at ``scale`` personas.

``run(spark, config, workdir, scale)`` generates the bronze tables, trains both models at
``generator.end_date`` (S) and reports, per model:

* wall time of ``train_propensity`` (features and labels at every distinct cutoff, two
  models with their RFM baselines, bootstrap, calibration, MLflow log and register);
* holdout ROC AUC, PR AUC and top-decile lift of the model and of the RFM baseline
  (logistic regression on recency and frequency alone), the AUC difference and its
  paired percentile bootstrap 95% interval;
* wall time of ``score_propensity`` (after ``compute_features`` of S).

Not a test: the figures depend on the generator and the scale.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from typing import Any


def _row(benchmark: str, metric: str, value: float, unit: str, notes: str = "") -> dict[str, Any]:
    return {"benchmark": benchmark, "metric": metric, "value": float(value), "unit": unit, "notes": notes}


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def run(spark: Any, config: Any, workdir: str, scale: int) -> list[dict[str, Any]]:
    """Train and score both propensity models at ``scale`` personas; holdout metrics vs the RFM baseline."""
    from bench.shared import bronze
    from segengine.features import compute_features
    from segengine.lake import Lake
    from segengine.models.propensity import score_propensity, train_propensity

    cfg = config.replace(
        warehouse=os.path.join(workdir, "bench_propensity_warehouse"),
        mlflow=config.mlflow.replace(tracking_uri=None, registry_uri=None),
    )
    lake = Lake.open(spark, cfg)
    bronze(spark, lake, cfg, scale, seed=cfg.generator.seed)
    snapshot = dt.date.fromisoformat(cfg.generator.end_date)
    n = f"{scale} personas"
    p = cfg.propensity
    trained, t = _timed(train_propensity, spark, lake, cfg, snapshot)
    rows = [
        _row(
            "propensity",
            "train_time",
            t,
            "s",
            f"{n}; 2 models, {p.algorithm} (depth {p.max_depth}, {p.max_iter} iterations), {p.train_cutoffs} "
            f"stacked cutoffs, RFM baselines, {p.eval_bootstrap_resamples} bootstrap resamples, isotonic, MLflow",
        )
    ]
    for key, m in trained["models"].items():
        window = f"holdout ({m['windows']['holdout'][0]}, {m['windows']['holdout'][1]}]; {m['holdout_rows']} rows"
        for who, metrics in m["holdout"].items():
            for metric in ("roc_auc", "pr_auc", "top_decile_lift"):
                rows.append(_row(f"propensity_{key}", f"{who}_{metric}", metrics[metric], "score", f"{n}; {window}"))
        lo, hi = m["bootstrap"]["difference"]
        note = f"{n}; {window}; paired bootstrap 95% [{lo:.4f}, {hi:.4f}] on {m['bootstrap']['rows']} rows"
        rows.append(_row(f"propensity_{key}", "roc_auc_difference", m["roc_auc_difference"], "score", note))
        rows.append(_row(f"propensity_{key}", "roc_auc_difference_ci_low", lo, "score", note))
    compute_features(spark, lake, cfg, snapshot)
    _, t = _timed(score_propensity, spark, lake, cfg, snapshot)
    rows.append(_row("propensity", "score_time", t, "s", f"{n}; load both by alias, percentiles, write partition"))
    return rows
