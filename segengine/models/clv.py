"""Customer lifetime value: each customer's net spend in the next cycle (MLlib regressor).

Time split (``c`` = ``features.cycle_months``, S = the snapshot date, ``K`` =
``clv.train_cycles``, ``s`` = ``clv.cutoff_step_months`` (default 1), n = K·c/s; a
window ``(a, b]`` holds orders whose local order date is after day a and up to and
including day b; features at a date describe data up to the end of that day)::

    a cutoff u: features at u, label = net spend in (u, u + c] (always one cycle)
    train     : u = S - 2c - j·s (j = 0 .. n-1), stacked: every label ends by S - c
    holdout   : u = S - c: features at S - c, label = net spend in (S - c, S]
    final     : refit on u = S - c - j·s (j = 0 .. n-1)
    scoring   : features at S, prediction = spend expected in (S, S + c]

Stacking cutoffs every month lets the model see how spend decays with the customer's
age and how it changes with the season in every calendar month (the cutoff's month is
an input: a cycle starting in October is not a cycle starting in June); with s = c the
cutoffs are K consecutive cycles.

BG/NBD + Gamma-Gamma (:mod:`segengine.models.btyd`) enter in two ways. With
``clv.algorithm: bgnbd`` they are the model: expected spend in the next cycle. With
``clv.btyd_inputs`` (default) a fitted :class:`~segengine.models.btyd.BtydModel` is the
first stage of the regressor's pipeline and its expected transactions, P(alive), expected
mean value and expected spend are inputs of the trees. It is fitted on the order history
up to the date the pipeline predicts from (the holdout cutoff for the validation model,
S for the final one) and applied to each row's BG/NBD statistics at the row's own
cutoff (:func:`with_btyd_summary`); only its seven parameters carry later history into
the rows of earlier cutoffs, never a customer's own later orders. Scoring computes the
statistics at the scored date from the order lines. The holdout model never sees the
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

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyspark
from pyspark import StorageLevel
from pyspark.ml import Pipeline
from pyspark.ml.feature import SQLTransformer, VectorAssembler
from pyspark.ml.regression import GBTRegressor, RandomForestRegressor
from pyspark.sql import Window
from pyspark.sql import functions as F

from segengine.errors import ConfigError, ModelError
from segengine.features.catalog import CATALOG
from segengine.features.snapshots import require_feature_partition
from segengine.features.windows import cycle_start, local_date
from segengine.models.btyd import SUMMARY_COLUMNS, BtydModel, btyd_summary, fit_bgnbd, fit_gamma_gamma
from segengine.models.cutoffs import (
    MICROS as MICROS,  # re-exported: callers read it from here
)
from segengine.models.cutoffs import (
    FeatureBuilder,
    history_text,
    money,
    one_row,
    order_facts,
    order_history_span,
    session_time_zone,
    shift_months,
    stack_cutoffs,
    window_text,
)
from segengine.models.segments import customers_only
from segengine.models.tracking import (
    Validation,
    champion_version,
    configure_mlflow,
    load_champion,
    log_spark_model,
    register_and_promote,
    score_champion,
)

if TYPE_CHECKING:
    from pyspark.ml import PipelineModel
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

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
# BG/NBD + Gamma-Gamma predictions (:class:`segengine.models.btyd.BtydModel`, first stage
# of the pipeline) the regressor reads when ``clv.btyd_inputs``: (input name, expression).
BTYD_INPUTS: tuple[tuple[str, str], ...] = (
    ("btyd_expected_transactions", "`btyd_expected_transactions`"),
    ("btyd_p_alive", "`btyd_p_alive`"),
    ("btyd_expected_value", "`btyd_expected_value`"),
    ("btyd_expected_spend", "`btyd_expected_spend`"),
)
# The Gamma-Gamma q is constrained to at least this when the free fit gives q <= 1.
GG_Q_MIN = 2.0
# Missing values (e.g. recency without a purchase in the cycle) become this sentinel:
# trees split it off cleanly (counts and days are never negative; a net amount below
# -1 needs refunds exceeding purchases, rare enough to share the branch).
MISSING = -1.0
VALIDATION_MODEL_TAG = "segengine.validation_model"
VALIDATION_METRIC = "holdout_mae"


# ------------------------------------------------------------------ time windows


def clv_windows(
    snapshot_date: dt.date, cycle_months: int, train_cycles: int = 1, step_months: int | None = None
) -> dict[str, Any]:
    """The (feature cutoff, label end) windows of each role; a label window is (cutoff, end].

    Args:
        snapshot_date: S.
        cycle_months: the cycle length c (every label window is one cycle long).
        train_cycles: K: the training cutoffs span K cycles.
        step_months: s, the months between two stacked cutoffs (default c: consecutive
            cycles). With s = 1 the n = K·c/s cutoffs fall in every calendar month.

    Returns:
        ``{"train": [(S-2c, S-c), (S-2c-s, S-c-s), …] (n windows), "holdout": (S-c, S),
        "final": [(S-c, S), (S-c-s, S-s), …] (n windows)}``, lists most recent first.
        Every date is computed from S (month ends clamp once). With s = c:
        ``train = [(S-2c, S-c), …, (S-(K+1)c, S-Kc)]``.
    """
    if cycle_months < 1:
        raise ConfigError(f"features.cycle_months: must be at least 1, got {cycle_months}")
    if train_cycles < 1:
        raise ConfigError(f"clv.train_cycles: must be at least 1, got {train_cycles}")
    step = cycle_months if step_months is None else step_months
    if step < 1:
        raise ConfigError(f"clv.cutoff_step_months: must be at least 1, got {step}")
    n = max(train_cycles * cycle_months // step, 1)

    def window(back: int) -> tuple[dt.date, dt.date]:
        # Features at S - back months, label up to one cycle later.
        return shift_months(snapshot_date, -back), shift_months(snapshot_date, -(back - cycle_months))

    return {
        "train": [window(2 * cycle_months + j * step) for j in range(n)],
        "holdout": window(cycle_months),
        "final": [window(cycle_months + j * step) for j in range(n)],
    }


def label_frame(orders: DataFrame, start: dt.date, end: dt.date) -> DataFrame:
    """Net spend per persona with local order date in ``(start, end]``.

    Args:
        orders: :func:`order_facts` (local order dates, as the features use).
        start: exclusive: orders on this day belong to the features side.
        end: inclusive.

    Returns:
        DataFrame(persona_id, label double).
    """
    day = F.col("order_date")
    return (
        orders.filter((day > F.lit(start)) & (day <= F.lit(end)))
        .groupBy("persona_id")
        .agg(money(F.sum("net_micros")).alias("label"))
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
    revenue = money(F.col("_lifetime_micros"))
    return (
        agg.where(F.col("orders_lifetime") > 0)
        .join(existing, "persona_id", "left_semi")
        .select(
            "persona_id",
            day.alias("snapshot_date"),
            F.lit("customer").alias("persona_type"),
            F.datediff(day, "_last_cycle_purchase").alias("recency_days"),
            "frequency",
            money(F.col("_cycle_micros")).alias("monetary"),
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
    labels = label_frame(orders, cutoff, end)
    return (
        customers_only(features)
        .join(labels, "persona_id", "left")
        .withColumn("label", F.coalesce(F.col("label"), F.lit(0.0)))
    )


# ------------------------------------------------------------------ model


def clv_inputs(available: Sequence[str] | None = None) -> list[tuple[str, str, tuple[str, ...]]]:
    """The :data:`CLV_INPUTS` whose catalog columns are all in the catalog and in ``available``."""
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


def clv_pipeline(config: Config, features: Sequence[str], btyd: BtydModel | None = None) -> Any:
    """An unfitted pipeline: [BG/NBD stage] → derive inputs → assemble → GBT or random forest.

    With ``clv.algorithm: bgnbd`` the pipeline is the BG/NBD + Gamma-Gamma stage alone:
    the prediction is its expected spend in the next cycle.

    Args:
        config: the ``clv`` section.
        features: the catalog columns available (:func:`clv_feature_columns`).
        btyd: a fitted :class:`BtydModel` (needed by ``bgnbd`` and ``clv.btyd_inputs``):
            its predictions become inputs of the regressor.
    """
    cfg = config.clv
    if cfg.algorithm == "bgnbd":
        if btyd is None:
            raise ModelError("CLV: clv.algorithm bgnbd needs a fitted BG/NBD stage")
        out = SQLTransformer(
            statement="SELECT *, greatest(btyd_expected_spend, 0D) AS clv_prediction, "
            "greatest(btyd_expected_spend, 0D) AS prediction FROM __THIS__"
        )
        return Pipeline(stages=[btyd, out])
    exprs = [(name, expr) for name, expr, _ in clv_inputs(features)]
    if btyd is not None:
        exprs += list(BTYD_INPUTS)
    # Expressions and identifiers are this module's constants, never user input.
    prep = SQLTransformer(
        statement="SELECT *, "
        + ", ".join(f"coalesce(CAST({expr} AS DOUBLE), {MISSING}D) AS `clv_in_{name}`" for name, expr in exprs)
        + " FROM __THIS__"
    )
    assembler = VectorAssembler(inputCols=[f"clv_in_{name}" for name, _ in exprs], outputCol="clv_features")
    cols = {"featuresCol": "clv_features", "labelCol": "label", "predictionCol": "clv_raw"}
    reg: GBTRegressor | RandomForestRegressor
    if cfg.algorithm == "gbt":
        reg = GBTRegressor(
            maxIter=cfg.max_iter,
            stepSize=cfg.step_size,
            maxDepth=cfg.max_depth,
            minInstancesPerNode=cfg.min_instances_per_node,
            seed=cfg.seed,
            featuresCol=cols["featuresCol"],
            labelCol=cols["labelCol"],
            predictionCol=cols["predictionCol"],
        )
    elif cfg.algorithm == "rf":
        reg = RandomForestRegressor(
            numTrees=cfg.num_trees,
            maxDepth=cfg.max_depth,
            minInstancesPerNode=cfg.min_instances_per_node,
            seed=cfg.seed,
            featuresCol=cols["featuresCol"],
            labelCol=cols["labelCol"],
            predictionCol=cols["predictionCol"],
        )
    else:
        raise ConfigError(f"clv.algorithm: expected gbt, rf or bgnbd, got {cfg.algorithm!r}")
    # Spend cannot be negative. ``prediction`` duplicates it because MLflow's pyfunc
    # wrapper (serving, mlflow.models.predict) returns the column of that name.
    clip = SQLTransformer(
        statement="SELECT *, greatest(clv_raw, 0D) AS clv_prediction, greatest(clv_raw, 0D) AS prediction FROM __THIS__"
    )
    return Pipeline(stages=[*([btyd] if btyd is not None else []), prep, assembler, reg, clip])


def btyd_stage(model: Any) -> BtydModel | None:
    """The BG/NBD stage of a fitted CLV pipeline, if it has one."""
    return next((s for s in getattr(model, "stages", []) if isinstance(s, BtydModel)), None)


def fit_btyd_stage(orders: DataFrame, cutoff: dt.date, config: Config) -> BtydModel:
    """BG/NBD + Gamma-Gamma fitted on the order history up to ``cutoff``, as a pipeline stage.

    Its horizon is one cycle (``features.cycle_months``) after each row's snapshot date.

    Raises:
        ModelError: no customer, or a likelihood that did not converge, with the cutoff.
    """
    cfg = config.clv
    summary = btyd_summary(orders, cutoff, cfg.btyd_unit_days).cache()
    day = cutoff.isoformat()
    try:
        # A maximum at the boundary (e.g. nobody seems to drop out: a, b -> infinity)
        # does not converge: retry with a growing penalizer rather than fail the training.
        pen, bg = cfg.btyd_penalizer, None
        while bg is None:
            try:
                bg = fit_bgnbd(summary, pen, cfg.btyd_unit_days)
            except ModelError as exc:
                if pen >= 1.0:
                    raise ModelError(f"CLV at cutoff {day}: {exc}") from exc
                pen = max(pen * 10, 0.001)
                log.warning("CLV at cutoff %s: %s; retrying with penalizer %g", day, exc, pen)
        try:
            gg = fit_gamma_gamma(summary, cfg.btyd_penalizer)
        except ModelError as exc:
            # q <= 1: spend too heavy-tailed for a finite expected value; constrain q.
            log.warning("CLV at cutoff %s: %s; refitting with q >= %g", day, exc, GG_Q_MIN)
            try:
                gg = fit_gamma_gamma(summary, cfg.btyd_penalizer, q_min=GG_Q_MIN)
            except ModelError as again:
                raise ModelError(f"CLV at cutoff {day}: {again}") from again
    finally:
        summary.unpersist()
    log.info("CLV BG/NBD at %s: %s; Gamma-Gamma: %s", cutoff.isoformat(), bg, gg)
    return BtydModel.of(bg, gg, config.features.cycle_months)


def with_btyd_summary(rows: DataFrame, orders: DataFrame, cutoff: dt.date, unit_days: float) -> DataFrame:
    """``rows`` plus each persona's BG/NBD statistics at ``cutoff`` (0 for one without a purchase day)."""
    summary = btyd_summary(orders, cutoff, unit_days)
    joined = rows.drop(*[c for c in SUMMARY_COLUMNS if c in rows.columns]).join(summary, "persona_id", "left")
    return joined.withColumns({c: F.coalesce(F.col(c), F.lit(0).cast(t)) for c, t in summary.dtypes[1:]})


def regression_metrics(df: DataFrame, prediction: str, label: str = "label") -> dict[str, float]:
    """MAE, RMSE, total predicted and total actual in one aggregate (no collect of rows).

    Args:
        df: rows with a prediction and a label column.
        prediction: prediction column name.
        label: label column name.

    Returns:
        ``{"mae", "rmse", "predicted_total", "actual_total", "customers"}``.
    """
    err = F.col(prediction) - F.col(label)
    row = df.agg(
        F.avg(F.abs(err)).alias("mae"),
        F.sqrt(F.avg(err * err)).alias("rmse"),
        F.sum(prediction).alias("predicted_total"),
        F.sum(label).alias("actual_total"),
        F.count("*").alias("customers"),
    ).first()
    assert row is not None  # a global aggregate has exactly one row
    return {k: float(row[k] or 0.0) for k in ("mae", "rmse", "predicted_total", "actual_total", "customers")}


def evaluate_holdout(model: PipelineModel, holdout: DataFrame) -> dict[str, dict[str, float]]:
    """Model and "next cycle = last cycle" baseline metrics on the holdout frame."""
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


def apply_clv_model(
    features: DataFrame, model: PipelineModel, orders: DataFrame | None = None, unit_days: float | None = None
) -> DataFrame:
    """Fill clv_predicted and clv_percentile (0–100 among customers) of a feature partition.

    Prospects and visitors get nulls. Same columns, order and types as the input.

    Args:
        features: one ``customer_features`` partition.
        model: the fitted CLV pipeline.
        orders: :func:`order_facts`, needed when the pipeline has a BG/NBD stage (its
            statistics are computed at the partition's date).
        unit_days: the BG/NBD time unit (default: the stage's).

    Returns:
        The partition with the two CLV columns replaced.
    """
    customers = customers_only(features)
    stage = btyd_stage(model)
    if stage is not None:
        if orders is None:
            raise ModelError("CLV: this model has a BG/NBD stage: scoring needs the order facts")
        day = customers.select("snapshot_date").distinct().collect()  # one partition: one date
        if len(day) > 1:
            raise ModelError(f"CLV: the feature rows hold {len(day)} snapshot dates, expected one")
        if day:
            unit = unit_days or stage.getOrDefault("unitDays")
            customers = with_btyd_summary(customers, orders, day[0]["snapshot_date"], unit)
    scored = model.transform(customers).select("persona_id", F.col("clv_prediction").alias("_clv_predicted"))
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


def score_clv(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
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
    orders = None
    if btyd_stage(loaded.model) is not None:
        session_tz = session_time_zone(spark)
        orders = order_facts(lake.read("order_lines"), config.features.timezone, session_tz)
    scored = apply_clv_model(features, loaded.model, orders).cache()
    try:
        row = one_row(scored.agg(F.count("clv_predicted").alias("n"), F.sum("clv_predicted").alias("total")))
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
