"""Train, evaluate, calibrate and register both propensity models on the stacked cutoffs (gated).

The windows and the evaluation are described in the package docstring (:mod:`segengine.models.propensity`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyspark import StorageLevel
from pyspark.ml import PipelineModel
from pyspark.ml.feature import SQLTransformer
from pyspark.sql import functions as F

from segengine.errors import ModelError
from segengine.frames import one_row
from segengine.models.cutoffs import (
    FeatureBuilder,
    history_text,
    order_facts,
    order_history_span,
    session_time_zone,
    stack_cutoffs,
    window_text,
)
from segengine.models.propensity.evaluation import (
    bounded_sample,
    calibration_tables,
    holdout_metrics,
    paired_auc_bootstrap,
    scored_holdout,
)
from segengine.models.propensity.labels import TARGETS, Target, labelled_rows, propensity_features, propensity_windows
from segengine.models.propensity.pipelines import (
    VALIDATION_METRIC,
    baseline_pipeline,
    classifier_pipeline,
    isotonic,
    propensity_feature_columns,
)
from segengine.models.tracking import (
    Validation,
    champion_version,
    configure_mlflow,
    log_spark_model,
    register_and_promote,
    score_champion,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake


def train_propensity(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    feature_builder: FeatureBuilder | None = None,
    force_promote: bool = False,
) -> dict[str, Any]:
    """Train, evaluate, calibrate and register both propensity models (gated).

    Args:
        spark: the session.
        lake: the storage layer (order_lines for the labels, personas).
        config: ``propensity`` and ``features`` (cycle_months, timezone).
        snapshot_date: S (see the module docstring for the windows).
        feature_builder: builds the feature rows as of a cutoff (every persona, with
            ``persona_type``); default :func:`propensity_features` of the cached orders.
            Called once per distinct cutoff.
        force_promote: make the new versions the champions whatever their holdout AUC.

    Returns:
        Summary per model (``models``: windows, rows, holdout metrics of the model and
        the baseline with bootstrap intervals, calibration tables, version) and
        ``promotion`` per model.

    Raises:
        ModelError: the holdout cutoff is before the first order, a model has no rows to
            learn from, or its training rows hold one class only.
    """
    cfg = config.propensity
    for t in TARGETS:
        propensity_windows(snapshot_date, t.horizon(config), cfg.train_cutoffs)  # config errors first
    configure_mlflow(config)
    cycle, tz = config.features.cycle_months, config.features.timezone
    session_tz = session_time_zone(spark)
    orders = order_facts(lake.read("order_lines"), tz, session_tz).persist(StorageLevel.MEMORY_AND_DISK)
    built: dict[dt.date, DataFrame] = {}
    try:
        first_day, last_day = order_history_span(orders)
        if feature_builder is None:
            personas = lake.read("personas")

            def default_builder(_spark: SparkSession, _lake: Lake, _config: Config, cutoff: dt.date) -> DataFrame:
                return propensity_features(orders, personas, cutoff, cycle, tz, session_tz)

            builder: FeatureBuilder = default_builder
        else:
            builder = feature_builder

        def features_at(cutoff: dt.date) -> DataFrame:
            if cutoff not in built:
                built[cutoff] = builder(spark, lake, config, cutoff).persist(StorageLevel.MEMORY_AND_DISK)
            return built[cutoff]

        models = {}
        for target in TARGETS:
            models[target.key] = _train_target(
                spark, config, target, snapshot_date, features_at, orders, (first_day, last_day), force_promote
            )
    finally:
        for df in built.values():
            df.unpersist()
        orders.unpersist()
    return {
        "snapshot_date": str(snapshot_date),
        "train_rows": sum(m["train_rows"] for m in models.values()),
        "models": models,
        "promotion": {k: m["promotion"] for k, m in models.items()},
    }


def _train_target(
    spark: SparkSession,
    config: Config,
    target: Target,
    snapshot_date: dt.date,
    features_at: Callable[[dt.date], DataFrame],
    orders: DataFrame,
    history: tuple[dt.date | None, dt.date | None],
    force_promote: bool,
) -> dict[str, Any]:
    import mlflow
    import mlflow.spark

    cfg = config.propensity
    horizon = target.horizon(config)
    name = target.model_name(config)
    windows = propensity_windows(snapshot_date, horizon, cfg.train_cutoffs)
    holdout_cutoff = windows["holdout"][0]
    first_day, last_day = history
    what = f"propensity {target.key} ({target.column})"
    if first_day is None or first_day > holdout_cutoff:
        span = history_text(first_day, last_day)
        raise ModelError(
            f"{what}: the holdout cutoff {holdout_cutoff.isoformat()} (snapshot {snapshot_date.isoformat()} minus "
            f"propensity.{target.horizon_field}={horizon}) is before the first order (order history: {span}); "
            "use a later snapshot date"
        )
    roles = [windows["holdout"], *windows["train"]]
    common = set.intersection(*(set(features_at(c).columns) for c, _ in roles))
    features = propensity_feature_columns(sorted(common))
    labelled: dict[dt.date, DataFrame] = {}
    scored = None
    try:
        for c, _ in roles:
            rows = labelled_rows(features_at(c), orders, c, horizon, target)
            labelled[c] = rows.select("persona_id", "label", *features, F.lit(c).alias("_cutoff")).persist(
                StorageLevel.MEMORY_AND_DISK
            )
        counts = {
            c: one_row(df.agg(F.count(F.lit(1)).alias("n"), F.sum("label").alias("pos"))) for c, df in labelled.items()
        }
        n_train = sum(int(counts[c]["n"]) for c, _ in windows["train"])
        pos_train = sum(int(counts[c]["pos"] or 0) for c, _ in windows["train"])
        n_holdout = int(counts[holdout_cutoff]["n"])
        if n_train == 0 or n_holdout == 0:
            per_window = ", ".join(f"{window_text(w)}: {int(counts[w[0]]['n'])}" for w in windows["train"])
            raise ModelError(
                f"{what}: no rows to learn from (rows per train window {per_window}; holdout window "
                f"{window_text(windows['holdout'])}: {n_holdout}); the order history is "
                f"{history_text(first_day, last_day)}: use fewer propensity.train_cutoffs "
                "or a later snapshot date"
            )
        if pos_train in (0, n_train):
            raise ModelError(
                f"{what}: the {n_train} training rows all have label {1 if pos_train else 0} "
                f"(train windows {window_text(windows['train'][-1])} .. {window_text(windows['train'][0])}): "
                "nothing to learn; use more propensity.train_cutoffs or a later snapshot date"
            )
        train = stack_cutoffs([labelled[c] for c, _ in windows["train"]], spark.sparkContext.defaultParallelism)
        champion = champion_version(config, name)  # resolved once, before training
        model = classifier_pipeline(config, features).fit(train)
        baseline = baseline_pipeline(config).fit(train)
        holdout = labelled[holdout_cutoff]
        scored = scored_holdout(model, baseline, holdout).persist(StorageLevel.MEMORY_AND_DISK)
        metrics = {"model": holdout_metrics(scored, "_score"), "rfm_baseline": holdout_metrics(scored, "_base")}
        sample = bounded_sample(scored, ["persona_id", "label", "_score", "_base"], cfg.eval_max_rows, cfg.seed)
        intervals = paired_auc_bootstrap(
            sample["label"].to_numpy(),
            sample["_score"].to_numpy(),
            sample["_base"].to_numpy(),
            cfg.eval_bootstrap_resamples,
            cfg.eval_bootstrap_seed,
        )
        difference = metrics["model"]["roc_auc"] - metrics["rfm_baseline"]["roc_auc"]
        calibration = calibration_tables(scored, cfg.seed)
        calibrator = isotonic().fit(scored)
        out = SQLTransformer(statement="SELECT *, propensity AS prediction FROM __THIS__")
        final = PipelineModel(stages=[*model.stages, calibrator, out])

        def champion_auc(mv: Any) -> float:
            loaded = mlflow.spark.load_model(f"models:/{mv.name}/{mv.version}")
            return holdout_metrics(scored_holdout(loaded, None, holdout), "_score")["roc_auc"]

        champ_version, champ_auc, note = score_champion(champion, champion_auc)
        # Customers first: their columns are filled, so the signature sees every type.
        example_rows = (
            holdout.select("persona_id", *features)
            .orderBy(F.col("persona_type") != F.lit("customer"), "persona_id")
            .limit(5)
        )
        example = example_rows.toPandas()
        output = final.transform(example_rows).select("propensity").toPandas()
        evaluation = {
            "holdout": metrics,
            "roc_auc_difference": difference,
            "bootstrap": intervals,
            "calibration": calibration,
        }
        with mlflow.start_run(run_name=f"propensity {target.key} {snapshot_date}"):
            mlflow.log_params(
                {
                    "snapshot_date": str(snapshot_date),
                    "target": target.key,
                    "horizon_days": horizon,
                    "algorithm": cfg.algorithm,
                    "max_depth": cfg.max_depth,
                    "max_iter": cfg.max_iter,
                    "step_size": cfg.step_size,
                    "min_instances_per_node": cfg.min_instances_per_node,
                    "reg_param": cfg.reg_param,
                    "seed": cfg.seed,
                    "train_cutoffs": len(windows["train"]),
                    "train_window": f"{windows['train'][-1][0]}..{windows['train'][0][1]}",
                    "holdout_window": f"{windows['holdout'][0]}..{windows['holdout'][1]}",
                    "features": ",".join(features),
                    "calibration": "isotonic",
                    "bootstrap_resamples": cfg.eval_bootstrap_resamples,
                }
            )
            mlflow.log_metrics({"train_rows": n_train, "train_positives": pos_train, "holdout_rows": n_holdout})
            for who, m in metrics.items():
                mlflow.log_metrics({f"holdout_{who}_{k}": v for k, v in m.items() if k != "rows"})
            mlflow.log_metrics(
                {
                    "holdout_roc_auc_difference": difference,
                    "holdout_model_roc_auc_ci_low": intervals["model"][0],
                    "holdout_model_roc_auc_ci_high": intervals["model"][1],
                    "holdout_rfm_baseline_roc_auc_ci_low": intervals["baseline"][0],
                    "holdout_rfm_baseline_roc_auc_ci_high": intervals["baseline"][1],
                    "holdout_roc_auc_difference_ci_low": intervals["difference"][0],
                    "holdout_roc_auc_difference_ci_high": intervals["difference"][1],
                }
            )
            mlflow.log_dict(evaluation, "evaluation.json")
            info = log_spark_model(final, example, features, output)
        validation = Validation(
            metric=VALIDATION_METRIC,
            value=metrics["model"]["roc_auc"],
            higher_is_better=True,
            champion_version=champ_version,
            champion_value=champ_auc,
            note=note,
        )
        promotion = register_and_promote(
            config,
            info.model_uri,
            name,
            features,
            validation,
            force=force_promote,
            tags={"segengine.snapshot_date": str(snapshot_date), "segengine.target": target.key},
        )
    finally:
        if scored is not None:
            scored.unpersist()
        for df in labelled.values():
            df.unpersist()
    return {
        "model": name,
        "version": promotion.version,
        "column": target.column,
        "horizon_days": horizon,
        "windows": {
            "train": [[str(a), str(b)] for a, b in windows["train"]],
            "holdout": [str(d) for d in windows["holdout"]],
        },
        "features": features,
        "train_rows": n_train,
        "train_positives": pos_train,
        "holdout_rows": n_holdout,
        **evaluation,
        "promotion": promotion.as_dict(),
    }
