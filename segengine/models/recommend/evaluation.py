"""Time-split evaluation (train / validation / test) of ALS against the popularity baselines, with a grid."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from segengine.errors import ModelError
from segengine.models.recommend.als import RecommendModel
from segengine.models.recommend.feedback import _load_inputs
from segengine.models.recommend.metrics import (
    CI_LEVEL,
    GROUP_ALL,
    GROUP_COLD,
    GROUPS,
    METHODS,
    SPLIT_TEST,
    SPLIT_VALIDATION,
    bootstrap_intervals,
)
from segengine.models.recommend.window_scoring import _Inputs, _score_window

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config, RecommendConfig
    from segengine.lake import Lake


def _add_intervals(result: dict[str, Any], per_user: DataFrame, cfg: RecommendConfig) -> None:
    """Bootstrap intervals of precision@k and recall@k of each method and of ALS's lifts, per group."""
    values = [f"{m}_{c}" for m in METHODS for c in ("precision", "recall")]
    ratios = {
        "lift_vs_popularity": ("als_precision", "popularity_precision"),
        "lift_vs_popular_in_segment": ("als_precision", "popular_in_segment_precision"),
    }
    resamples = int(getattr(cfg, "eval_bootstrap_resamples", 200))
    seed = int(getattr(cfg, "eval_bootstrap_seed", 17))
    ci = bootstrap_intervals(per_user, values, ratios, resamples, seed) if resamples > 0 else {}
    nan = [float("nan")] * 2
    result["ci"] = {
        g: {
            **{
                m: {
                    "precision_at_k": ci.get(g, {}).get(f"{m}_precision", nan),
                    "recall_at_k": ci.get(g, {}).get(f"{m}_recall", nan),
                }
                for m in METHODS
            },
            "lift_vs_popularity": ci.get(g, {}).get("lift_vs_popularity", nan),
            "lift_vs_popular_in_segment": ci.get(g, {}).get("lift_vs_popular_in_segment", nan),
        }
        for g in GROUPS
    }
    result["bootstrap"] = {
        "resamples": resamples,
        "seed": seed,
        "level": CI_LEVEL,
        "method": "percentile over users, Poisson(1) weight per user and resample (hash of persona_id, resample, seed)",
    }


GRID_FIELDS = ("rank", "reg_param", "alpha", "max_iter", "view_weight", "cart_weight", "recency_half_life_days")


def parse_grid(spec: str, cfg: RecommendConfig) -> list[dict[str, Any]]:
    """``"rank=16,alpha=2;rank=32,alpha=2"`` as a list of ``config.recommend`` overrides.

    Raises:
        ModelError: a key that is not a tunable ``config.recommend`` field, or a bad value.
    """
    grid = []
    for part in filter(None, (p.strip() for p in spec.split(";"))):
        over: dict[str, Any] = {}
        for item in filter(None, (i.strip() for i in part.split(","))):
            key, _, value = item.partition("=")
            key = key.strip()
            if key not in GRID_FIELDS:
                raise ModelError(f"grid setting {part!r}: {key!r} is not one of {', '.join(GRID_FIELDS)}")
            try:
                over[key] = type(getattr(cfg, key))(value.strip())
            except ValueError:
                raise ModelError(f"grid setting {part!r}: {key}={value!r} is not a number") from None
        grid.append(over)
    return grid


def _spec(over: dict[str, Any]) -> str:
    return ",".join(f"{k}={v}" for k, v in over.items()) or "config"


def evaluate(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    test_days: int | None = None,
    compare: dict[str, RecommendModel] | None = None,
    on_model: Callable[[RecommendModel], None] | None = None,
    validation_days: int | None = None,
    grid: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Time-split evaluation of ALS vs popularity vs popular-in-segment: train / validation / test.

    Three windows carved by time, ending at ``snapshot_date``::

        train <= V  |  validation (V, T]  |  test (T, snapshot_date]
        T = snapshot_date - test_days, V = T - validation_days

    1. **Validation**: for each setting of ``grid`` (default: the configuration as is),
       ALS is fitted on the interactions up to V and scored on the validation window;
       the setting with the highest precision@k over all validation users is chosen
       (ties: the first). ``compare`` models (the champion's validation model) are
       scored on the same validation users; that is what the promotion gate compares.
    2. **Test**, once, with the chosen setting: ALS fitted up to T (train + validation)
       and scored on the test window. Nothing is chosen on it.

    In each window every user with a purchase of an item not bought before is scored:
    ALS-known users get ALS, cold-start users (no interaction before the cutoff) get the
    popular-in-segment fallback, as :func:`recommend` serves them; metrics are given
    for known users, cold-start users and all users. The baselines pick their top k from
    the whole catalogue minus the user's bought items. Segments come from the latest
    feature partition on or before the window's training cutoff (:func:`segments_as_of`).
    Each window has percentile bootstrap intervals (:func:`bootstrap_intervals`) on
    precision@k and recall@k of the three methods and on ALS's lifts.

    Args:
        spark: the session.
        lake: the Lake.
        config: configuration (``config.recommend``).
        snapshot_date: end of the test window.
        test_days: test window length (default ``recommend.eval_test_days``).
        compare: other fitted models scored like ALS on the validation users.
        on_model: receives the chosen ALS model fitted up to V (to log it as the
            validation model a later retrain's gate scores).
        validation_days: validation window length (default ``recommend.eval_validation_days``).
        grid: ``config.recommend`` overrides to choose from on validation (:func:`parse_grid`).

    Returns:
        ``{"validation": window, "test": window, "selected_on": "validation", "params",
        "grid", "k", "test_days", "validation_days", "cutoff" (T), "validation_cutoff" (V)}``
        plus the test split's all-user headline at the top level (``split: "test"``,
        ``test_users``, ``cold_start_users``, ``segmentation``, ``als``, ``popularity``,
        ``popular_in_segment``, ``precision_lift_vs_popularity``). A window is
        ``{"split", "train_end", "window", "segmentation", "segments_as_of", "users":
        {"scored", "known", "cold_start"}, "metrics": {group: {method: {...}}}, "lift":
        {group: {...}}, "ci": {group: {...}}, "bootstrap"}``.
    """
    cfg = config.recommend
    test_days = test_days or cfg.eval_test_days
    validation_days = validation_days or cfg.eval_validation_days
    if test_days <= 0 or validation_days <= 0:
        raise ModelError(
            f"evaluation windows must be at least one day (test {test_days}, validation {validation_days})"
        )
    cutoff = snapshot_date - dt.timedelta(days=test_days)
    val_cutoff = cutoff - dt.timedelta(days=validation_days)
    k = cfg.top_k
    order_lines, events, products, personas = _load_inputs(lake)
    catalog = products.select("product_id").distinct().count() if products is not None else None
    if catalog is None:
        catalog = order_lines.select("product_id").distinct().count()
    inputs = _Inputs(order_lines, events, products, personas, catalog)

    settings = grid or [{}]
    tried: list[dict[str, Any]] = []
    best: tuple[float, int, dict[str, Any], DataFrame, RecommendModel] | None = None
    for i, over in enumerate(settings):
        cfg_i = cfg.replace(**over)
        res, per_user, model = _score_window(lake, inputs, cfg_i, SPLIT_VALIDATION, val_cutoff, cutoff, k, compare)
        p = res["metrics"][GROUP_ALL]["als"]["precision_at_k"]
        tried.append(
            {
                "setting": _spec(over),
                "params": over,
                "split": SPLIT_VALIDATION,
                "precision_at_k": p,
                "lift_vs_popularity": res["lift"][GROUP_ALL]["vs_popularity"],
            }
        )
        score = p if p == p else float("-inf")
        if best is None or score > best[0]:
            if best is not None:
                best[3].unpersist()
            best = (score, i, res, per_user, model)
        else:
            per_user.unpersist()
    assert best is not None
    _, chosen_i, validation, val_users, val_model = best
    _add_intervals(validation, val_users, cfg)
    val_users.unpersist()
    if on_model is not None:
        on_model(val_model)
    chosen = settings[chosen_i]
    cfg_t = cfg.replace(**chosen)
    test, test_users, _ = _score_window(lake, inputs, cfg_t, SPLIT_TEST, cutoff, snapshot_date, k)
    _add_intervals(test, test_users, cfg)
    test_users.unpersist()
    headline = test["metrics"][GROUP_ALL]
    return {
        "k": k,
        "test_days": test_days,
        "validation_days": validation_days,
        "validation_cutoff": val_cutoff.isoformat(),
        "cutoff": cutoff.isoformat(),
        "selected_on": SPLIT_VALIDATION,
        "params": {f: getattr(cfg_t, f) for f in GRID_FIELDS},
        "setting": _spec(chosen),
        "grid": tried,
        "validation": validation,
        "test": test,
        # The headline: test split, all users (cold start included).
        "split": SPLIT_TEST,
        "test_users": test["users"]["scored"],
        "cold_start_users": test["users"][GROUP_COLD],
        "segmentation": test["segmentation"],
        "als": headline["als"],
        "popularity": headline["popularity"],
        "popular_in_segment": headline["popular_in_segment"],
        "precision_lift_vs_popularity": test["lift"][GROUP_ALL]["vs_popularity"],
    }
