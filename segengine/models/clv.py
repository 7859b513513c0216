"""Customer lifetime value: each customer's net spend in the next cycle (MLlib regressor).

Time split (``c`` = ``features.cycle_months``, S = the snapshot date, ``K`` =
``clv.train_cycles``; a window ``(a, b]`` holds orders whose local order date is after
day a and up to and including day b; features at a date describe data up to the end of
that day)::

    cutoff k  : S - k·c (k = 1 .. K+1); its rows: features at S - k·c,
                label = net spend in (S - k·c, S - (k-1)·c]
    train     : the cutoffs k = 2 .. K+1, stacked (K consecutive cycles)
    holdout   : the cutoff k = 1: features at S - c, label = net spend in (S - c, S]
    final     : refit on the cutoffs k = 1 .. K (the most recent complete cycles)
    scoring   : features at S, prediction = spend expected in (S, S + c]

Stacking several cutoffs lets the model see how spend decays between cycles and how
it changes with the season (the cutoff's month is an input: a cycle ending in the
holiday months is not a cycle ending in June). The holdout model never sees the
holdout labels; the metrics (MAE, RMSE, total predicted vs actual) are reported with
those of the baseline "next cycle = last cycle" (the customer's ``monetary`` at the
cutoff), and logged to MLflow. The label is the *net* spend (refunds subtracted), 0
for a customer who did not buy, and may be negative if refunds exceed purchases.

Inputs (:data:`CLV_INPUTS`) are per-cycle values, recencies and ratios of catalog
attributes, which mean the same at every cutoff. Lifetime totals and tenure are not
inputs as such: they grow with the length of the recorded history, so a model trained
on earlier cutoffs would meet larger values when scoring than it ever saw (at 5,000
generated personas, with them as inputs the holdout total was over-predicted by half:
3.1M for 2.0M). Lifetime spend enters only as a monthly rate.

Reproducible: the stacked training rows are put in one fixed layout before any fit
(:func:`stack_cutoffs`: hash-partitioned by persona and cutoff into a fixed number of
partitions and sorted within each), and every learner takes ``clv.seed``, so the same
rows give the same model whatever the bronze file layout or the shuffle partitions.

Promotion (:func:`segengine.models.tracking.register_and_promote`): the metric is the
holdout MAE. The current champion is compared on the same holdout rows through its
*validation model* (the model its own run fit without its holdout labels, logged beside it
and named by the version tag ``segengine.validation_model``), so neither side has seen
the labels it is judged on; a champion without that tag is evaluated itself.

Training features are computed from the order lines at each cutoff
(:func:`customer_value_features`: a few aggregates of one cached per-order frame, with
the feature catalog's definitions, see ``docs/features.md``); scoring reads the
``customer_features`` partition. A test checks that both give the same values. The
catalog columns the model reads are logged with it and checked again when scoring.
"""

from __future__ import annotations

import calendar
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from segengine.errors import ConfigError, ModelError
from segengine.features.snapshots import require_feature_partition
from segengine.models.segments import customers_only

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config

log = logging.getLogger(__name__)

# The model's inputs, in order: (input name, SQL expression over catalog columns, the
# catalog columns it reads). An input is used when the feature rows have all its columns.
CLV_INPUTS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("monetary", "`monetary`", ("monetary",)),
    ("frequency", "`frequency`", ("frequency",)),
    ("recency_days", "`recency_days`", ("recency_days",)),
    ("days_since_last_purchase", "`days_since_last_purchase`", ("days_since_last_purchase",)),
    ("avg_basket_value", "`avg_basket_value`", ("avg_basket_value",)),
    ("items_cycle", "`items_cycle`", ("items_cycle",)),
    # Lifetime net spend per 30 days of tenure (at least one month): a rate, not a total.
    (
        "lifetime_spend_30d",
        "`revenue_lifetime` / greatest(`tenure_days` + 1, 30) * 30",
        ("revenue_lifetime", "tenure_days"),
    ),
    # Seasonality: the month the cutoff falls in (the label cycle starts the next day).
    ("cutoff_month", "month(`snapshot_date`)", ("snapshot_date",)),
)
# Missing values (e.g. recency without a purchase in the cycle) become this sentinel:
# trees split it off cleanly (counts and days are never negative; a net amount below
# -1 needs refunds exceeding purchases, rare enough to share the branch).
MISSING = -1.0
MICROS = 1_000_000
VALIDATION_MODEL_TAG = "segengine.validation_model"
VALIDATION_METRIC = "holdout_mae"

FeatureBuilder = Callable[[Any, Any, Any, dt.date], "DataFrame"]


# ------------------------------------------------------------------ time windows


def shift_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by ``months`` calendar months (clamped to the month's last day)."""
    total = day.year * 12 + (day.month - 1) + months
    year, month = divmod(total, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def clv_windows(snapshot_date: dt.date, cycle_months: int, train_cycles: int = 1) -> dict[str, Any]:
    """The (feature cutoff, label end) windows of each role; a label window is (cutoff, end].

    Args:
        snapshot_date: S.
        cycle_months: the cycle length c.
        train_cycles: K, the consecutive cycles stacked for training.

    Returns:
        ``{"train": [(S-2c, S-c), …, (S-(K+1)c, S-Kc)], "holdout": (S-c, S),
        "final": [(S-c, S), …, (S-Kc, S-(K-1)c)]}``, lists most recent first. Each
        end is the next window's cutoff, computed from S (month ends clamp once).
    """
    if cycle_months < 1:
        raise ConfigError(f"features.cycle_months: must be at least 1, got {cycle_months}")
    if train_cycles < 1:
        raise ConfigError(f"clv.train_cycles: must be at least 1, got {train_cycles}")

    def window(k: int) -> tuple[dt.date, dt.date]:
        return shift_months(snapshot_date, -k * cycle_months), shift_months(snapshot_date, -(k - 1) * cycle_months)

    return {
        "train": [window(k) for k in range(2, train_cycles + 2)],
        "holdout": window(1),
        "final": [window(k) for k in range(1, train_cycles + 1)],
    }


def order_facts(order_lines: DataFrame, tz: str, session_tz: str) -> DataFrame:
    """One row per order: its local date, purchase flag, net value and bought units.

    Args:
        order_lines: bronze order lines (persona_id, order_id, order_ts, quantity, unit_price).
        tz: ``features.timezone``: order dates are local dates there, as in the features.
        session_tz: the session time zone.

    Returns:
        DataFrame(persona_id, order_id, order_date, is_purchase, net_micros long, items long).
        Money is in whole micro-units (exact sums, as the feature table's).
    """
    from pyspark.sql import functions as F

    from segengine.features.windows import local_date

    micros = F.col("quantity").cast("long") * F.round(F.col("unit_price").cast("double") * MICROS).cast("long")
    return order_lines.groupBy("persona_id", "order_id").agg(
        F.min(local_date(F.col("order_ts"), tz, session_tz)).alias("order_date"),
        F.max(F.col("quantity") > 0).alias("is_purchase"),
        F.sum(micros).alias("net_micros"),
        F.sum(F.when(F.col("quantity") > 0, F.col("quantity")).otherwise(0)).cast("long").alias("items"),
    )


def _money(micros: Any) -> Any:
    from pyspark.sql import functions as F

    return F.round(micros.cast("double") / F.lit(float(MICROS)), 2)


def label_frame(orders: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """Net spend per persona with local order date in ``(start, end]``.

    Args:
        orders: :func:`order_facts` (local order dates, as the features use).
        start: exclusive: orders on this day belong to the features side.
        end: inclusive.

    Returns:
        DataFrame(persona_id, label double).
    """
    from pyspark.sql import functions as F

    day = F.col("order_date")
    return (
        orders.filter((day > F.lit(start)) & (day <= F.lit(end)))
        .groupBy("persona_id")
        .agg(_money(F.sum("net_micros")).alias("label"))
    )


def customer_value_features(
    orders: DataFrame, personas: DataFrame, cutoff: dt.date, cycle_months: int, tz: str, session_tz: str
) -> DataFrame:
    """The customers at ``cutoff`` with the value columns the CLV model reads.

    The feature catalog's definitions (``docs/features.md``) computed from the orders
    only, which is far cheaper than the whole feature table at every training cutoff.

    Args:
        orders: :func:`order_facts`.
        personas: bronze personas (a persona exists from its local creation date on;
            orders of unknown personas do not count).
        cutoff: the snapshot date the features describe (data up to the end of that day).
        cycle_months: the cycle length; the cycle is ``cutoff - cycle_months .. cutoff``.
        tz: ``features.timezone``.
        session_tz: the session time zone.

    Returns:
        persona_id, snapshot_date, persona_type (``customer``), recency_days, frequency,
        monetary, tenure_days, orders_lifetime, revenue_lifetime, avg_basket_value,
        days_since_last_purchase, items_cycle: one row per customer (at least one purchase).
    """
    from pyspark.sql import functions as F

    from segengine.features.windows import cycle_start, local_date

    day = F.lit(cutoff)
    past = orders.where(F.col("order_date") <= day)
    in_cycle = F.col("order_date") >= F.lit(cycle_start(cutoff, cycle_months))
    purchase = F.col("is_purchase")
    zero = F.lit(0).cast("long")
    agg = past.groupBy("persona_id").agg(
        F.count(F.when(purchase & in_cycle, 1)).cast("int").alias("frequency"),
        F.sum(F.when(in_cycle, F.col("net_micros")).otherwise(zero)).alias("_cycle_micros"),
        F.max(F.when(purchase & in_cycle, F.col("order_date"))).alias("_last_cycle_purchase"),
        F.count(F.when(purchase, 1)).cast("int").alias("orders_lifetime"),
        F.sum("net_micros").alias("_lifetime_micros"),
        F.min(F.when(purchase, F.col("order_date"))).alias("_first_purchase"),
        F.max(F.when(purchase, F.col("order_date"))).alias("_last_purchase"),
        F.sum(F.when(in_cycle, F.col("items")).otherwise(zero)).cast("int").alias("items_cycle"),
    )
    existing = personas.where(local_date(F.col("created_at"), tz, session_tz) <= day).select("persona_id")
    revenue = _money(F.col("_lifetime_micros"))
    return (
        agg.where(F.col("orders_lifetime") > 0)
        .join(existing, "persona_id", "left_semi")
        .select(
            "persona_id",
            day.alias("snapshot_date"),
            F.lit("customer").alias("persona_type"),
            F.datediff(day, "_last_cycle_purchase").alias("recency_days"),
            "frequency",
            _money(F.col("_cycle_micros")).alias("monetary"),
            F.datediff(day, "_first_purchase").alias("tenure_days"),
            "orders_lifetime",
            revenue.alias("revenue_lifetime"),
            F.round(revenue / F.col("orders_lifetime"), 2).alias("avg_basket_value"),
            F.datediff(day, "_last_purchase").alias("days_since_last_purchase"),
            "items_cycle",
        )
    )


def training_frame(features: DataFrame, orders: DataFrame, cutoff: dt.date, end: dt.date) -> DataFrame:
    """Customers at ``cutoff`` with their label: net spend in ``(cutoff, end]`` (0 if none).

    Args:
        features: feature rows built at ``cutoff`` (all persona types).
        orders: :func:`order_facts`.
        cutoff: the features' snapshot date.
        end: last day of the label window.

    Returns:
        The customer rows plus a ``label`` column.
    """
    from pyspark.sql import functions as F

    labels = label_frame(orders, cutoff, end)
    return (
        customers_only(features)
        .join(labels, "persona_id", "left")
        .withColumn("label", F.coalesce(F.col("label"), F.lit(0.0)))
    )


# ------------------------------------------------------------------ model


def clv_inputs(available: Sequence[str] | None = None) -> list[tuple[str, str, tuple[str, ...]]]:
    """The :data:`CLV_INPUTS` whose catalog columns are all in the catalog and in ``available``."""
    from segengine.features.catalog import CATALOG

    inputs = [
        item for item in CLV_INPUTS if all(c in CATALOG and (available is None or c in available) for c in item[2])
    ]
    if not inputs:
        raise ModelError("CLV: none of the model inputs' columns is in the catalog and the feature rows")
    return inputs


def clv_feature_columns(available: Sequence[str] | None = None) -> list[str]:
    """The catalog columns the CLV model reads (of :func:`clv_inputs`), in input order."""
    cols: list[str] = []
    for _, _, sources in clv_inputs(available):
        cols.extend(c for c in sources if c not in cols)
    return cols


def clv_pipeline(config: Config, features: Sequence[str]) -> Any:
    """An unfitted pipeline: derive inputs → assemble → GBT or random forest regressor.

    Args:
        config: the ``clv`` section.
        features: the catalog columns available (:func:`clv_feature_columns`).
    """
    from pyspark.ml import Pipeline
    from pyspark.ml.feature import SQLTransformer, VectorAssembler
    from pyspark.ml.regression import GBTRegressor, RandomForestRegressor

    cfg = config.clv
    inputs = clv_inputs(features)
    # Expressions and identifiers are this module's constants, never user input.
    prep = SQLTransformer(
        statement="SELECT *, "
        + ", ".join(f"coalesce(CAST({expr} AS DOUBLE), {MISSING}D) AS `clv_in_{name}`" for name, expr, _ in inputs)
        + " FROM __THIS__"
    )
    assembler = VectorAssembler(inputCols=[f"clv_in_{name}" for name, _, _ in inputs], outputCol="clv_features")
    common = {
        "featuresCol": "clv_features",
        "labelCol": "label",
        "predictionCol": "clv_raw",
        "maxDepth": cfg.max_depth,
        "minInstancesPerNode": cfg.min_instances_per_node,
        "seed": cfg.seed,
    }
    if cfg.algorithm == "gbt":
        reg = GBTRegressor(maxIter=cfg.max_iter, stepSize=cfg.step_size, **common)
    elif cfg.algorithm == "rf":
        reg = RandomForestRegressor(numTrees=cfg.num_trees, **common)
    else:
        raise ConfigError(f"clv.algorithm: expected gbt or rf, got {cfg.algorithm!r}")
    # Spend cannot be negative. ``prediction`` duplicates it because MLflow's pyfunc
    # wrapper (serving, mlflow.models.predict) returns the column of that name.
    clip = SQLTransformer(
        statement="SELECT *, greatest(clv_raw, 0D) AS clv_prediction, greatest(clv_raw, 0D) AS prediction FROM __THIS__"
    )
    return Pipeline(stages=[prep, assembler, reg, clip])


def regression_metrics(df: DataFrame, prediction: str, label: str = "label") -> dict[str, float]:
    """MAE, RMSE, total predicted and total actual in one aggregate (no collect of rows).

    Args:
        df: rows with a prediction and a label column.
        prediction: prediction column name.
        label: label column name.

    Returns:
        ``{"mae", "rmse", "predicted_total", "actual_total", "customers"}``.
    """
    from pyspark.sql import functions as F

    err = F.col(prediction) - F.col(label)
    row = df.agg(
        F.avg(F.abs(err)).alias("mae"),
        F.sqrt(F.avg(err * err)).alias("rmse"),
        F.sum(prediction).alias("predicted_total"),
        F.sum(label).alias("actual_total"),
        F.count("*").alias("customers"),
    ).first()
    return {k: float(row[k] or 0.0) for k in ("mae", "rmse", "predicted_total", "actual_total", "customers")}


def stack_cutoffs(frames: Sequence[DataFrame], partitions: int) -> DataFrame:
    """The training rows of several cutoffs in one layout that depends on the rows only.

    Tree learners draw samples and sum statistics per partition and in row order, so a
    seed pins the model only if the rows come in a fixed layout: hash-partitioned by
    (persona, cutoff) into ``partitions`` and sorted by that key within each partition.
    The ingest layout, the files and ``spark.sql.shuffle.partitions`` then no longer
    matter (a plain ``coalesce`` kept whatever order the upstream shuffles produced).

    Args:
        frames: labelled rows with ``persona_id`` and ``_cutoff`` (one row per pair).
        partitions: the number of partitions of the result.

    Returns:
        The union, repartitioned and sorted.
    """
    out = frames[0]
    for df in frames[1:]:
        out = out.unionByName(df)
    return out.repartition(max(int(partitions), 1), "persona_id", "_cutoff").sortWithinPartitions(
        "persona_id", "_cutoff"
    )


def _window_text(window: tuple[dt.date, dt.date]) -> str:
    return f"({window[0].isoformat()}, {window[1].isoformat()}]"


def evaluate_holdout(model: PipelineModel, holdout: DataFrame) -> dict[str, dict[str, float]]:
    """Model and "next cycle = last cycle" baseline metrics on the holdout frame."""
    from pyspark.sql import functions as F

    scored = model.transform(holdout).withColumn("baseline", F.coalesce(F.col("monetary").cast("double"), F.lit(0.0)))
    scored = scored.select("clv_prediction", "baseline", "label").cache()
    try:
        return {
            "model": regression_metrics(scored, "clv_prediction"),
            "last_cycle": regression_metrics(scored, "baseline"),
        }
    finally:
        scored.unpersist()


def train_clv(
    spark: SparkSession,
    lake: Any,
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
    import mlflow
    import mlflow.spark
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    from segengine.models.tracking import (
        Validation,
        champion_version,
        configure_mlflow,
        log_spark_model,
        register_and_promote,
        score_champion,
    )

    cfg = config.clv
    configure_mlflow(config)
    cycle, tz = config.features.cycle_months, config.features.timezone
    session_tz = spark.conf.get("spark.sql.session.timeZone")
    windows = clv_windows(snapshot_date, cycle, cfg.train_cycles)
    # One pass over the order lines: every cutoff's features and labels aggregate these.
    orders = order_facts(lake.read("order_lines"), tz, session_tz).persist(StorageLevel.MEMORY_AND_DISK)
    labelled: dict[dt.date, DataFrame] = {}
    try:
        span = orders.agg(F.min("order_date").alias("first"), F.max("order_date").alias("last")).first()
        first_day, last_day = span["first"], span["last"]
        holdout_cutoff = windows["holdout"][0]
        if first_day is None or first_day > holdout_cutoff:
            history = f"{first_day.isoformat()} .. {last_day.isoformat()}" if first_day else "no orders"
            raise ModelError(
                f"CLV: the holdout cutoff {holdout_cutoff.isoformat()} (snapshot {snapshot_date.isoformat()} minus "
                f"features.cycle_months={cycle}) is before the first order (order history: {history}): the cycle "
                "is longer than the history; use a shorter features.cycle_months or a later snapshot date"
            )
        if feature_builder is None:
            personas = lake.read("personas")

            def builder(_spark: Any, _lake: Any, _config: Any, cutoff: dt.date) -> DataFrame:
                return customer_value_features(orders, personas, cutoff, cycle, tz, session_tz)
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
        keep = ["persona_id", "label", *features] + ([] if "monetary" in features else ["monetary"])
        for c, df in frames.items():
            labelled[c] = df.select(*keep, F.lit(c).alias("_cutoff")).persist(StorageLevel.MEMORY_AND_DISK)
        counts = {
            c: df.agg(F.count(F.lit(1)).alias("n"), F.count(F.when(F.col("label") != 0, 1)).alias("buyers")).first()
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
                    empty.append(f"{role} window {_window_text(w)}: {why}")
        for text in dict.fromkeys(empty):
            log.warning(
                "CLV %s: %s (order history %s .. %s); it adds nothing to the fit",
                snapshot_date.isoformat(),
                text,
                first_day.isoformat(),
                last_day.isoformat(),
            )
        if n_train == 0 or n_holdout == 0:
            per_window = ", ".join(f"{_window_text(w)}: {rows[w[0]]}" for w in windows["train"])
            raise ModelError(
                f"CLV: no customers to learn from (customers per train window {per_window}; holdout window "
                f"{_window_text(windows['holdout'])}: {n_holdout}); the order history is "
                f"{first_day.isoformat()} .. {last_day.isoformat()}: use fewer clv.train_cycles, a shorter "
                "features.cycle_months or a later snapshot date"
            )
        # The tree learners run a few small jobs per level and iteration: few partitions
        # (one per core) keep the per-task overhead down; the data is cached anyway.
        parallelism = spark.sparkContext.defaultParallelism

        def stacked(ws: list[tuple[dt.date, dt.date]]) -> DataFrame:
            return stack_cutoffs([labelled[c] for c, _ in ws], parallelism)

        holdout = labelled[windows["holdout"][0]]
        champion = champion_version(config, cfg.model_name)  # resolved once, before training
        eval_model = clv_pipeline(config, features).fit(stacked(windows["train"]))
        metrics = evaluate_holdout(eval_model, holdout)

        def champion_mae(mv: Any) -> float:
            # Its validation model never saw these holdout labels (see the module docstring).
            uri = (mv.tags or {}).get(VALIDATION_MODEL_TAG) or f"models:/{mv.name}/{mv.version}"
            return evaluate_holdout(mlflow.spark.load_model(uri), holdout)["model"]["mae"]

        champ_version, champ_mae, note = score_champion(champion, champion_mae)
        final = clv_pipeline(config, features).fit(stacked(windows["final"]))
        example = holdout.select("persona_id", *features).orderBy("persona_id").limit(5).toPandas()
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
                    "seed": cfg.seed,
                    "cycle_months": cycle,
                    "train_window": f"{windows['train'][-1][0]}..{windows['train'][0][1]}",
                    "holdout_window": f"{windows['holdout'][0]}..{windows['holdout'][1]}",
                    "features": ",".join(features),
                    "inputs": ",".join(name for name, _, _ in clv_inputs(features)),
                }
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
    }


def _pyspark_version() -> str:
    import pyspark

    return pyspark.__version__


def apply_clv_model(features: DataFrame, model: PipelineModel) -> DataFrame:
    """Fill clv_predicted and clv_percentile (0–100 among customers) of a feature partition.

    Prospects and visitors get nulls. Same columns, order and types as the input.

    Args:
        features: one ``customer_features`` partition.
        model: the fitted CLV pipeline.

    Returns:
        The partition with the two CLV columns replaced.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    scored = model.transform(customers_only(features)).select(
        "persona_id", F.col("clv_prediction").alias("_clv_predicted")
    )
    # One global ordering over customers: percent_rank needs it; it is a single sort of
    # (id, double) pairs, the cheapest exact way to rank.
    scored = scored.withColumn(
        "_clv_percentile", F.percent_rank().over(Window.orderBy("_clv_predicted")) * F.lit(100.0)
    )
    joined = features.join(scored, "persona_id", "left")
    types = dict(features.dtypes)
    replaced = {"clv_predicted": "_clv_predicted", "clv_percentile": "_clv_percentile"}
    return joined.select(
        *[F.col(replaced[c]).cast(types[c]).alias(c) if c in replaced else F.col(c) for c in features.columns]
    )


def score_clv(spark: SparkSession, lake: Any, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """Write clv_predicted and clv_percentile into the date's feature partition.

    Loads ``models:/<clv.model_name>@<champion>`` and refuses it if its logged features
    do not match the catalog. Idempotent (one partition overwrite, same schema).

    Args:
        spark: the session.
        lake: the storage layer.
        config: the configuration.
        snapshot_date: the feature partition to score.

    Returns:
        Summary: model version, table version, customers scored, total predicted.
    """
    from pyspark.sql import functions as F

    from segengine.models.tracking import configure_mlflow, load_champion

    require_feature_partition(lake, snapshot_date)  # never score (and write) a missing snapshot
    configure_mlflow(config)
    loaded = load_champion(config, config.clv.model_name)
    features = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    missing = [c for c in loaded.features if c not in features.columns]
    if missing:
        raise ModelError(
            f"model {loaded.name} version {loaded.version} needs column(s) {', '.join(missing)} "
            f"that customer_features for {snapshot_date} lacks"
        )
    scored = apply_clv_model(features, loaded.model).cache()
    try:
        row = scored.agg(F.count("clv_predicted").alias("n"), F.sum("clv_predicted").alias("total")).first()
        version = lake.overwrite_partition(scored, "customer_features", snapshot_date=snapshot_date)
    finally:
        scored.unpersist()
    return {
        "snapshot_date": str(snapshot_date),
        "model_version": loaded.version,
        "table_version": version,
        "customers_scored": int(row["n"]),
        "predicted_total": float(row["total"] or 0.0),
    }


def run_train_job(ctx: Any) -> dict[str, Any]:
    """``jobs/train_clv.py``: train, evaluate and register the CLV model for ``ctx.snapshot_date``."""
    return train_clv(
        ctx.spark,
        ctx.lake,
        ctx.config,
        ctx.snapshot_date,
        force_promote=bool(getattr(ctx.args, "force_promote", False)),
    )


def run_score_job(ctx: Any) -> dict[str, Any]:
    """Score CLV for ``ctx.snapshot_date`` (used by ``jobs/score.py``)."""
    return score_clv(ctx.spark, ctx.lake, ctx.config, ctx.snapshot_date)
