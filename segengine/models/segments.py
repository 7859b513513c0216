"""AI segments: k-means over customers' RFMT, with stable human names; and B2B clusters.

RFMT model (registered as ``segments.model_name``), one spark.ml pipeline::

    SQLTransformer   recency (recency_days, else tenure_days as its upper bound),
                     log1p(frequency), log1p(monetary) (negatives clipped at 0), tenure
    VectorAssembler  -> rfmt_raw
    StandardScaler   -> rfmt_scaled (mean 0, std 1)
    KMeans           -> segment_index
    SegmentNamer     -> ai_segment (name), ai_segment_distance (to the centroid, scaled space)

k is ``segments.k`` or, when that is null, the k in ``[k_min, k_max]`` with the best
silhouette (``ClusteringEvaluator``); the training cost of every k (the elbow) is
logged too. Names come from :mod:`segengine.models.naming`: matched to the previous
champion's centroids when there is one, else from the rank rule.

B2B model (``segments.b2b_model_name``): one-hot industry, company size, plan and
value tier plus scaled log spend and log frequency -> KMeans(``b2b_k``) -> names like
``B2B · Retail · high value`` from each cluster's dominant industry and value tier.

Only customers are clustered; scoring leaves prospects and visitors null.

Reproducible: the customers are put in one fixed layout (hash-partitioned by persona into
a fixed number of partitions, sorted within) before scaling and k-means, whose
initialisation samples per partition; ``sample_fraction`` keeps a persona when a seeded
hash of its id falls below the fraction, so the sample does not depend on the layout either.

Promotion (:func:`segengine.models.tracking.register_and_promote`): each model's metric
is the silhouette of the customers of the training date; the current champion is scored on
the same customers in its own scaled space, and the new model becomes champion only if
its silhouette is not lower.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from pyspark import keyword_only
from pyspark.ml import Estimator, Pipeline, PipelineModel, Transformer
from pyspark.ml.clustering import KMeans
from pyspark.ml.evaluation import ClusteringEvaluator
from pyspark.ml.feature import (
    OneHotEncoder,
    SQLTransformer,
    StandardScaler,
    StandardScalerModel,
    StringIndexer,
    VectorAssembler,
)
from pyspark.ml.functions import vector_to_array
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable
from pyspark.sql import functions as F

from segengine.errors import ModelError
from segengine.features.snapshots import require_feature_partition
from segengine.models.naming import match_names, name_clusters
from segengine.models.tracking import (
    Validation,
    champion_version,
    configure_mlflow,
    load_champion,
    load_version,
    log_spark_model,
    register_and_promote,
    score_champion,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from segengine.config import Config
    from segengine.lake import Lake

log = logging.getLogger(__name__)

RFMT_FEATURES = ("recency_days", "frequency", "monetary", "tenure_days")
B2B_CATEGORICAL = ("industry", "company_size", "plan", "value_tier")
B2B_NUMERIC = ("monetary", "frequency")
B2B_FEATURES = B2B_CATEGORICAL + B2B_NUMERIC
MODEL_COLUMNS = ("ai_segment", "ai_segment_distance", "b2b_segment")

_RFMT_PREP = (
    "SELECT *, "
    "CAST(coalesce(recency_days, tenure_days, 0) AS DOUBLE) AS rfmt_recency, "
    "log1p(greatest(coalesce(CAST(frequency AS DOUBLE), 0D), 0D)) AS rfmt_frequency, "
    "log1p(greatest(coalesce(CAST(monetary AS DOUBLE), 0D), 0D)) AS rfmt_monetary, "
    "CAST(coalesce(tenure_days, 0) AS DOUBLE) AS rfmt_tenure "
    "FROM __THIS__"
)
RFMT_VECTOR = ("rfmt_recency", "rfmt_frequency", "rfmt_monetary", "rfmt_tenure")

_B2B_PREP = (
    "SELECT *, "
    + ", ".join(f"coalesce(CAST({c} AS STRING), 'none') AS b2b_{c}" for c in B2B_CATEGORICAL)
    + ", log1p(greatest(coalesce(CAST(monetary AS DOUBLE), 0D), 0D)) AS b2b_monetary"
    + ", log1p(greatest(coalesce(CAST(frequency AS DOUBLE), 0D), 0D)) AS b2b_frequency"
    + " FROM __THIS__"
)
_VALUE_LABEL = {"top": "high value", "middle": "mid value", "rest": "low value"}


# ------------------------------------------------------------------ the naming stage


class _SegmentNamerParams(Params):
    """Params shared by :class:`SegmentNamer` (kept as a mixin, as spark.ml does)."""

    predictionCol: Param[str] = Param(
        Params._dummy(), "predictionCol", "cluster index column", typeConverter=TypeConverters.toString
    )
    featuresCol: Param[str] = Param(
        Params._dummy(), "featuresCol", "vector column the centers live in", typeConverter=TypeConverters.toString
    )
    outputCol: Param[str] = Param(
        Params._dummy(), "outputCol", "segment name column", typeConverter=TypeConverters.toString
    )
    distanceCol: Param[str] = Param(
        Params._dummy(),
        "distanceCol",
        "distance-to-centroid column ('' for none)",
        typeConverter=TypeConverters.toString,
    )
    names: Param[list[str]] = Param(
        Params._dummy(), "names", "segment name per cluster index", typeConverter=TypeConverters.toListString
    )
    centers: Param[list[list[float]]] = Param(
        Params._dummy(),
        "centers",
        "cluster centers in featuresCol space (for the distance)",
        typeConverter=TypeConverters.toListListFloat,
    )
    profiles: Param[list[list[float]]] = Param(
        Params._dummy(),
        "profiles",
        "cluster centers in the unscaled feature space (for matching names on retrain)",
        typeConverter=TypeConverters.toListListFloat,
    )

    def __init__(self, *args: Any):
        super().__init__(*args)
        self._setDefault(
            predictionCol="segment_index",
            featuresCol="rfmt_scaled",
            outputCol="ai_segment",
            distanceCol="ai_segment_distance",
            names=[],
            centers=[],
            profiles=[],
        )

    def getNames(self) -> list[str]:
        return self.getOrDefault(self.names)

    def getCenters(self) -> list[list[float]]:
        return self.getOrDefault(self.centers)

    def getProfiles(self) -> list[list[float]]:
        return self.getOrDefault(self.profiles)


class SegmentNamer(Transformer, _SegmentNamerParams, DefaultParamsReadable["SegmentNamer"], DefaultParamsWritable):
    """Maps a k-means cluster index to its human name and the distance to its centroid.

    Built-in column functions only (no UDF): the names and centers are literal arrays
    indexed by the cluster index. Saved with the pipeline (``DefaultParamsWritable``),
    so MLflow's spark flavour stores it and scoring needs nothing else.
    """

    # Set by @keyword_only on every call; declared here as pyspark's own stages do.
    _input_kwargs: dict[str, Any]

    @keyword_only
    def __init__(
        self,
        *,
        predictionCol: str = "segment_index",
        featuresCol: str = "rfmt_scaled",
        outputCol: str = "ai_segment",
        distanceCol: str = "ai_segment_distance",
        names: list[str] | None = None,
        centers: list[list[float]] | None = None,
        profiles: list[list[float]] | None = None,
    ):
        super().__init__()
        kwargs = {k: v for k, v in self._input_kwargs.items() if v is not None}
        self._set(**kwargs)

    @keyword_only
    def setParams(
        self,
        *,
        predictionCol: str = "segment_index",
        featuresCol: str = "rfmt_scaled",
        outputCol: str = "ai_segment",
        distanceCol: str = "ai_segment_distance",
        names: list[str] | None = None,
        centers: list[list[float]] | None = None,
        profiles: list[list[float]] | None = None,
    ) -> SegmentNamer:
        kwargs = {k: v for k, v in self._input_kwargs.items() if v is not None}
        return self._set(**kwargs)

    def getOutputCol(self) -> str:
        return self.getOrDefault(self.outputCol)

    def setOutputCol(self, value: str) -> SegmentNamer:
        """Rename the name column (MLflow's pyfunc wrapper calls this on the last stage)."""
        return self._set(outputCol=value)

    def _transform(self, dataset: DataFrame) -> DataFrame:
        names = self.getNames()
        if not names:
            raise ModelError("SegmentNamer has no names: it was built without fitted clusters")
        # 1-based; try_element_at gives null (not an ANSI error) for an index outside the list.
        idx = F.col(self.getOrDefault(self.predictionCol)).cast("int") + F.lit(1)
        out = dataset.withColumn(self.getOrDefault(self.outputCol), F.try_element_at(F.array(*map(F.lit, names)), idx))
        distance_col = self.getOrDefault(self.distanceCol)
        if distance_col:
            centers = F.array(*[F.array(*[F.lit(float(x)) for x in c]) for c in self.getCenters()])
            squares = F.zip_with(
                vector_to_array(F.col(self.getOrDefault(self.featuresCol))),
                F.try_element_at(centers, idx),
                lambda a, b: (a - b) * (a - b),
            )
            out = out.withColumn(distance_col, F.sqrt(F.aggregate(squares, F.lit(0.0), lambda acc, x: acc + x)))
        return out


# ------------------------------------------------------------------ RFMT model


def customers_only(features: DataFrame) -> DataFrame:
    """The customer rows of a feature partition (the population the models learn)."""
    return features.filter(F.col("persona_type") == F.lit("customer"))


def _require_columns(df: DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ModelError(f"{what}: customer_features lacks column(s) {', '.join(missing)}")


def canonical_layout(df: DataFrame, partitions: int | None = None) -> DataFrame:
    """``df`` hash-partitioned by persona_id into a fixed number of partitions, sorted within.

    Learners that sample or sum per partition (k-means|| initialisation, the scaler's
    moments) then see the same rows in the same places whatever the input's files or
    shuffle partitions were.
    """
    n = partitions or df.sparkSession.sparkContext.defaultParallelism
    return df.repartition(max(int(n), 1), "persona_id").sortWithinPartitions("persona_id")


def seeded_sample(df: DataFrame, fraction: float, seed: int) -> DataFrame:
    """The rows whose seeded hash of persona_id falls below ``fraction`` (layout-independent)."""
    if fraction >= 1.0:
        return df
    bucket = F.pmod(F.xxhash64(F.col("persona_id"), F.lit(int(seed))), F.lit(1_000_000)).cast("double") / 1e6
    return df.where(bucket < F.lit(float(fraction)))


def silhouette(model: PipelineModel, customers: DataFrame, features_col: str, prediction_col: str) -> float:
    """Silhouette (squared Euclidean) of ``model``'s clusters of ``customers``, in its own feature space."""
    scored = model.transform(customers).select(features_col, prediction_col)
    if scored.select(prediction_col).distinct().limit(2).count() < 2:
        return 0.0
    return float(ClusteringEvaluator(featuresCol=features_col, predictionCol=prediction_col).evaluate(scored))


def _rfmt_prep_stages() -> list[Any]:
    return [
        SQLTransformer(statement=_RFMT_PREP),
        VectorAssembler(inputCols=list(RFMT_VECTOR), outputCol="rfmt_raw"),
        StandardScaler(inputCol="rfmt_raw", outputCol="rfmt_scaled", withMean=True, withStd=True),
    ]


def fit_rfmt_model(
    customers: DataFrame,
    config: Config,
    previous: SegmentNamer | None = None,
    k: int | None = None,
    seed: int | None = None,
) -> tuple[PipelineModel, dict[str, Any]]:
    """Fit the RFMT k-means pipeline and name its clusters.

    Args:
        customers: customer rows with the :data:`RFMT_FEATURES` columns.
        config: ``segments`` section (k or [k_min, k_max], seed, max_iter, sample_fraction).
        previous: the previous champion's naming stage; names are matched to it.
        k: force k (overrides config).
        seed: force the k-means seed (overrides config).

    Returns:
        The fitted ``PipelineModel`` and a report: chosen k, silhouette and cost per
        k, and per segment its name, size and unscaled RFMT centroid.
    """
    cfg = config.segments
    _require_columns(customers, RFMT_FEATURES, "RFMT segments")
    data = canonical_layout(
        seeded_sample(customers.select("persona_id", *RFMT_FEATURES), cfg.sample_fraction, cfg.seed)
    )
    prep = Pipeline(stages=_rfmt_prep_stages()).fit(data)
    scaled = prep.transform(data).select("persona_id", "rfmt_scaled").cache()
    try:
        n = scaled.count()
        k_fixed = k or cfg.k
        candidates = [k_fixed] if k_fixed else list(range(cfg.k_min, cfg.k_max + 1))
        candidates = [c for c in candidates if 2 <= c <= max(n - 1, 2)] or [min(2, n)]
        if n < 2:
            raise ModelError(f"RFMT segments: need at least 2 customers to cluster, found {n}")
        evaluator = ClusteringEvaluator(featuresCol="rfmt_scaled", predictionCol="segment_index")
        trials: list[dict[str, Any]] = []
        best = None
        for c in candidates:
            km = KMeans(
                k=c,
                seed=seed if seed is not None else cfg.seed,
                maxIter=cfg.max_iter,
                featuresCol="rfmt_scaled",
                predictionCol="segment_index",
            ).fit(scaled)
            cost = float(km.summary.trainingCost)
            # One k: silhouette only reported; several: it decides.
            sil = float(evaluator.evaluate(km.transform(scaled))) if len(km.clusterCenters()) > 1 else 0.0
            trials.append({"k": c, "silhouette": sil, "cost": cost})
            if best is None or sil > best[0]:
                best = (sil, c, km)
        assert best is not None
        _, k_best, kmeans = best
        sizes = {
            int(r["segment_index"]): int(r["count"])
            for r in kmeans.transform(scaled).groupBy("segment_index").count().collect()
        }
    finally:
        scaled.unpersist()

    scaler = prep.stages[-1]
    if not isinstance(scaler, StandardScalerModel):
        raise ModelError(f"RFMT segments: the preparation pipeline ends in {type(scaler).__name__}, not a scaler")
    mean = list(scaler.mean.toArray())
    std = list(scaler.std.toArray())
    centers = [list(map(float, c)) for c in kmeans.clusterCenters()]
    # Back to the unscaled feature space (recency, log1p f, log1p m, tenure).
    profiles = [[c[i] * (std[i] or 1.0) + mean[i] for i in range(len(c))] for c in centers]
    renamed: list[dict[str, Any]] = []
    if previous is not None and previous.getNames() and previous.getProfiles():
        matched = match_names(
            profiles,
            previous.getProfiles(),
            previous.getNames(),
            scale=[s or 1.0 for s in std],
            max_distance=cfg.name_max_distance,
        )
        names = matched.names
        for r in matched.renamed:
            log.warning(
                "segment %d was %r but moved %.2f standard deviations from that centroid "
                "(segments.name_max_distance %.2f): named %r from its profile",
                r.index,
                r.previous_name,
                r.distance,
                cfg.name_max_distance,
                r.name,
            )
            renamed.append(dataclasses.asdict(r))
    else:
        names = [str(x) for x in name_clusters(profiles)]
    namer = SegmentNamer(names=names, centers=centers, profiles=profiles)
    model = PipelineModel(stages=[*prep.stages, kmeans, namer])
    segments = [
        {
            "index": i,
            "name": names[i],
            "customers": sizes.get(i, 0),
            "recency_days": round(p[0], 1),
            "frequency": round(_expm1(p[1]), 2),
            "monetary": round(_expm1(p[2]), 2),
            "tenure_days": round(p[3], 1),
        }
        for i, p in enumerate(profiles)
    ]
    report = {
        "k": k_best,
        "customers": n,
        "trials": trials,
        "segments": segments,
        "matched_previous": previous is not None,
        "renamed": renamed,
    }
    return model, report


def _expm1(x: float) -> float:
    return math.expm1(x)


def namer_of(model: PipelineModel) -> SegmentNamer:
    """The naming stage of a fitted segments pipeline."""
    for stage in reversed(model.stages):
        if isinstance(stage, SegmentNamer):
            return stage
    raise ModelError("the segments model has no SegmentNamer stage: it was not trained by segengine")


# ------------------------------------------------------------------ B2B model


def fit_b2b_model(
    customers: DataFrame, config: Config, seed: int | None = None
) -> tuple[PipelineModel, dict[str, Any]]:
    """Fit the multi-dimensional (persona type × value × industry) clustering.

    Args:
        customers: customer rows with :data:`B2B_FEATURES`.
        config: ``segments.b2b_k`` and seed/max_iter.
        seed: force the k-means seed.

    Returns:
        The fitted ``PipelineModel`` (output ``b2b_segment``) and a report per segment.
    """
    cfg = config.segments
    _require_columns(customers, B2B_FEATURES, "B2B segments")
    data = canonical_layout(seeded_sample(customers.select("persona_id", *B2B_FEATURES), cfg.sample_fraction, cfg.seed))
    cats = [f"b2b_{c}" for c in B2B_CATEGORICAL]
    stages: list[Estimator[Any] | Transformer] = [
        SQLTransformer(statement=_B2B_PREP),
        StringIndexer(inputCols=cats, outputCols=[f"{c}_idx" for c in cats], handleInvalid="keep"),
        OneHotEncoder(
            inputCols=[f"{c}_idx" for c in cats], outputCols=[f"{c}_vec" for c in cats], handleInvalid="keep"
        ),
        VectorAssembler(inputCols=["b2b_monetary", "b2b_frequency"], outputCol="b2b_num"),
        StandardScaler(inputCol="b2b_num", outputCol="b2b_num_scaled", withMean=True, withStd=True),
        VectorAssembler(inputCols=[*[f"{c}_vec" for c in cats], "b2b_num_scaled"], outputCol="b2b_features"),
    ]
    prep = Pipeline(stages=stages).fit(data)
    prepared = prep.transform(data).select("persona_id", *cats, "frequency", "b2b_features").cache()
    try:
        n = prepared.count()
        if n < 2:
            raise ModelError(f"B2B segments: need at least 2 customers to cluster, found {n}")
        kmeans = KMeans(
            k=max(2, min(cfg.b2b_k, n - 1)),
            seed=seed if seed is not None else cfg.seed,
            maxIter=cfg.max_iter,
            featuresCol="b2b_features",
            predictionCol="b2b_index",
        ).fit(prepared)
        assigned = kmeans.transform(prepared)
        # A few dozen rows: cluster × level counts, to find each cluster's dominant levels.
        counts: dict[int, dict[str, dict[str, int]]] = {}
        for col in cats:
            for r in assigned.groupBy("b2b_index", col).agg(F.count("*").alias("n")).collect():
                counts.setdefault(int(r["b2b_index"]), {}).setdefault(col, {})[r[col]] = int(r["n"])
        orders = {
            int(r["b2b_index"]): r["orders"]
            for r in assigned.groupBy("b2b_index").agg(F.avg("frequency").alias("orders")).collect()
        }
    finally:
        prepared.unpersist()
    k = len(kmeans.clusterCenters())
    dominant = {
        i: {col: _mode(counts.get(i, {}).get(col, {})) for col in cats}
        | {"size": sum(counts.get(i, {}).get(cats[0], {}).values()), "orders": orders.get(i)}
        for i in range(k)
    }
    names = b2b_names([dominant[i] for i in range(k)])
    namer = SegmentNamer(
        predictionCol="b2b_index",
        featuresCol="b2b_features",
        outputCol="b2b_segment",
        distanceCol="",
        names=names,
        centers=[list(map(float, c)) for c in kmeans.clusterCenters()],
    )
    model = PipelineModel(stages=[*prep.stages, kmeans, namer])
    report = {
        "k": k,
        "customers": n,
        "segments": [{"index": i, "name": names[i], "customers": dominant[i]["size"]} for i in range(k)],
    }
    return model, report


def _mode(levels: dict[str, int]) -> str:
    if not levels:
        return "none"
    # Most frequent; ties broken by name so the result is deterministic.
    return sorted(levels.items(), key=lambda kv: (-kv[1], str(kv[0])))[0][0]


def b2b_names(dominant: Sequence[dict[str, Any]]) -> list[str]:
    """Names like ``B2B · Retail · high value`` from each cluster's dominant levels.

    A cluster whose dominant industry is missing ('none') is a consumer cluster:
    ``B2C · <value>``. Duplicate names are told apart by the B2B attributes that are
    set (company size, then plan; a missing one, 'none', says nothing and is left out),
    then by the cluster's mean number of orders in the cycle, then by a number.

    Args:
        dominant: per cluster the dominant ``b2b_industry``, ``b2b_value_tier``,
            ``b2b_company_size`` and ``b2b_plan``, and optionally ``orders`` (mean
            orders in the cycle).

    Returns:
        One unique name per cluster.
    """
    base = []
    for d in dominant:
        value = _VALUE_LABEL.get(d.get("b2b_value_tier", "none"), "unknown value")
        industry = d.get("b2b_industry", "none")
        base.append(f"B2C · {value}" if industry == "none" else f"B2B · {str(industry).title()} · {value}")
    names = list(base)

    def level(i: int, extra: str) -> str | None:
        if extra == "orders":
            mean = dominant[i].get("orders")
            return None if mean is None else f"{mean:.1f} orders"
        found = dominant[i].get(extra, "none")
        return None if found in (None, "none") else str(found)

    for extra in ("b2b_company_size", "b2b_plan", "orders"):
        dupes = {n for n in names if names.count(n) > 1}
        names = [
            f"{n} · {level(i, extra)}" if n in dupes and level(i, extra) is not None else n for i, n in enumerate(names)
        ]
    seen: dict[str, int] = {}
    out = []
    for n in names:
        seen[n] = seen.get(n, 0) + 1
        out.append(n if names.count(n) == 1 else f"{n} #{seen[n]}")
    return out


# ------------------------------------------------------------------ apply


def apply_segment_models(features: DataFrame, rfmt_model: PipelineModel, b2b_model: PipelineModel | None) -> DataFrame:
    """Fill ai_segment, ai_segment_distance (and b2b_segment) of a feature partition.

    Customers get the models' outputs; prospects and visitors get nulls. The result
    has exactly the input's columns, order and types, ready for ``overwrite_partition``.

    Args:
        features: one ``customer_features`` partition.
        rfmt_model: the fitted RFMT segments pipeline.
        b2b_model: the fitted B2B pipeline, or None to leave b2b_segment as it is.

    Returns:
        The partition with the model columns replaced.
    """
    customers = customers_only(features)
    rfmt = rfmt_model.transform(customers.select("persona_id", *RFMT_FEATURES)).select(
        "persona_id",
        F.col("ai_segment").alias("_ai_segment"),
        F.col("ai_segment_distance").alias("_ai_segment_distance"),
    )
    scored = rfmt
    replaced = {"ai_segment": "_ai_segment", "ai_segment_distance": "_ai_segment_distance"}
    if b2b_model is not None and "b2b_segment" in features.columns:
        b2b = b2b_model.transform(customers.select("persona_id", *B2B_FEATURES)).select(
            "persona_id", F.col("b2b_segment").alias("_b2b_segment")
        )
        scored = scored.join(b2b, "persona_id", "full")
        replaced["b2b_segment"] = "_b2b_segment"
    joined = features.join(scored, "persona_id", "left")
    types = dict(features.dtypes)
    return joined.select(
        *[
            F.col(replaced[c]).cast(types[c]).alias(c) if c in replaced and c in types else F.col(c)
            for c in features.columns
        ]
    )


# ------------------------------------------------------------------ jobs


def _input_example(df: DataFrame, columns: Sequence[str]) -> Any:
    return df.select(*columns).limit(5).toPandas()


def train_segments(
    spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date, force_promote: bool = False
) -> dict[str, Any]:
    """Train, log, register and (gated) promote the RFMT and B2B segment models.

    Reads the ``customer_features`` partition of ``snapshot_date``. Each model is one
    MLflow run (params, k trials, silhouette/cost, segment sizes, the Spark model with
    signature and input example), registered under ``segments.model_name`` /
    ``segments.b2b_model_name``. Each becomes the champion only if its silhouette on the
    date's customers is not lower than the current champion's on the same customers
    (or ``force_promote``); otherwise it is the challenger. Names are matched to the
    current champion's (if any) so they stay stable.

    Args:
        spark: the session.
        lake: the storage layer.
        config: the configuration.
        snapshot_date: which feature partition to learn from.
        force_promote: make both new versions champions whatever their silhouette.

    Returns:
        Summary: versions, k, silhouette, segment names and sizes, and ``promotion``
        per model (alias given, new vs champion silhouette).
    """
    import mlflow  # imported where used: importing mlflow takes seconds

    require_feature_partition(lake, snapshot_date)
    configure_mlflow(config)
    features = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    customers = customers_only(features).cache()
    try:
        # Each champion resolved once: its names, and its silhouette, come from that version.
        rfmt_champion = champion_version(config, config.segments.model_name)
        b2b_champion = champion_version(config, config.segments.b2b_model_name)
        rfmt_loaded: dict[str, Any] = {}

        def load_rfmt(mv: Any) -> Any:
            if mv.version not in rfmt_loaded:
                rfmt_loaded[mv.version] = load_version(config, mv, check=False).model
            return rfmt_loaded[mv.version]

        previous = None
        if rfmt_champion is not None:
            try:
                previous = namer_of(load_rfmt(rfmt_champion))
            except ModelError:
                previous = None  # not a segengine model: names from the rule
        model, report = fit_rfmt_model(customers, config, previous=previous)
        rfmt_data = customers.select("persona_id", *RFMT_FEATURES)
        rfmt_validation = Validation(
            "silhouette", silhouette(model, rfmt_data, "rfmt_scaled", "segment_index"), higher_is_better=True
        )
        rfmt_validation.champion_version, rfmt_validation.champion_value, rfmt_validation.note = score_champion(
            rfmt_champion, lambda mv: silhouette(load_rfmt(mv), rfmt_data, "rfmt_scaled", "segment_index")
        )
        example = _input_example(customers, ["persona_id", *RFMT_FEATURES])
        with mlflow.start_run(run_name=f"segments {snapshot_date}"):
            mlflow.log_params(
                {
                    "snapshot_date": str(snapshot_date),
                    "features": ",".join(RFMT_FEATURES),
                    "k": report["k"],
                    "k_range": f"{config.segments.k_min}-{config.segments.k_max}" if not config.segments.k else "fixed",
                    "seed": config.segments.seed,
                    "max_iter": config.segments.max_iter,
                    "sample_fraction": config.segments.sample_fraction,
                    "matched_previous": report["matched_previous"],
                }
            )
            for t in report["trials"]:
                mlflow.log_metric("silhouette", t["silhouette"], step=t["k"])
                mlflow.log_metric("training_cost", t["cost"], step=t["k"])
            chosen = next(t for t in report["trials"] if t["k"] == report["k"])
            mlflow.log_metrics(
                {
                    "chosen_silhouette": chosen["silhouette"],
                    "customers": report["customers"],
                    "renamed_segments": len(report["renamed"]),
                }
            )
            mlflow.log_dict(report, "segments.json")
            out = model.transform(spark.createDataFrame(example)).select("ai_segment", "ai_segment_distance").toPandas()
            info = log_spark_model(model, example, RFMT_FEATURES, out)
        promotion = register_and_promote(
            config, info.model_uri, config.segments.model_name, RFMT_FEATURES, rfmt_validation, force=force_promote
        )
        version = promotion.version

        b2b_model, b2b_report = fit_b2b_model(customers, config)
        b2b_data = customers.select("persona_id", *B2B_FEATURES)
        b2b_validation = Validation(
            "silhouette", silhouette(b2b_model, b2b_data, "b2b_features", "b2b_index"), higher_is_better=True
        )
        b2b_validation.champion_version, b2b_validation.champion_value, b2b_validation.note = score_champion(
            b2b_champion,
            lambda mv: silhouette(load_version(config, mv, check=False).model, b2b_data, "b2b_features", "b2b_index"),
        )
        b2b_example = _input_example(customers, ["persona_id", *B2B_FEATURES])
        with mlflow.start_run(run_name=f"b2b segments {snapshot_date}"):
            mlflow.log_params(
                {
                    "snapshot_date": str(snapshot_date),
                    "features": ",".join(B2B_FEATURES),
                    "k": b2b_report["k"],
                    "seed": config.segments.seed,
                }
            )
            mlflow.log_metric("customers", b2b_report["customers"])
            mlflow.log_dict(b2b_report, "b2b_segments.json")
            b2b_out = b2b_model.transform(spark.createDataFrame(b2b_example)).select("b2b_segment").toPandas()
            b2b_info = log_spark_model(b2b_model, b2b_example, B2B_FEATURES, b2b_out)
        b2b_promotion = register_and_promote(
            config,
            b2b_info.model_uri,
            config.segments.b2b_model_name,
            B2B_FEATURES,
            b2b_validation,
            force=force_promote,
        )
        b2b_version = b2b_promotion.version
    finally:
        customers.unpersist()
    return {
        "snapshot_date": str(snapshot_date),
        "model": config.segments.model_name,
        "version": version,
        "k": report["k"],
        "silhouette": chosen["silhouette"],
        "segments": {s["name"]: s["customers"] for s in report["segments"]},
        "b2b_model": config.segments.b2b_model_name,
        "b2b_version": b2b_version,
        "b2b_segments": {s["name"]: s["customers"] for s in b2b_report["segments"]},
        "promotion": {"segments": promotion.as_dict(), "b2b_segments": b2b_promotion.as_dict()},
    }


def score_segments(spark: SparkSession, lake: Lake, config: Config, snapshot_date: dt.date) -> dict[str, Any]:
    """Write ai_segment, ai_segment_distance and b2b_segment into the date's feature partition.

    Loads both models by their champion alias and refuses one whose logged feature
    list does not match the catalog (:class:`ModelError`). Idempotent: the partition
    is replaced in one commit with the same schema.

    Args:
        spark: the session.
        lake: the storage layer.
        config: the configuration.
        snapshot_date: the feature partition to score.

    Returns:
        Summary: model versions, table version, customers per segment.
    """
    require_feature_partition(lake, snapshot_date)  # never score (and write) a missing snapshot
    configure_mlflow(config)
    rfmt = load_champion(config, config.segments.model_name)
    b2b = load_champion(config, config.segments.b2b_model_name)
    features = lake.read("customer_features", partitions={"snapshot_date": snapshot_date})
    scored = apply_segment_models(features, rfmt.model, b2b.model).cache()
    try:
        sizes = {
            r["ai_segment"]: int(r["count"]) for r in scored.groupBy("ai_segment").count().collect() if r["ai_segment"]
        }
        version = lake.overwrite_partition(scored, "customer_features", snapshot_date=snapshot_date)
    finally:
        scored.unpersist()
    return {
        "snapshot_date": str(snapshot_date),
        "model_version": rfmt.version,
        "b2b_model_version": b2b.version,
        "table_version": version,
        "segments": sizes,
        "scored_b2b": "b2b_segment" in features.columns,
    }
