"""MLflow plumbing shared by every model: tracking URI, experiment, log, register, load.

The embedded default keeps everything next to the data: a SQLite tracking and registry
store at ``<warehouse>/mlflow.db`` and artifacts under ``<warehouse>/mlartifacts``. A
cluster sets ``mlflow.tracking_uri`` (and optionally ``mlflow.registry_uri``).

Scoring jobs never name a run or a version: they resolve the alias
``mlflow.champion_alias`` (default ``champion``) to a version once and load that version
(:func:`load_champion`), so a data scientist promotes a model by moving the alias,
without touching jobs.

Promotion is gated (:func:`register_and_promote`, the one function every training job
uses): a new version becomes the champion only if its validation metric is not worse
than the current champion's, computed on the same validation data in the same run;
otherwise it gets the alias ``mlflow.challenger_alias`` (``challenger``) and the champion
stays. ``force=True`` (``--force-promote``) promotes anyway and tags the version
``segengine.promotion=forced``. Rollback is moving the alias back
(:func:`promote_version`, ``segengine models promote NAME --version N``); the next
retrain compares with whatever version the alias then points to.

Every model records the feature columns it reads, with their catalog types, as the tag
``segengine.features`` on its run and its registered version. :func:`check_features`
refuses a model whose list no longer matches the feature catalog.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from segengine.errors import ConfigError, ModelError, SegengineError, did_you_mean

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.ml import PipelineModel

    from segengine.config import Config

log = logging.getLogger(__name__)

FEATURES_TAG = "segengine.features"
PROMOTION_TAG = "segengine.promotion"  # champion | challenger | forced | first | manual
VALIDATION_TAG = "segengine.validation"  # "<metric>=<value>; champion v<N>=<value>"
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


def parse_feature_signature(text: str | None) -> list[tuple[str, str]]:
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


def register_model(
    config: Config,
    model_uri: str,
    name: str,
    features: Sequence[str],
    set_alias: bool = True,
    tags: dict[str, str] | None = None,
) -> str:
    """Register ``model_uri`` under ``name`` and tag it; optionally move the champion alias to it.

    Training jobs go through :func:`register_and_promote` (gated); this is the plain
    registration underneath.

    Args:
        config: for ``mlflow.champion_alias``.
        model_uri: from :func:`log_spark_model` (``models:/m-…`` or ``runs:/…``).
        name: registered model name.
        features: the feature columns (tagged on the version for scoring checks).
        set_alias: move the champion alias to the new version (ungated).
        tags: more version tags, set before any alias can point at the version.

    Returns:
        The new version number (as a string).
    """
    import mlflow
    from mlflow import MlflowClient

    mv = mlflow.register_model(model_uri, name)
    client = MlflowClient()
    client.set_model_version_tag(name, mv.version, FEATURES_TAG, feature_signature(features))
    for key, value in (tags or {}).items():
        client.set_model_version_tag(name, mv.version, key, value)
    if set_alias:
        client.set_registered_model_alias(name, config.mlflow.champion_alias, mv.version)
    return str(mv.version)


@dataclass
class Validation:
    """One validation metric of a new model and of the current champion, on the same data.

    ``champion_version`` is the version the champion alias pointed to when training
    started (resolved once); ``champion_value`` is None when there was no champion or it
    could not be evaluated (``note`` says why).
    """

    metric: str
    value: float
    higher_is_better: bool
    champion_version: str | None = None
    champion_value: float | None = None
    note: str = ""

    def not_worse(self) -> bool:
        """The new value is at least as good as the champion's (True without a champion value)."""
        if self.value != self.value:  # NaN (no validation metric) never wins
            return False
        if self.champion_value is None:
            return True
        return self.value >= self.champion_value if self.higher_is_better else self.value <= self.champion_value


@dataclass
class Promotion:
    """Where a newly registered version ended up, and why."""

    name: str
    version: str
    alias: str
    status: str  # first | champion | challenger | forced
    validation: Validation
    champion_version: str | None  # the champion after this decision
    reason: str = ""  # why a not-worse model is still the challenger

    def line(self) -> str:
        """One line for the command's output: model, new metric vs champion metric, decision."""
        v = self.validation
        new = f"{v.metric} {_fmt(v.value)}"
        if v.champion_version is None:
            against = "no champion before"
        elif v.champion_value is None:
            against = f"champion v{v.champion_version} not comparable: {v.note}"
        else:
            against = f"champion v{v.champion_version} {_fmt(v.champion_value)}"
        better = "higher" if v.higher_is_better else "lower"
        head = f"{self.name} v{self.version}: {new} vs {against} ({better} is better)"
        if self.status == "challenger":
            why = f" ({self.reason})" if self.reason else ""
            return f"{head} -> {self.alias}; champion stays v{self.champion_version}{why}"
        if self.status == "forced":
            return f"{head} -> {self.alias} (forced with --force-promote)"
        return f"{head} -> {self.alias}"

    def as_dict(self) -> dict[str, Any]:
        v = self.validation
        return {
            "version": self.version,
            "alias": self.alias,
            "status": self.status,
            "metric": v.metric,
            "value": v.value,
            "champion_version": v.champion_version,
            "champion_value": v.champion_value,
            "line": self.line(),
        }


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def score_champion(mv: Any | None, evaluate: Callable[[Any], Any]) -> tuple[str | None, Any | None, str]:
    """``(version, evaluate(mv), note)`` for the champion ``mv`` resolved when training started.

    ``evaluate`` computes the champion's validation metric on the new model's validation
    data (or loads what the caller needs to compute it). A champion that cannot be
    evaluated (its features left the catalog, its artifacts are gone, it needs columns
    the data lacks) gets None: scoring would refuse it too, so the new model is
    promoted, and ``note`` says why.
    """
    from mlflow.exceptions import MlflowException
    from pyspark.errors import PySparkException

    if mv is None:
        return None, None, "no champion"
    try:
        return str(mv.version), evaluate(mv), ""
    except (SegengineError, MlflowException, PySparkException, OSError) as exc:
        first = (str(exc).splitlines() or [""])[0][:300]
        log.warning("champion %s v%s could not be evaluated on the new validation data: %s", mv.name, mv.version, first)
        return str(mv.version), None, first


def register_and_promote(
    config: Config,
    model_uri: str,
    name: str,
    features: Sequence[str],
    validation: Validation,
    force: bool = False,
    tags: dict[str, str] | None = None,
) -> Promotion:
    """Register a new version and give it the champion alias only if it is not worse.

    The one promotion rule of every registered model (segments, B2B segments, CLV,
    recommendations): champion when there was none, when ``validation.not_worse()``
    (the champion's value was computed on the same validation data), or when ``force``
    (logged as a warning, tagged ``segengine.promotion=forced``); otherwise the
    challenger alias. If the champion alias moved while this model trained (someone
    promoted or rolled back), the new version is a challenger unless forced: it was
    compared with another version.

    Args:
        config: ``mlflow.champion_alias`` and ``mlflow.challenger_alias``.
        model_uri: the logged model.
        name: registered model name.
        features: feature columns (tag).
        validation: the new and the champion's validation metric.
        force: promote whatever the metrics.
        tags: more version tags (set before any alias moves to the version).

    Returns:
        The :class:`Promotion` (its ``line()`` is what the command prints).
    """
    from mlflow import MlflowClient

    champion_alias = config.mlflow.champion_alias
    challenger_alias = config.mlflow.challenger_alias
    current = champion_version(config, name)
    current_version = str(current.version) if current is not None else None
    reason = ""
    if force:
        status = "forced"
    elif validation.champion_version is None and current_version is None:
        status = "first"
    elif current_version != validation.champion_version:
        status = "challenger"
        was = f"v{validation.champion_version}" if validation.champion_version else "no version"
        now = f"v{current_version}" if current_version else "no version"
        reason = validation.note = f"the {champion_alias} alias moved from {was} to {now} during training"
    else:
        status = "champion" if validation.not_worse() else "challenger"
    value = f"{validation.metric}={validation.value!r}"
    if validation.champion_version is not None:
        value += f"; champion v{validation.champion_version}={validation.champion_value!r}"
    version = register_model(
        config,
        model_uri,
        name,
        features,
        set_alias=False,
        tags={**(tags or {}), PROMOTION_TAG: status, VALIDATION_TAG: value},
    )
    client = MlflowClient()
    promoted = status != "challenger"
    alias = champion_alias if promoted else challenger_alias
    client.set_registered_model_alias(name, alias, version)
    promotion = Promotion(
        name=name,
        version=version,
        alias=alias,
        status=status,
        validation=validation,
        champion_version=version if promoted else current_version,
        reason=reason,
    )
    run_id = client.get_model_version(name, version).run_id
    if run_id:
        client.set_tag(run_id, PROMOTION_TAG, status)
        client.set_tag(run_id, VALIDATION_TAG, value)
        if validation.champion_value is not None:
            client.log_metric(run_id, f"champion_{validation.metric}", validation.champion_value)
    if status == "forced":
        log.warning("%s", promotion.line())
    else:
        log.info("%s", promotion.line())
    return promotion


def promote_version(config: Config, name: str, version: str | int, alias: str | None = None) -> str | None:
    """Point ``alias`` (default the champion alias) at ``version``: promotion or rollback by hand.

    The version is tagged ``segengine.promotion=manual``; the next retrain compares with
    it (:func:`register_and_promote`).

    Returns:
        The version the alias pointed to before (None if it pointed nowhere).

    Raises:
        ModelError: no such model version.
    """
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    alias = alias or config.mlflow.champion_alias
    client = MlflowClient()
    try:
        client.get_model_version(name, str(version))
    except MlflowException:
        known = [m.name for m in client.search_registered_models()]
        if name not in known:
            raise ModelError(
                f"no registered model {name!r}{did_you_mean(name, known)} (see `segengine models list`)"
            ) from None
        raise ModelError(f"no registered model {name} version {version} (see `segengine models list`)") from None
    before = champion_version(config, name) if alias == config.mlflow.champion_alias else None
    if alias != config.mlflow.champion_alias:
        try:
            before = client.get_model_version_by_alias(name, alias)
        except MlflowException:
            before = None
    client.set_registered_model_alias(name, alias, str(version))
    client.set_model_version_tag(name, str(version), PROMOTION_TAG, "manual")
    log.info("%s@%s -> v%s (was %s)", name, alias, version, before.version if before is not None else "none")
    return str(before.version) if before is not None else None


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


def load_version(config: Config, mv: Any, check: bool = True) -> LoadedModel:
    """Load one registered version (``models:/<name>/<version>``) as a Spark ``PipelineModel``.

    Args:
        config: the configuration.
        mv: the registry entry (from :func:`champion_version` or the client).
        check: refuse a model whose features do not match the catalog.

    Returns:
        The loaded model and its registry facts.
    """
    import mlflow.spark

    logged = (mv.tags or {}).get(FEATURES_TAG)
    features = check_features(mv.name, mv.version, logged) if check else [n for n, _ in parse_feature_signature(logged)]
    model = mlflow.spark.load_model(f"models:/{mv.name}/{mv.version}")
    return LoadedModel(name=mv.name, version=str(mv.version), run_id=mv.run_id, features=features, model=model)


def load_champion(config: Config, name: str, check: bool = True) -> LoadedModel:
    """Load the version ``<name>@<champion_alias>`` points to, as a Spark ``PipelineModel``.

    The alias is resolved once; the model, its feature tag and anything else read
    about it come from that one version, even if the alias moves meanwhile.

    Args:
        config: the configuration (alias name).
        name: registered model name.
        check: refuse a model whose features do not match the catalog.

    Returns:
        The loaded model and its registry facts.

    Raises:
        ModelError: no such model/alias, or its features do not match the catalog.
    """
    mv = champion_version(config, name)
    if mv is None:
        raise ModelError(
            f"no registered model {name}@{config.mlflow.champion_alias}: train it first (segengine train ...) "
            "or point the alias at a version (segengine models promote NAME --version N)"
        )
    return load_version(config, mv, check)


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
