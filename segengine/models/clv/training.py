"""Train the CLV model on the stacked cutoffs, judge it on the holdout and register it (gated).

The windows and the reasons behind them are in the package docstring (:mod:`segengine.models.clv`).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

import pyspark
from pyspark import StorageLevel
from pyspark.sql import functions as F

from segengine.errors import ModelError
from segengine.frames import one_row
from segengine.models.btyd import SUMMARY_COLUMNS
from segengine.models.clv.features import (
    clv_feature_columns,
    clv_inputs,
    clv_windows,
    customer_value_features,
    training_frame,
)
from segengine.models.clv.pipeline import BTYD_INPUTS, clv_pipeline, evaluate_holdout, fit_btyd_stage, with_btyd_summary
from segengine.models.cutoffs import (
    FeatureBuilder,
    history_text,
    order_facts,
    order_history_span,
    session_time_zone,
    stack_cutoffs,
    window_text,
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

log = logging.getLogger(__name__)


VALIDATION_MODEL_TAG = "segengine.validation_model"
VALIDATION_METRIC = "holdout_mae"


def train_clv(
    spark: SparkSession,
    lake: Lake,
    config: Config,
    snapshot_date: dt.date,
    feature_builder: FeatureBuilder | None = None,
    force_promote: bool = False,
) -> dict[str, Any]:
    """Train the CLV model on the time split, report holdout metrics, register it (gated).

    Args:
        spark: the session.
        lake: the storage layer (order_lines for the labels, personas).
        config: ``clv`` and ``features`` (cycle_months, timezone).
        snapshot_date: S (see the module docstring for the windows).
        feature_builder: builds the feature rows as of a cutoff; default
            :func:`customer_value_features` of the cached orders (tests pass their own).
            Called once per distinct cutoff.
        force_promote: make the new version the champion even if its holdout MAE is
            worse than the champion's (logged and tagged).

    Returns:
        Summary: windows, features, holdout metrics for the model and the baseline,
        registered version, and ``promotion`` (alias given, new vs champion MAE).

    Raises:
        ModelError: the holdout cutoff is before the first order (a cycle longer than
            the history), or no cutoff has customers to learn from; dates in ISO form.
    """
    import mlflow  # imported where used: importing mlflow takes seconds
    import mlflow.spark

    cfg = config.clv
    configure_mlflow(config)
    cycle, tz = config.features.cycle_months, config.features.timezone
    session_tz = session_time_zone(spark)
    windows = clv_windows(snapshot_date, cycle, cfg.train_cycles, cfg.cutoff_step_months)
    use_btyd = cfg.algorithm == "bgnbd" or cfg.btyd_inputs
    # One pass over the order lines: every cutoff's features and labels aggregate these.
    orders = order_facts(lake.read("order_lines"), tz, session_tz).persist(StorageLevel.MEMORY_AND_DISK)
    labelled: dict[dt.date, DataFrame] = {}
    try:
        first_day, last_day = order_history_span(orders)
        holdout_cutoff = windows["holdout"][0]
        if first_day is None or first_day > holdout_cutoff:
            history = history_text(first_day, last_day)
            raise ModelError(
                f"CLV: the holdout cutoff {holdout_cutoff.isoformat()} (snapshot {snapshot_date.isoformat()} minus "
                f"features.cycle_months={cycle}) is before the first order (order history: {history}): the cycle "
                "is longer than the history; use a shorter features.cycle_months or a later snapshot date"
            )
        if feature_builder is None:
            personas = lake.read("personas")

            def default_builder(_spark: SparkSession, _lake: Lake, _config: Config, cutoff: dt.date) -> DataFrame:
                return customer_value_features(orders, personas, cutoff, cycle, tz, session_tz)

            builder: FeatureBuilder = default_builder
        else:
            builder = feature_builder
        # Each distinct cutoff once (the holdout's is also the final fit's newest one).
        ends = dict([windows["holdout"], *windows["train"], *windows["final"]])
        frames = {
            c: training_frame(builder(spark, lake, config, c), orders, c, e)
            for c, e in sorted(ends.items(), reverse=True)
        }
        common = set.intersection(*(set(df.columns) for df in frames.values()))
        features = clv_feature_columns(sorted(common))
        # What the fitted pipeline reads: the catalog columns and, with the BG/NBD stage,
        # each customer's statistics at the row's snapshot date.
        model_columns = list(dict.fromkeys([*features, *(["snapshot_date", *SUMMARY_COLUMNS] if use_btyd else [])]))
        if use_btyd:
            frames = {c: with_btyd_summary(df, orders, c, cfg.btyd_unit_days) for c, df in frames.items()}
        keep = list(dict.fromkeys(["persona_id", "label", *model_columns, "monetary"]))
        for c, df in frames.items():
            labelled[c] = df.select(*keep, F.lit(c).alias("_cutoff")).persist(StorageLevel.MEMORY_AND_DISK)
        counts = {
            c: one_row(df.agg(F.count(F.lit(1)).alias("n"), F.count(F.when(F.col("label") != 0, 1)).alias("buyers")))
            for c, df in labelled.items()
        }
        rows = {c: int(r["n"]) for c, r in counts.items()}
        n_train = sum(rows[c] for c, _ in windows["train"])
        n_holdout = rows[windows["holdout"][0]]
        empty = []
        for role in ("train", "final"):
            for w in windows[role]:
                if rows[w[0]] == 0 or counts[w[0]]["buyers"] == 0:
                    why = "no customers at its cutoff" if rows[w[0]] == 0 else "no orders in its label window"
                    empty.append(f"{role} window {window_text(w)}: {why}")
        for text in dict.fromkeys(empty):
            log.warning(
                "CLV %s: %s (order history %s); it adds nothing to the fit",
                snapshot_date.isoformat(),
                text,
                history_text(first_day, last_day),
            )
        if n_train == 0 or n_holdout == 0:
            per_window = ", ".join(f"{window_text(w)}: {rows[w[0]]}" for w in windows["train"])
            raise ModelError(
                f"CLV: no customers to learn from (customers per train window {per_window}; holdout window "
                f"{window_text(windows['holdout'])}: {n_holdout}); the order history is "
                f"{history_text(first_day, last_day)}: use fewer clv.train_cycles, a shorter "
                "features.cycle_months or a later snapshot date"
            )
        # The tree learners run a few small jobs per level and iteration: few partitions
        # (one per core) keep the per-task overhead down; the data is cached anyway.
        parallelism = spark.sparkContext.defaultParallelism

        def stacked(ws: list[tuple[dt.date, dt.date]]) -> DataFrame:
            return stack_cutoffs([labelled[c] for c, _ in ws], parallelism)

        holdout = labelled[windows["holdout"][0]]
        champion = champion_version(config, cfg.model_name)  # resolved once, before training
        # BG/NBD is fitted on the history up to the date each model predicts from: the
        # holdout cutoff for the validation model (never the holdout labels), S for the
        # final one. Only its 7 parameters reach the training rows of earlier cutoffs.
        eval_btyd = fit_btyd_stage(orders, holdout_cutoff, config) if use_btyd else None
        eval_model = clv_pipeline(config, features, eval_btyd).fit(stacked(windows["train"]))
        metrics = evaluate_holdout(eval_model, holdout)

        def champion_mae(mv: Any) -> float:
            # Its validation model never saw these holdout labels (see the module docstring).
            uri = (mv.tags or {}).get(VALIDATION_MODEL_TAG) or f"models:/{mv.name}/{mv.version}"
            return evaluate_holdout(mlflow.spark.load_model(uri), holdout)["model"]["mae"]

        champ_version, champ_mae, note = score_champion(champion, champion_mae)
        final_btyd = fit_btyd_stage(orders, snapshot_date, config) if use_btyd else None
        final = clv_pipeline(config, features, final_btyd).fit(stacked(windows["final"]))
        example = holdout.select("persona_id", *model_columns).orderBy("persona_id").limit(5).toPandas()
        out = final.transform(spark.createDataFrame(example)).select("clv_prediction").toPandas()
        with mlflow.start_run(run_name=f"clv {snapshot_date}"):
            mlflow.log_params(
                {
                    "snapshot_date": str(snapshot_date),
                    "algorithm": cfg.algorithm,
                    "max_depth": cfg.max_depth,
                    "max_iter": cfg.max_iter,
                    "num_trees": cfg.num_trees,
                    "step_size": cfg.step_size,
                    "min_instances_per_node": cfg.min_instances_per_node,
                    "train_cycles": cfg.train_cycles,
                    "cutoff_step_months": cfg.cutoff_step_months,
                    "train_cutoffs": len(windows["train"]),
                    "btyd_inputs": cfg.btyd_inputs,
                    "btyd_unit_days": cfg.btyd_unit_days,
                    "btyd_penalizer": cfg.btyd_penalizer,
                    "seed": cfg.seed,
                    "cycle_months": cycle,
                    "train_window": f"{windows['train'][-1][0]}..{windows['train'][0][1]}",
                    "holdout_window": f"{windows['holdout'][0]}..{windows['holdout'][1]}",
                    "features": ",".join(features),
                    "inputs": ",".join(
                        [name for name, _, _ in clv_inputs(features)]
                        + ([name for name, _ in BTYD_INPUTS] if final_btyd is not None else [])
                    ),
                }
            )
            if final_btyd is not None:
                bg, gg = final_btyd.params_of()
                mlflow.log_params(
                    {f"bgnbd_{k}": getattr(bg, k) for k in ("r", "alpha", "a", "b")}
                    | {f"gamma_gamma_{k}": getattr(gg, k) for k in ("p", "q", "v")}
                )
            mlflow.log_metrics({"train_customers": n_train, "holdout_customers": n_holdout})
            for who, m in metrics.items():
                mlflow.log_metrics({f"holdout_{who}_{k}": v for k, v in m.items() if k != "customers"})
            info = log_spark_model(final, example, features, out)
            # The model fit without the holdout labels: what a later retrain compares against.
            validation_info = mlflow.spark.log_model(
                eval_model,
                "validation_model",
                pip_requirements=[f"pyspark=={_pyspark_version()}"],
            )
            mlflow.set_tag(VALIDATION_MODEL_TAG, validation_info.model_uri)
        validation = Validation(
            metric=VALIDATION_METRIC,
            value=metrics["model"]["mae"],
            higher_is_better=False,
            champion_version=champ_version,
            champion_value=champ_mae,
            note=note,
        )
        promotion = register_and_promote(
            config,
            info.model_uri,
            cfg.model_name,
            features,
            validation,
            force=force_promote,
            tags={VALIDATION_MODEL_TAG: validation_info.model_uri, "segengine.snapshot_date": str(snapshot_date)},
        )
        version = promotion.version
    finally:
        for df in labelled.values():
            df.unpersist()
        orders.unpersist()
    return {
        "snapshot_date": str(snapshot_date),
        "model": cfg.model_name,
        "version": version,
        "windows": {
            "train": [[str(a), str(b)] for a, b in windows["train"]],
            "holdout": [str(d) for d in windows["holdout"]],
            "final": [[str(a), str(b)] for a, b in windows["final"]],
        },
        "features": features,
        "train_customers": n_train,
        "holdout_customers": n_holdout,
        "holdout": metrics,
        "promotion": promotion.as_dict(),
        "algorithm": cfg.algorithm,
        "train_cutoffs": len(windows["train"]),
        "btyd": None
        if final_btyd is None
        else {"bgnbd": final_btyd.getOrDefault("bgnbd"), "gamma_gamma": final_btyd.getOrDefault("gammaGamma")},
    }


def _pyspark_version() -> str:
    return pyspark.__version__
