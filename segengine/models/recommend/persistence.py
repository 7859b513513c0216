"""Saving and loading models: bundles on the lake, the MLflow pipeline with its id mappings, the champion."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pyspark.ml import PipelineModel
from pyspark.ml.recommendation import ALSModel

from segengine.errors import ModelError
from segengine.models.idmap import IdMapping
from segengine.models.recommend.als import RecommendModel
from segengine.models.recommend.schema import ITEM_IDX, USER_IDX
from segengine.models.tracking import champion_version, configure_mlflow, load_version

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config


def bundle_root(config: Config) -> str:
    """Where trained recommendation bundles live: ``<warehouse>/models/recommend``."""
    return config.warehouse_uri.rstrip("/") + "/models/recommend"


def save_model(model: RecommendModel, path: str) -> str:
    """Save the ALS model and both id mappings under ``path`` (any Hadoop URI).

    Args:
        model: the trained model.
        path: target directory (overwritten).

    Returns:
        ``path``.
    """
    model.als.write().overwrite().save(path + "/als")
    model.users.write.mode("overwrite").parquet(path + "/users")
    model.items.write.mode("overwrite").parquet(path + "/items")
    return path


def load_model(spark: SparkSession, path: str) -> RecommendModel:
    """Load a bundle written by :func:`save_model`.

    Args:
        spark: the session.
        path: bundle directory.

    Returns:
        The :class:`RecommendModel`.
    """
    return RecommendModel(
        ALSModel.load(path + "/als"), spark.read.parquet(path + "/users"), spark.read.parquet(path + "/items")
    )


def _hadoop_fs(spark: SparkSession, uri: str) -> tuple[Any, Any]:
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise ModelError("no JVM behind this SparkSession (Spark Connect?): cannot read the model's id mappings")
    path = jvm.org.apache.hadoop.fs.Path(uri)
    return path.getFileSystem(spark.sparkContext._jsc.hadoopConfiguration()), path


BUNDLE_TAG = "segengine.bundle"
VALIDATION_MODEL_TAG = "segengine.validation_model"
VALIDATION_METRIC = "precision_at_k"


def recommend_pipeline(model: RecommendModel) -> PipelineModel:
    """The model as one ``PipelineModel([IdMapping(users), IdMapping(items), ALSModel])``.

    Logged to MLflow as is, so a registered version holds its own id mappings.
    """
    return PipelineModel(
        stages=[
            IdMapping.of(model.users, "persona_id", USER_IDX),
            IdMapping.of(model.items, "product_id", ITEM_IDX),
            model.als,
        ]
    )


def from_pipeline(pipeline: PipelineModel | ALSModel) -> RecommendModel | None:
    """The :class:`RecommendModel` of a :func:`recommend_pipeline` (None: no id mappings in it)."""
    stages = pipeline.stages if isinstance(pipeline, PipelineModel) else [pipeline]
    als = next((s for s in stages if isinstance(s, ALSModel)), None)
    maps = {s.getIdCol(): s.mapping for s in stages if isinstance(s, IdMapping)}
    users, items = maps.get("persona_id"), maps.get("product_id")
    if als is None or users is None or items is None:
        return None
    return RecommendModel(als, users, items)


def load_recommend_version(spark: SparkSession, config: Config, mv: Any, validation: bool = False) -> RecommendModel:
    """Load one registered version (its own id mappings), or with ``validation`` its validation model.

    Versions registered before the mappings were part of the model read them from the
    bundle their ``segengine.bundle`` tag names (of that same version).

    Raises:
        ModelError: no ALS in it, or its id mappings are missing.
    """
    import mlflow.spark  # imported where used: importing mlflow takes seconds

    name = mv.name
    tags = mv.tags or {}
    if validation:
        uri = tags.get(VALIDATION_MODEL_TAG)
        pipeline = mlflow.spark.load_model(uri) if uri else load_version(config, mv, check=False).model
    else:
        pipeline = load_version(config, mv, check=False).model
    model = from_pipeline(pipeline)
    if model is not None:
        return model
    path = tags.get(BUNDLE_TAG)
    if not path and mv.run_id:
        from mlflow import MlflowClient  # see above

        path = MlflowClient().get_run(mv.run_id).data.tags.get(BUNDLE_TAG)
    if not path:
        raise ModelError(
            f"model {name} version {mv.version} has no id mappings (neither in the model nor a {BUNDLE_TAG} tag): "
            "it was not trained by `segengine train recommendations`; retrain it"
        )
    for part in ("users", "items"):
        fs, hpath = _hadoop_fs(spark, f"{path}/{part}")
        if not fs.exists(hpath):
            raise ModelError(
                f"model {name} version {mv.version}: its id mappings are missing ({path}/{part}); retrain it"
            )
    als = pipeline.stages[0] if isinstance(pipeline, PipelineModel) else pipeline
    if not isinstance(als, ALSModel):
        raise ModelError(f"model {name} version {mv.version} has no ALS stage first; retrain it")
    return RecommendModel(als, spark.read.parquet(path + "/users"), spark.read.parquet(path + "/items"))


def load_champion_model(spark: SparkSession, config: Config) -> tuple[RecommendModel, str]:
    """Load the recommender the MLflow alias ``mlflow.champion_alias`` points to.

    The alias is resolved to a version once; the ALS factors and the id mappings both
    come from that version (:func:`recommend_pipeline`). Promoting another version
    (moving the alias) switches scoring to it, as for the segment and CLV models.

    Args:
        spark: the session.
        config: configuration (MLflow section, ``recommend.model_name``).

    Returns:
        (the :class:`RecommendModel`, its registered version).

    Raises:
        ModelError: no champion (says which command trains one), or its version has no
            id mappings.
    """
    configure_mlflow(config)
    name, alias = config.recommend.model_name, config.mlflow.champion_alias
    mv = champion_version(config, name)
    if mv is None:
        raise ModelError(
            f"no registered recommendation model {name}@{alias}: run "
            "`segengine train recommendations --date YYYY-MM-DD` first (or point the alias at a version: "
            "segengine models promote NAME --version N)"
        )
    return load_recommend_version(spark, config, mv), str(mv.version)
