"""``segengine train recommendations``: evaluate, fit on everything, save the bundle, log and register in MLflow."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import TYPE_CHECKING, Any

import pyspark

from segengine.errors import ModelError
from segengine.models.recommend.als import RecommendModel, train_model
from segengine.models.recommend.evaluation import evaluate
from segengine.models.recommend.fallback import SEGMENTATION_NONE
from segengine.models.recommend.feedback import _load_inputs, interactions
from segengine.models.recommend.metrics import GROUP_ALL, GROUPS, METHODS, SPLIT_TEST, SPLIT_VALIDATION
from segengine.models.recommend.persistence import (
    BUNDLE_TAG,
    VALIDATION_MODEL_TAG,
    bundle_root,
    load_recommend_version,
    recommend_pipeline,
    save_model,
)
from segengine.models.tracking import (
    Validation,
    champion_version,
    configure_mlflow,
    register_and_promote,
    score_champion,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config
    from segengine.lake import Lake


def _flat_metrics(evaluation: dict[str, Any]) -> dict[str, float]:
    """MLflow metric names that say the split and the group (NaN values skipped).

    ``<split>_<group>_<method>_precision_at_10`` (and ``recall``, ``map``, ``coverage``),
    ``..._ci_low`` / ``..._ci_high`` for the bootstrap interval bounds,
    ``<split>_<group>_lift_vs_popularity`` (and ``_vs_popular_in_segment``) with theirs,
    ``<split>_users_scored`` / ``_known`` / ``_cold_start``; split = validation | test,
    group = all | known | cold_start.
    """
    k = evaluation.get("k", 10)
    out: dict[str, float] = {}

    def put(name: str, value: Any) -> None:
        if value is not None and value == value:
            out[name] = float(value)

    for split in (SPLIT_VALIDATION, SPLIT_TEST):
        window = evaluation.get(split)
        if not window:
            continue
        for key, n in window["users"].items():
            put(f"{split}_users_{key}", n)
        for group in GROUPS:
            ci = window.get("ci", {}).get(group, {})
            for method in METHODS:
                for name, value in window["metrics"][group][method].items():
                    if name == "users":
                        continue
                    metric = f"{split}_{group}_{method}_{name.replace('_at_k', f'_at_{k}')}"
                    put(metric, value)
                    bounds = ci.get(method, {}).get(name)
                    if bounds:
                        put(metric + "_ci_low", bounds[0])
                        put(metric + "_ci_high", bounds[1])
            for base in ("popularity", "popular_in_segment"):
                metric = f"{split}_{group}_lift_vs_{base}"
                put(metric, window["lift"][group][f"vs_{base}"])
                bounds = ci.get(f"lift_vs_{base}")
                if bounds:
                    put(metric + "_ci_low", bounds[0])
                    put(metric + "_ci_high", bounds[1])
    return out


def train_recommendations(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    evaluate_first: bool = True,
    log_to_mlflow: bool = True,
    force_promote: bool = False,
) -> dict[str, Any]:
    """Evaluate on a time split, fit ALS on everything up to ``snapshot_date``, save, log, register.

    The bundle (ALS model + id mappings) goes to its own directory
    ``<warehouse>/models/recommend/snapshot_date=<d>/bundle=<id>`` (for notebooks; a
    retrain never overwrites it). MLflow gets the parameters, the evaluation metrics
    and the model with its id mappings (:func:`recommend_pipeline`), registered as a new
    version of ``config.recommend.model_name``. The version becomes the champion only if
    its precision@k on the **validation** window (all users, cold start included) is not
    lower than the current champion's validation model on the same users (or
    ``force_promote``); otherwise it is the challenger. The test window is reported,
    never used for that choice; training picks no hyperparameter (they are
    ``config.recommend``'s; choose them with ``segengine recommend evaluate --grid``,
    which decides on the validation window). Without
    an evaluation (``evaluate_first=False``) there is nothing to compare, so a new
    version becomes champion only when there is none yet or when forced.

    Args:
        spark: the session.
        lake: the Lake.
        config: configuration.
        snapshot_date: last day of training data.
        evaluate_first: run :func:`evaluate` (two more ALS fits: up to the validation
            and the test cutoffs) and log its metrics.
        log_to_mlflow: False skips MLflow (notebooks, quick runs): the bundle is saved
            but nothing is registered, so scoring keeps the current champion.
        force_promote: make the new version the champion whatever its metrics (logged, tagged).

    Returns:
        Summary: users, items, bundle path, evaluation, MLflow run id, model version and
        ``promotion`` (alias given, new vs champion precision).

    Raises:
        ModelError: nothing to train on, or MLflow could not log/register the model.
    """
    cfg = config.recommend
    champion: tuple[str | None, Any, str] = (None, None, "no champion")
    if log_to_mlflow:
        configure_mlflow(config)
        mv = champion_version(config, cfg.model_name)  # resolved once, before training
        champion = (str(mv.version), None, "no evaluation (--no-evaluate)") if mv is not None else champion
        if mv is not None and evaluate_first:
            champion = score_champion(mv, lambda v: load_recommend_version(spark, config, v, validation=True))
    fitted: dict[str, RecommendModel] = {}
    evaluation = None
    if evaluate_first:
        evaluation = evaluate(
            spark,
            lake,
            config,
            snapshot_date,
            compare={"champion": champion[1]} if champion[1] is not None else None,
            on_model=lambda m: fitted.__setitem__("validation", m),
        )
    order_lines, events, _, personas = _load_inputs(lake)
    inter = interactions(order_lines, events, snapshot_date, cfg, personas).cache()
    model = train_model(inter, cfg)
    path = f"{bundle_root(config)}/snapshot_date={snapshot_date.isoformat()}/bundle={uuid.uuid4().hex[:12]}"
    save_model(model, path)
    summary: dict[str, Any] = {
        "snapshot_date": snapshot_date.isoformat(),
        "users": model.users.count(),
        "items": model.items.count(),
        "bundle": path,
        "evaluation": _without_compare(evaluation) if evaluation else None,
    }
    inter.unpersist()
    if log_to_mlflow:
        summary.update(
            _log_mlflow(
                config, snapshot_date, model, summary, evaluation, fitted.get("validation"), champion, force_promote
            )
        )
    return summary


def _without_compare(evaluation: dict[str, Any]) -> dict[str, Any]:
    """The evaluation without the champion's scores (they belong to the promotion record)."""
    out = dict(evaluation)
    out[SPLIT_VALIDATION] = {k: v for k, v in evaluation[SPLIT_VALIDATION].items() if k != "compare"}
    return out


def _log_mlflow(
    config: Config,
    snapshot_date: dt.date,
    model: RecommendModel,
    summary: dict[str, Any],
    evaluation: dict[str, Any] | None,
    validation_model: RecommendModel | None,
    champion: tuple[str | None, Any, str],
    force: bool,
) -> dict[str, Any]:
    # mlflow is imported where it is used: importing it takes seconds.
    import mlflow
    import mlflow.spark

    cfg = config.recommend
    pins = [f"pyspark=={pyspark.__version__}"]
    with mlflow.start_run(run_name=f"recommend-{snapshot_date.isoformat()}") as run:
        mlflow.set_tag("segengine.model", "recommend")
        mlflow.set_tag(BUNDLE_TAG, summary["bundle"])
        mlflow.log_params(
            {
                "rank": cfg.rank,
                "reg_param": cfg.reg_param,
                "alpha": cfg.alpha,
                "max_iter": cfg.max_iter,
                "block_size": cfg.block_size,
                "view_weight": cfg.view_weight,
                "cart_weight": cfg.cart_weight,
                "recency_half_life_days": cfg.recency_half_life_days,
                "exclude_purchased": cfg.exclude_purchased,
                "snapshot_date": snapshot_date.isoformat(),
                "users": summary["users"],
                "items": summary["items"],
                "seed": cfg.seed,
            }
        )
        if evaluation is not None:
            mlflow.log_metrics(_flat_metrics(evaluation))
            # Which segments popular_in_segment was scored on ("none": no feature partition).
            mlflow.set_tag("segengine.eval_segmentation", evaluation.get("segmentation", SEGMENTATION_NONE))
            # Which split each figure comes from: hyperparameters and the promotion gate
            # read the validation window only; the test window is scored once.
            mlflow.set_tags(
                {
                    "segengine.eval_selected_on": evaluation["selected_on"],
                    "segengine.eval_train_end": evaluation["validation_cutoff"],
                    "segengine.eval_validation_window": "..".join(evaluation[SPLIT_VALIDATION]["window"]),
                    "segengine.eval_test_window": "..".join(evaluation[SPLIT_TEST]["window"]),
                    "segengine.eval_segments_as_of": str(evaluation[SPLIT_TEST]["segments_as_of"]),
                }
            )
        try:
            # The spark flavour still takes the artifact path positionally. The id
            # mappings are stages of the logged model: one version, one artifact.
            info = mlflow.spark.log_model(recommend_pipeline(model), "model", pip_requirements=pins)
            tags = {BUNDLE_TAG: summary["bundle"]}
            if validation_model is not None:
                # The model fitted before the evaluation cutoff: what a later retrain compares against.
                val_info = mlflow.spark.log_model(
                    recommend_pipeline(validation_model), "validation_model", pip_requirements=pins
                )
                mlflow.set_tag(VALIDATION_MODEL_TAG, val_info.model_uri)
                tags[VALIDATION_MODEL_TAG] = val_info.model_uri
            champ_version, champ_value, note = champion
            if evaluation is not None:
                # The gate reads the validation window (all users, cold start included),
                # never the test window.
                gate = evaluation[SPLIT_VALIDATION]
                value = gate["metrics"][GROUP_ALL]["als"]["precision_at_k"]
                champ_value = (gate.get("compare") or {}).get("champion", {}).get("precision_at_k")
            else:
                value = float("nan")
            validation = Validation(
                metric=f"precision_at_{cfg.top_k}",
                value=value,
                higher_is_better=True,
                champion_version=champ_version,
                champion_value=champ_value,
                note=note,
            )
            # ALS reads no customer_features column: an empty feature list.
            promotion = register_and_promote(
                config, info.model_uri, cfg.model_name, [], validation, force=force, tags=tags
            )
        except Exception as exc:
            raise ModelError(
                f"the ALS bundle is saved at {summary['bundle']} but MLflow could not log/register it: {exc}"
            ) from exc
        return {
            "mlflow_run_id": run.info.run_id,
            "model_version": int(promotion.version),
            "promotion": promotion.as_dict(),
        }
