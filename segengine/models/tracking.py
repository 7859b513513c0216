"""MLflow plumbing shared by every model: tracking URI, experiment, log, register, load.

The embedded default keeps everything next to the data: a SQLite tracking and registry
store at ``<warehouse>/mlflow.db`` and artifacts under ``<warehouse>/mlartifacts``. A
cluster sets ``mlflow.tracking_uri`` (and optionally ``mlflow.registry_uri``).

Scoring jobs never name a run or a version: they load ``models:/<name>@<alias>``
(``mlflow.champion_alias``, default ``champion``), so a data scientist promotes a model
by moving the alias, without touching jobs.

Every model records the feature columns it reads, with their catalog types, as the tag
``segengine.features`` on its run and its registered version. :func:`check_features`
refuses a model whose list no longer matches the feature catalog.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from segengine.errors import ConfigError, ModelError

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.ml import PipelineModel

    from segengine.config import Config

log = logging.getLogger(__name__)

FEATURES_TAG = "segengine.features"
MODEL_ARTIFACT = "model"


def default_tracking_uri(config: Config) -> str:
    """``sqlite:///<warehouse>/mlflow.db`` for a local warehouse.

    Raises:
        ConfigError: the warehouse is remote and ``mlflow.tracking_uri`` is not set
            (a SQLite file cannot live on s3a:// or abfss://).
    """
    if not config.is_local_warehouse:
        raise ConfigError(
            f"mlflow.tracking_uri: required when the warehouse is not local ({config.warehouse}); "
            "set it to your tracking server, e.g. http://mlflow:5000"
        )
    path = config.warehouse_uri
    if path.startswith("file:"):
        path = path[len("file:") :].lstrip("/")
        path = "/" + path
    return f"sqlite:///{os.path.join(path, 'mlflow.db')}"


def _artifact_location(config: Config, uri: str) -> str | None:
    # A tracking server decides its artifact root; a local store keeps artifacts next
    # to the data (MLflow's own default would be ./mlruns in whatever the cwd is).
    if uri.startswith(("http://", "https://", "databricks")) or not config.is_local_warehouse:
        return None
    return os.path.join(config.warehouse_uri, "mlartifacts")


def configure_mlflow(config: Config) -> str:
    """Point MLflow at the configured tracking/registry store and experiment.

    Args:
        config: the segengine configuration (``mlflow`` section and warehouse).

    Returns:
        The tracking URI in use.
    """
    import mlflow

    uri = config.mlflow.tracking_uri or default_tracking_uri(config)
    if uri.startswith("sqlite:///"):
        os.makedirs(os.path.dirname(uri[len("sqlite:///") :]) or ".", exist_ok=True)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(config.mlflow.registry_uri or uri)
    name = config.mlflow.experiment
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        # The artifact root is fixed at creation: under the warehouse, never the cwd.
        mlflow.create_experiment(name, artifact_location=_artifact_location(config, uri))
    mlflow.set_experiment(name)
    return uri


def feature_signature(columns: Sequence[str]) -> str:
    """``name:type,…`` for ``columns``, types from the feature catalog.

    Raises:
        ModelError: a column is not in the catalog.
    """
    from segengine.features.catalog import CATALOG

    missing = [c for c in columns if c not in CATALOG]
    if missing:
        raise ModelError(f"model features not in the feature catalog: {', '.join(missing)}")
    return ",".join(f"{c}:{CATALOG[c].type}" for c in columns)


def parse_feature_signature(text: str) -> list[tuple[str, str]]:
    """Inverse of :func:`feature_signature`."""
    out = []
    for item in filter(None, (text or "").split(",")):
        name, _, typ = item.partition(":")
        out.append((name, typ))
    return out


def check_features(model_name: str, version: str, logged: str | None) -> list[str]:
    """Refuse a model whose logged feature list does not match the current catalog.

    Args:
        model_name: registered model name (for the message).
        version: registered version (for the message).
        logged: the ``segengine.features`` tag of the model.

    Returns:
        The feature column names the model reads.

    Raises:
        ModelError: no feature list was logged, or a feature is missing from the
            catalog or changed type.
    """
    from segengine.features.catalog import CATALOG

    if not logged:
        raise ModelError(
            f"model {model_name} version {version} has no {FEATURES_TAG} tag: it was not trained by segengine; retrain it"
        )
    problems = []
    for name, typ in parse_feature_signature(logged):
        attr = CATALOG.get(name)
        if attr is None:
            problems.append(f"{name} is no longer in the catalog")
        elif attr.type != typ:
            problems.append(f"{name} was {typ}, the catalog now says {attr.type}")
    if problems:
        raise ModelError(
            f"model {model_name} version {version} does not match the feature catalog: "
            + "; ".join(problems)
            + " (retrain it with the current features)"
        )
    return [n for n, _ in parse_feature_signature(logged)]


def log_spark_model(
    model: PipelineModel,
    input_example: pd.DataFrame,
    features: Sequence[str],
    output_example: pd.DataFrame | None = None,
) -> Any:
    """Log a fitted Spark pipeline to the active run with a signature and input example.

    The signature is inferred from the small pandas ``input_example`` (and
    ``output_example`` when given); pip requirements are pinned to the running
    pyspark so nothing is resolved over the network.

    Args:
        model: the fitted ``PipelineModel``.
        input_example: a few rows of the model's input columns.
        features: the feature columns the model reads (logged as a tag).
        output_example: a few rows of the model's output, for the signature.

    Returns:
        MLflow's ``ModelInfo`` (``.model_uri`` feeds :func:`register_model`).
    """
    import mlflow
    import mlflow.spark
    import pyspark
    from mlflow.models import infer_signature

    # Integer features can be null (no purchase yet); declare them as doubles, which
    # every segengine pipeline casts anyway, so the signature admits missing values.
    ints = [c for c, t in input_example.dtypes.items() if str(t).startswith(("int", "Int"))]
    input_example = input_example.astype({c: "float64" for c in ints})
    signature = infer_signature(input_example, output_example)
    mlflow.set_tag(FEATURES_TAG, feature_signature(features))
    # The spark flavour still takes the artifact path positionally.
    return mlflow.spark.log_model(
        model,
        MODEL_ARTIFACT,
        signature=signature,
        input_example=input_example,
        pip_requirements=[f"pyspark=={pyspark.__version__}"],
        # The output example was computed by the fitted model itself; MLflow's extra
        # reload-and-predict check would only save and load the pipeline once more.
        validate_serving_input=False,
    )


def register_model(config: Config, model_uri: str, name: str, features: Sequence[str], set_alias: bool = True) -> str:
    """Register ``model_uri`` under ``name``, tag it, and move the champion alias to it.

    Args:
        config: for ``mlflow.champion_alias``.
        model_uri: from :func:`log_spark_model` (``models:/m-…`` or ``runs:/…``).
        name: registered model name.
        features: the feature columns (tagged on the version for scoring checks).
        set_alias: move the champion alias to the new version.

    Returns:
        The new version number (as a string).
    """
    import mlflow
    from mlflow import MlflowClient

    mv = mlflow.register_model(model_uri, name)
    client = MlflowClient()
    client.set_model_version_tag(name, mv.version, FEATURES_TAG, feature_signature(features))
    if set_alias:
        client.set_registered_model_alias(name, config.mlflow.champion_alias, mv.version)
    return str(mv.version)


@dataclass
class LoadedModel:
    """A registered model loaded by alias, with what scoring needs to know about it."""

    name: str
    version: str
    run_id: str | None
    features: list[str]
    model: Any


def champion_version(config: Config, name: str) -> Any | None:
    """The registry entry the champion alias points to, or None if there is none."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    try:
        return MlflowClient().get_model_version_by_alias(name, config.mlflow.champion_alias)
    except MlflowException:
        return None


def load_champion(config: Config, name: str, check: bool = True) -> LoadedModel:
    """Load ``models:/<name>@<champion_alias>`` as a Spark ``PipelineModel``.

    Args:
        config: the configuration (alias name).
        name: registered model name.
        check: refuse a model whose features do not match the catalog.

    Returns:
        The loaded model and its registry facts.

    Raises:
        ModelError: no such model/alias, or its features do not match the catalog.
    """
    import mlflow.spark

    mv = champion_version(config, name)
    alias = config.mlflow.champion_alias
    if mv is None:
        raise ModelError(
            f"no registered model {name}@{alias}: train it first (segengine train ...) "
            "or point the alias at a version in MLflow"
        )
    logged = (mv.tags or {}).get(FEATURES_TAG)
    features = check_features(name, mv.version, logged) if check else [n for n, _ in parse_feature_signature(logged)]
    model = mlflow.spark.load_model(f"models:/{name}@{alias}")
    return LoadedModel(name=name, version=str(mv.version), run_id=mv.run_id, features=features, model=model)


def list_models(config: Config, names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Registered models with their versions, aliases and feature lists (for ``segengine models list``)."""
    from mlflow import MlflowClient

    client = MlflowClient()
    out = []
    for rm in client.search_registered_models():
        if names is not None and rm.name not in names:
            continue
        aliases = dict(rm.aliases or {})
        for mv in client.search_model_versions(f"name='{rm.name}'"):
            out.append(
                {
                    "name": rm.name,
                    "version": str(mv.version),
                    "aliases": sorted(a for a, v in aliases.items() if str(v) == str(mv.version)),
                    "run_id": mv.run_id,
                    "created": mv.creation_timestamp,
                    "features": (mv.tags or {}).get(FEATURES_TAG, ""),
                }
            )
    return sorted(out, key=lambda r: (r["name"], -int(r["version"])))
