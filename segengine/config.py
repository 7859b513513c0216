"""One typed configuration object, loaded from ``conf/*.yaml`` with overlays.

Resolution order (later wins):

1. ``conf/default.yaml`` (shipped inside the package as well, so an installed
   wheel works without a checkout),
2. the environment overlay ``conf/<env>.yaml`` (``local`` or ``cluster``; chosen by
   ``--env`` or ``SEGENGINE_ENV``),
3. any extra YAML files given with ``--config``,
4. environment variables ``SEGENGINE__SECTION__KEY=value`` (double underscores
   separate levels),
5. ``--conf section.key=value`` overrides from the command line.

Every key is checked against the dataclasses below: an unknown key or a value of the
wrong type is a :class:`~segengine.errors.ConfigError` that names the dotted key.
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segengine.errors import ConfigError

ENV_PREFIX = "SEGENGINE__"


@dataclass
class SparkConfig:
    master: str | None = "local[*]"  # None: take the master from spark-submit
    app_name: str = "segengine"
    driver_memory: str | None = None
    shuffle_partitions: int = 8
    # Spark's own log level (log4j): ERROR hides the known noise; WARN or INFO to debug.
    log_level: str = "ERROR"
    ui_enabled: bool = False
    conf: dict[str, str] = field(default_factory=dict)


@dataclass
class DeltaConfig:
    backend: str = "auto"  # auto | embedded | jvm
    # Maven coordinates a cluster uses when it must fetch the jars itself.
    jvm_package: str = "io.delta:delta-spark_4.2_2.13:4.4.0"
    # Folder of the delta-spark jars ``make setup`` fetched (None: the project's
    # jars/lib, or $SEGENGINE_DELTA_JARS). Put on spark.jars when backend is auto or jvm.
    jars_dir: str | None = None
    # Passed to delta-rs for object stores (s3a/abfss credentials, endpoints, …).
    storage_options: dict[str, str] = field(default_factory=dict)
    commit_retries: int = 5


@dataclass
class MlflowConfig:
    tracking_uri: str | None = None  # None: sqlite file under the warehouse
    registry_uri: str | None = None
    experiment: str = "segengine"
    champion_alias: str = "champion"
    # A trained model whose validation metric is worse than the champion's gets this alias.
    challenger_alias: str = "challenger"


@dataclass
class GeneratorConfig:
    personas: int = 20000
    products: int = 400
    seed: int = 42
    start_date: str = "2023-01-01"
    end_date: str = "2025-06-30"
    customer_share: float = 0.55
    prospect_share: float = 0.25
    malformed_share: float = 0.0
    events_per_persona: float = 12.0
    chunk_personas: int = 50000
    b2b_share: float = 0.25  # share of customers/prospects with company attributes
    refund_share: float = 0.03  # share of order lines that are refunds
    orders_per_year: float = 8.0  # median purchase rate of an active customer (lognormal)
    lines_per_order: float = 2.2  # mean lines per order (1 + Poisson)


@dataclass
class IngestConfig:
    raw_dir: str | None = None  # None: <warehouse>/raw
    formats: list[str] = field(default_factory=lambda: ["csv", "json", "parquet"])


@dataclass
class FeaturesConfig:
    cycle_months: int = 6
    value_tier_top: float = 0.2
    value_tier_next: float = 0.3
    lifecycle_new_days: int = 90
    lifecycle_established_days: int = 730
    active_days: int = 90
    dormant_days: int = 365
    declining_ratio: float = 0.5
    timezone: str = "UTC"
    # Refresh a date from the feature state of an earlier date when exact (else full).
    incremental: bool = True
    # Write a snapshot for a date before the first order line or event (refused by
    # default: it would describe no activity); ``segengine features --force`` sets it.
    allow_before_first_data: bool = False


@dataclass
class RulesConfig:
    max_conditions: int = 50


@dataclass
class SegmentsModelConfig:
    k: int | None = None  # None: choose by silhouette in [k_min, k_max]
    k_min: int = 4
    k_max: int = 8
    seed: int = 7
    max_iter: int = 30
    sample_fraction: float = 1.0
    model_name: str = "segengine-segments"
    b2b_k: int = 6
    b2b_model_name: str = "segengine-b2b-segments"
    # A retrained cluster keeps the previous name only if the paired previous centroid is
    # this close (scaled RFMT, 1.0 = one standard deviation along one axis); else renamed.
    name_max_distance: float = 1.0


@dataclass
class ClvConfig:
    algorithm: str = "gbt"  # gbt | rf | bgnbd (BG/NBD + Gamma-Gamma alone)
    max_depth: int = 4
    max_iter: int = 15
    num_trees: int = 60
    step_size: float = 0.2
    min_instances_per_node: int = 20
    train_cycles: int = 3  # the training cutoffs span this many cycles
    cutoff_step_months: int = 1  # months between stacked training cutoffs (every month: all seasons seen)
    btyd_inputs: bool = True  # feed BG/NBD + Gamma-Gamma predictions to the regressor
    btyd_unit_days: float = 7.0  # BG/NBD time unit (t_x and T rounded to whole units for the fit)
    btyd_penalizer: float = 0.0  # lifetimes' penalizer_coef, for both likelihoods
    seed: int = 11
    model_name: str = "segengine-clv"


@dataclass
class PropensityConfig:
    horizon_days: int = 30  # purchase_propensity_30d: a purchase in the next N days
    churn_days: int = 90  # churn_risk: no purchase in the next N days (customers who bought before)
    train_cutoffs: int = 6  # stacked training cutoffs, a month apart
    algorithm: str = "gbt"  # gbt | logistic
    max_depth: int = 4
    max_iter: int = 20
    step_size: float = 0.1
    min_instances_per_node: int = 20
    reg_param: float = 0.01  # algorithm logistic only
    seed: int = 13
    # Percentile bootstrap (Poisson weights, seeded) of the holdout AUCs and their difference.
    eval_bootstrap_resamples: int = 200
    eval_bootstrap_seed: int = 23
    eval_max_rows: int = 100000  # the bootstrap reads a hash-drawn sample of at most this many holdout rows
    purchase_model_name: str = "segengine-purchase-propensity"
    churn_model_name: str = "segengine-churn-risk"


@dataclass
class RecommendConfig:
    rank: int = 16
    reg_param: float = 0.3
    alpha: float = 2.0
    max_iter: int = 10
    top_k: int = 10
    exclude_purchased: bool = True
    view_weight: float = 0.2
    cart_weight: float = 0.5
    recency_half_life_days: int = 180
    block_size: int = 4096
    seed: int = 5
    model_name: str = "segengine-recommend"
    # Who gets recommendations; the rest of the personas are skipped.
    persona_types: list[str] = field(default_factory=lambda: ["customer", "prospect"])
    # Extra candidates fetched per user beyond top_k so excluding bought items leaves top_k.
    max_overfetch: int = 40
    # Evaluation, windows carved by time: train <= V, validation (V, T], test (T, date], with
    # T = date - eval_test_days and V = T - eval_validation_days. Choices read validation only.
    eval_test_days: int = 30
    eval_validation_days: int = 30
    # Percentile bootstrap over users (Poisson weights, seeded) for the metrics' intervals; 0: none.
    eval_bootstrap_resamples: int = 200
    eval_bootstrap_seed: int = 17
    # Non-personalised (popular-in-segment) recommendations score at most this (1-100).
    fallback_max_score: int = 50
    # ALS numUserBlocks/numItemBlocks; 0: Spark's default parallelism.
    num_blocks: int = 0
    # Scoring: "vectorized" (exact top-k from the ALS factors, NumPy per Arrow batch) or
    # "mllib" (recommendForUserSubset with over-fetch; no Python on the executors).
    scorer: str = "vectorized"


@dataclass
class LookalikeConfig:
    bucket_length: float = 2.0
    num_hash_tables: int = 3
    max_widenings: int = 6
    seed: int = 3
    # Candidates/seeds sampled to estimate the first LSH distance threshold.
    sample_size: int = 2000
    # Seeds larger than this are reduced to one mean point per small grid cell before the
    # search (0: never); the cell diagonal is reduce_cell_share x the first bucket length.
    max_seed_points: int = 10000
    reduce_cell_share: float = 0.05


@dataclass
class AudiencesConfig:
    workspace: str = "default"
    excel_max_rows: int = 1048575
    commit_retries: int = 5
    # A refresh that would remove more than this share (0-1) of an audience's current
    # members is refused for that audience, nothing written; an empty audience never is.
    max_removed_share: float = 0.5
    # Let such refreshes through; meant for one run (``--allow-large-change``).
    allow_large_change: bool = False


@dataclass
class InsightsConfig:
    report_name: str = "segengine_report.html"
    profile_event_days: int = 30  # recent events in the customer profile: this many daily partitions
    report_dir: str | None = None  # None: <warehouse>/reports
    matrix_bins: int = 5  # the fit x engagement scoring matrix: bands per axis
    boundary_margin: float = 0.1  # boundary review: "near a threshold" = within this share of it
    boundary_drift_points: float = 10.0  # boundary review: percentile move that triggers a suggestion


@dataclass
class MaintenanceConfig:
    # Run OPTIMIZE then VACUUM on every table as the last step of the daily pipeline.
    enabled: bool = False
    # VACUUM keeps what the versions of the last this many hours read (under 168: refused).
    retention_hours: int = 168
    # Z-order (instead of plain compaction) by these columns, on the tables that have them.
    zorder: bool = False
    zorder_by: list[str] = field(default_factory=lambda: ["persona_id"])
    target_file_mb: int = 128
    # Tables to maintain; empty: every table that exists.
    tables: list[str] = field(default_factory=list)


@dataclass
class IdentityConfig:
    # Country calling code (digits, no +) given to national phone numbers (leading 0).
    default_country_code: str = "49"
    # An identifier (email, phone, cookie) of more personas than this is cut from the
    # graph and reported in identity_rejected (a shared cookie, info@…).
    max_personas_per_identifier: int = 10
    # A component of more personas than this is not merged (each persona stays its own
    # person) and is reported in identity_rejected.
    max_component_size: int = 50
    # Link a persona to the cookie of an event that carries both (a login).
    event_links: bool = True
    max_iterations: int = 40  # label propagation: refuse to go on after this many rounds
    # localCheckpoint the labels every this many rounds (cuts the lineage). A round reads
    # the previous labels four times, so each uncut round multiplies the plan by four.
    checkpoint_every: int = 1


@dataclass
class PipelineConfig:
    # A run of the daily pipeline holds the lock of its date; a crashed run's lock
    # expires this long after its last renewal (renewed between steps), so it must
    # be longer than the longest single step.
    lock_timeout_minutes: int = 240


@dataclass
class Config:
    env: str = "local"
    warehouse: str = "warehouse"
    spark: SparkConfig = field(default_factory=SparkConfig)
    delta: DeltaConfig = field(default_factory=DeltaConfig)
    mlflow: MlflowConfig = field(default_factory=MlflowConfig)
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)
    ingest: IngestConfig = field(default_factory=IngestConfig)
    features: FeaturesConfig = field(default_factory=FeaturesConfig)
    rules: RulesConfig = field(default_factory=RulesConfig)
    segments: SegmentsModelConfig = field(default_factory=SegmentsModelConfig)
    clv: ClvConfig = field(default_factory=ClvConfig)
    propensity: PropensityConfig = field(default_factory=PropensityConfig)
    recommend: RecommendConfig = field(default_factory=RecommendConfig)
    lookalike: LookalikeConfig = field(default_factory=LookalikeConfig)
    audiences: AudiencesConfig = field(default_factory=AudiencesConfig)
    insights: InsightsConfig = field(default_factory=InsightsConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    pipeline: PipelineConfig = field(default_factory=PipelineConfig)
    # Table name -> path relative to the warehouse (or an absolute URI).
    tables: dict[str, str] = field(default_factory=dict)

    @property
    def warehouse_uri(self) -> str:
        """The warehouse as a URI or absolute local path."""
        if "://" in self.warehouse:
            return self.warehouse.rstrip("/")
        return str(Path(self.warehouse).expanduser().resolve())

    @property
    def is_local_warehouse(self) -> bool:
        return "://" not in self.warehouse or self.warehouse.startswith("file:")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- loading


def conf_dir() -> Any:
    """Where ``default.yaml`` and the overlays live (a Path or a package resource).

    ``$SEGENGINE_CONF_DIR`` wins; then a checkout's ``conf/`` (so edits are picked
    up); then the copy shipped inside the package, which also works when segengine
    runs from the ``--py-files`` zip on a cluster.
    """
    env_dir = os.environ.get("SEGENGINE_CONF_DIR")
    if env_dir:
        return Path(env_dir)
    repo_conf = Path(__file__).resolve().parent.parent / "conf"
    if (repo_conf / "default.yaml").is_file():
        return repo_conf
    from importlib.resources import files

    return files("segengine") / "conf"


def _read_yaml(path: Any) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (FileNotFoundError, NotADirectoryError) as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping, got {type(data).__name__}")
    return data


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def _set_dotted(data: dict[str, Any], dotted: str, value: Any) -> None:
    parts = [p for p in dotted.split(".") if p]
    if not parts:
        raise ConfigError(f"empty configuration key in override {dotted!r}")
    node = data
    for part in parts[:-1]:
        nxt = node.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            node[part] = nxt
        node = nxt
    node[parts[-1]] = value


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``key=value``; the value is parsed as YAML (so ``8`` is an int)."""
    if "=" not in text:
        raise ConfigError(f"--conf expects key=value, got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return key.strip(), value


def _env_overrides(environ: typing.Mapping[str, str]) -> list[tuple[str, Any]]:
    out = []
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
            out.append(parse_override(f"{key}={raw}"))
    return sorted(out)


def _coerce(value: Any, tp: Any, key: str) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{key}: invalid value {value!r}")
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__} ({value!r})")
        return _build(tp, value, key + ".")
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {type(value).__name__} ({value!r})")
        return {str(k): _coerce(v, args[1], f"{key}.{k}") for k, v in value.items()}
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__} ({value!r})")
        return [_coerce(v, args[0], f"{key}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{key}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{key}: expected a string, got {value!r}")
    return value


def _build(cls: type, data: dict[str, Any], prefix: str = "") -> Any:
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        import difflib

        key = unknown[0]
        close = difflib.get_close_matches(key, sorted(known), n=1)
        hint = f" (did you mean {prefix}{close[0]}?)" if close else ""
        raise ConfigError(f"unknown configuration key {prefix}{key}{hint}")
    kwargs = {name: _coerce(value, hints[name], prefix + name) for name, value in data.items()}
    return cls(**kwargs)


def load_config(
    env: str | None = None,
    files: typing.Sequence[str | Path] = (),
    overrides: typing.Sequence[str] = (),
    environ: typing.Mapping[str, str] | None = None,
) -> Config:
    """Load and validate the configuration.

    Args:
        env: overlay name (``local``/``cluster``); default ``$SEGENGINE_ENV`` or ``local``.
        files: extra YAML files applied after the overlay.
        overrides: ``section.key=value`` strings, applied last.
        environ: environment to read ``SEGENGINE__…`` variables from (default ``os.environ``).

    Returns:
        The validated :class:`Config`.

    Raises:
        ConfigError: naming the offending key.
    """
    environ = os.environ if environ is None else environ
    env = env or environ.get("SEGENGINE_ENV") or "local"
    cdir = conf_dir()
    data = _read_yaml(cdir / "default.yaml")
    overlay = cdir / f"{env}.yaml"
    if not overlay.is_file():
        raise ConfigError(f"unknown environment {env!r}: no {overlay.name} in {cdir}")
    data = _deep_merge(data, _read_yaml(overlay))
    for path in files:
        data = _deep_merge(data, _read_yaml(Path(path)))
    for key, value in _env_overrides(environ):
        _set_dotted(data, key, value)
    for text in overrides:
        key, value = parse_override(text)
        _set_dotted(data, key, value)
    data["env"] = env
    return _build(Config, data)
