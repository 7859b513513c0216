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

The merged mapping is validated by the pydantic models below: an unknown key, a value
of the wrong type or a value outside a setting's choices is a
:class:`~segengine.errors.ConfigError` that names the dotted key. Models are strict
(no ``"8"`` for an integer, no ``1`` for true): YAML, environment variables and
``--conf`` values are all parsed as YAML first, so ``8`` is already an integer.
A copy with changes goes through :meth:`Settings.replace`, which validates the same way.

``Config.model_json_schema()`` (``segengine config --schema``) documents every key.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Mapping, Sequence
from importlib.resources import files as package_files
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal, Self

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import ErrorDetails

from segengine.errors import ConfigError

ENV_PREFIX = "SEGENGINE__"

# The choices of the enum-like settings; each is checked when the config loads.
DeltaBackend = Literal["auto", "embedded", "jvm"]
LogLevel = Literal["ALL", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF"]
ClvAlgorithm = Literal["gbt", "rf", "bgnbd"]
PropensityAlgorithm = Literal["gbt", "logistic"]
RecommendScorer = Literal["vectorized", "mllib"]
RawFormat = Literal["csv", "json", "parquet"]
PersonaType = Literal["customer", "prospect", "visitor"]
DEFAULT_RAW_FORMATS: tuple[RawFormat, ...] = ("csv", "json", "parquet")
DEFAULT_RECOMMEND_TYPES: tuple[PersonaType, ...] = ("customer", "prospect")


def _split_commas(value: object) -> object:
    # ``--conf ingest.formats=csv,json`` and environment variables give one string.
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def _number_to_text(value: object) -> object:
    # YAML reads ``driver_memory: 4096`` or ``spark.sql.shuffle.partitions: 200`` (a
    # ``spark.conf`` value) as a number; a string setting takes it as its text.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def _upper(value: object) -> object:
    # log4j levels are case-insensitive; ``warn`` is stored as ``WARN``.
    return value.upper() if isinstance(value, str) else value


Text = Annotated[str, BeforeValidator(_number_to_text)]
StrList = Annotated[list[Text], BeforeValidator(_split_commas)]
SparkLogLevel = Annotated[LogLevel, BeforeValidator(_upper)]


class Settings(BaseModel):
    """Base of every section: unknown keys are errors, types are strict."""

    model_config = ConfigDict(extra="forbid", strict=True)

    def replace(self, **changes: object) -> Self:
        """A copy with ``changes`` applied, validated like a loaded config.

        The validated counterpart of :func:`dataclasses.replace`; pydantic's
        ``model_copy(update=...)`` would accept any value unchecked.

        Raises:
            ConfigError: naming the dotted key of a bad value.
        """
        try:
            return self.model_validate({**dict(self), **changes})
        except ValidationError as exc:
            raise _config_error(exc, type(self), _SECTION_PREFIX.get(type(self), "")) from None


class SparkConfig(Settings):
    """The SparkSession segengine builds."""

    master: Text | None = Field("local[*]", description="null: take the master from spark-submit's --master.")
    app_name: Text = "segengine"
    driver_memory: Text | None = None
    shuffle_partitions: int = 8
    log_level: SparkLogLevel = Field(
        "ERROR",
        description="Spark's own log level (log4j), case-insensitive: ERROR hides the known noise; WARN or INFO "
        "to debug.",
    )
    ui_enabled: bool = False
    conf: dict[Text, Text] = Field(default_factory=dict, description="Extra Spark settings; they win over segengine's.")


class DeltaConfig(Settings):
    """The Delta Lake backend."""

    backend: DeltaBackend = Field(
        "auto",
        description="auto: delta-spark when its jars are found, else embedded (delta-rs); embedded; jvm: "
        "delta-spark, an error without its jars.",
    )
    jvm_package: Text = Field(
        "io.delta:delta-spark_4.2_2.13:4.4.0",
        description="Maven coordinates a cluster uses when it must fetch the jars itself.",
    )
    jars_dir: Text | None = Field(
        None,
        description="Folder of the delta-spark jars `make setup` fetched (null: the project's jars/lib, or "
        "$SEGENGINE_DELTA_JARS). Put on spark.jars when backend is auto or jvm.",
    )
    storage_options: dict[Text, Text] = Field(
        default_factory=dict,
        description="Passed to delta-rs for object stores (s3a/abfss credentials, endpoints, ...).",
    )
    commit_retries: int = 5


class MlflowConfig(Settings):
    """MLflow tracking and the model registry."""

    tracking_uri: Text | None = Field(None, description="null: a SQLite file under the warehouse.")
    registry_uri: Text | None = None
    experiment: Text = "segengine"
    champion_alias: Text = "champion"
    challenger_alias: Text = Field(
        "challenger",
        description="A trained model whose validation metric is worse than the champion's gets this alias.",
    )


class GeneratorConfig(Settings):
    """The synthetic sample data (``segengine generate``)."""

    personas: int = 20000
    products: int = 400
    seed: int = 42
    start_date: Text = "2023-01-01"
    end_date: Text = "2025-06-30"
    customer_share: float = 0.55
    prospect_share: float = 0.25
    malformed_share: float = 0.0
    events_per_persona: float = 12.0
    chunk_personas: int = 50000
    b2b_share: float = Field(0.25, description="Share of customers/prospects with company attributes.")
    refund_share: float = Field(0.03, description="Share of order lines that are refunds.")
    orders_per_year: float = Field(
        8.0, description="Median purchase rate of an active customer (lognormal across customers)."
    )
    lines_per_order: float = Field(2.2, description="Mean lines per order (1 + Poisson).")


class IngestConfig(Settings):
    """Raw files to bronze."""

    raw_dir: Text | None = Field(None, description="null: <warehouse>/raw.")
    formats: Annotated[list[RawFormat], BeforeValidator(_split_commas)] = Field(
        default_factory=lambda: list(DEFAULT_RAW_FORMATS), description="Raw file formats that are read."
    )


class FeaturesConfig(Settings):
    """The customer_features snapshots."""

    cycle_months: int = 6
    value_tier_top: float = 0.2
    value_tier_next: float = 0.3
    lifecycle_new_days: int = 90
    lifecycle_established_days: int = 730
    active_days: int = 90
    dormant_days: int = 365
    declining_ratio: float = 0.5
    timezone: Text = Field("UTC", description="The time zone days are counted in.")
    incremental: bool = Field(
        True, description="Refresh a date from the feature state of an earlier date when exact (else full)."
    )
    allow_before_first_data: bool = Field(
        False,
        description="Write a snapshot for a date before the first order line or event (refused by default: it "
        "would describe no activity); `segengine features --force` sets it.",
    )


class RulesConfig(Settings):
    """Segment rules."""

    max_conditions: int = 50


class SegmentsModelConfig(Settings):
    """AI segments: k-means over customers' RFMT, plus the B2B clusters."""

    k: int | None = Field(None, description="null: choose k by silhouette in [k_min, k_max].")
    k_min: int = 4
    k_max: int = 8
    seed: int = 7
    max_iter: int = 30
    sample_fraction: float = Field(1.0, description="Train on a sample of customers (scoring always covers all).")
    model_name: Text = "segengine-segments"
    b2b_k: int = 6
    b2b_model_name: Text = "segengine-b2b-segments"
    # Pairs old and new centroids; see segengine.models.segments.
    name_max_distance: float = Field(
        1.0,
        description="A retrained cluster keeps the previous name only if the paired previous centroid is this "
        "close (scaled RFMT, 1.0 = one standard deviation along one axis); else renamed.",
    )


class ClvConfig(Settings):
    """Next-cycle spend per customer (MLlib regressor)."""

    algorithm: ClvAlgorithm = Field("gbt", description="gbt | rf | bgnbd (BG/NBD + Gamma-Gamma alone, no regressor).")
    max_depth: int = 4
    max_iter: int = Field(15, description="GBT iterations.")
    num_trees: int = Field(60, description="Random forest trees.")
    step_size: float = 0.2
    min_instances_per_node: int = 20
    train_cycles: int = Field(3, description="The training cutoffs span this many cycles.")
    cutoff_step_months: int = Field(
        1, description="Months between stacked training cutoffs (every month: all seasons seen)."
    )
    btyd_inputs: bool = Field(True, description="Feed BG/NBD + Gamma-Gamma predictions to the regressor.")
    btyd_unit_days: float = Field(7.0, description="BG/NBD time unit (t_x and T rounded to whole units for the fit).")
    btyd_penalizer: float = Field(0.0, description="lifetimes' penalizer_coef, for both likelihoods.")
    seed: int = 11
    model_name: Text = "segengine-clv"


class PropensityConfig(Settings):
    """purchase_propensity_30d and churn_risk (calibrated MLlib classifiers)."""

    horizon_days: int = Field(30, description="purchase_propensity_30d: a purchase in the next N days.")
    churn_days: int = Field(90, description="churn_risk: no purchase in the next N days (customers who bought before).")
    train_cutoffs: int = Field(6, description="Stacked training cutoffs, a month apart.")
    algorithm: PropensityAlgorithm = "gbt"
    max_depth: int = 4
    max_iter: int = 20
    step_size: float = 0.1
    min_instances_per_node: int = 20
    reg_param: float = Field(0.01, description="Algorithm logistic only.")
    seed: int = 13
    eval_bootstrap_resamples: int = Field(
        200,
        description="Percentile bootstrap (Poisson weights, seeded) of the holdout AUCs and their difference.",
    )
    eval_bootstrap_seed: int = 23
    eval_max_rows: int = Field(
        100000, description="The bootstrap reads a hash-drawn sample of at most this many holdout rows."
    )
    purchase_model_name: Text = "segengine-purchase-propensity"
    churn_model_name: Text = "segengine-churn-risk"


class RecommendConfig(Settings):
    """Product recommendations (implicit ALS)."""

    rank: int = 16
    reg_param: float = 0.3
    alpha: float = Field(2.0, description="Implicit ALS confidence = 1 + alpha * interaction strength.")
    max_iter: int = 10
    top_k: int = 10
    exclude_purchased: bool = True
    view_weight: float = Field(0.2, description="A product view counts as this share of a purchased unit.")
    cart_weight: float = 0.5
    recency_half_life_days: int = 180
    block_size: int = Field(4096, description="ALS blockSize used by recommendForAll/UserSubset.")
    seed: int = 5
    model_name: Text = "segengine-recommend"
    persona_types: Annotated[list[PersonaType], BeforeValidator(_split_commas)] = Field(
        default_factory=lambda: list(DEFAULT_RECOMMEND_TYPES),
        description="Who gets recommendations; the rest of the personas are skipped.",
    )
    max_overfetch: int = Field(
        40, description="Extra candidates fetched per user beyond top_k so excluding bought items leaves top_k."
    )
    # Evaluation windows carved by time: train <= V, validation (V, T], test (T, date], with
    # T = date - eval_test_days and V = T - eval_validation_days. Choices read validation only.
    eval_test_days: int = Field(30, description="Evaluation: test window (T, date], T = date - eval_test_days.")
    eval_validation_days: int = Field(
        30, description="Validation window (V, T], V = T - eval_validation_days: choices read it only."
    )
    eval_bootstrap_resamples: int = Field(
        200, description="Percentile bootstrap over users (Poisson weights, seeded) for the intervals; 0: none."
    )
    eval_bootstrap_seed: int = 17
    fallback_max_score: int = Field(
        50, description="Non-personalised (popular-in-segment) recommendations score at most this (1-100)."
    )
    num_blocks: int = Field(0, description="ALS numUserBlocks/numItemBlocks; 0: Spark's default parallelism.")
    scorer: RecommendScorer = Field(
        "vectorized",
        description="vectorized: exact top-k from the ALS factors, NumPy per Arrow batch; mllib: "
        "recommendForUserSubset with over-fetch (no Python on the executors).",
    )


class LookalikeConfig(Settings):
    """Lookalike audiences (LSH over scaled features)."""

    bucket_length: float = Field(2.0, description="BucketedRandomProjectionLSH bucket length (scaled units).")
    num_hash_tables: int = 3
    max_widenings: int = 6
    seed: int = 3
    sample_size: int = Field(2000, description="Candidates/seeds sampled to estimate the first LSH distance threshold.")
    max_seed_points: int = Field(
        10000,
        description="Seeds larger than this are reduced to one mean point per small grid cell before the search "
        "(0: never).",
    )
    reduce_cell_share: float = Field(0.05, description="The cell diagonal, as a share of the first bucket length.")


class AudiencesConfig(Settings):
    """Audiences and their refreshes and exports."""

    workspace: Text = Field("default", description="Audience names are unique per workspace.")
    excel_max_rows: int = Field(
        1048575, description="Rows an .xlsx export may hold (Excel's sheet limit minus the header)."
    )
    commit_retries: int = 5
    max_removed_share: float = Field(
        0.5,
        description="A refresh that would remove more than this share (0-1) of an audience's current members is "
        "refused for that audience, nothing written; an empty audience never is.",
    )
    allow_large_change: bool = Field(
        False, description="Let such refreshes through; meant for one run (`--allow-large-change`)."
    )


class InsightsConfig(Settings):
    """Reports, profiles and boundary reviews."""

    report_name: Text = Field("segengine_report.html", description="The date is inserted before .html.")
    profile_event_days: int = Field(
        30, description="Recent events in the customer profile: this many daily partitions."
    )
    report_dir: Text | None = Field(None, description="null: <warehouse>/reports.")
    matrix_bins: int = Field(5, description="The fit x engagement scoring matrix: bands per axis.")
    boundary_margin: float = Field(0.1, description='Boundary review: "near a threshold" = within this share of it.')
    boundary_drift_points: float = Field(
        10.0, description="Boundary review: percentile move that triggers a suggestion."
    )


class MaintenanceConfig(Settings):
    """OPTIMIZE + VACUUM (`segengine maintain`)."""

    enabled: bool = Field(
        False, description="Run OPTIMIZE then VACUUM on every table as the last step of the daily pipeline."
    )
    retention_hours: int = Field(
        168, description="VACUUM keeps what the versions of the last this many hours read (under 168: refused)."
    )
    zorder: bool = Field(
        False, description="Z-order (instead of plain compaction) by zorder_by, on the tables that have them."
    )
    zorder_by: StrList = Field(default_factory=lambda: ["persona_id"])
    target_file_mb: int = Field(128, description="Compacted file size.")
    tables: StrList = Field(default_factory=list, description="Tables to maintain; empty: every table that exists.")


class IdentityConfig(Settings):
    """Identity stitching (`segengine identity build`)."""

    default_country_code: Text = Field(
        "49", description="Country calling code (digits, no +) given to national phone numbers (leading 0)."
    )
    max_personas_per_identifier: int = Field(
        10,
        description="An identifier (email, phone, cookie) of more personas than this is cut from the graph and "
        "reported in identity_rejected (a shared cookie, info@...).",
    )
    max_component_size: int = Field(
        50,
        description="A component of more personas than this is not merged (each persona stays its own person) and "
        "is reported in identity_rejected.",
    )
    event_links: bool = Field(True, description="Link a persona to the cookie of an event that carries both (a login).")
    max_iterations: int = Field(40, description="Label propagation: refuse to go on after this many rounds.")
    checkpoint_every: int = Field(
        1,
        description="localCheckpoint the labels every this many rounds (cuts the lineage). A round reads the "
        "previous labels four times, so each uncut round multiplies the plan by four.",
    )


class PipelineConfig(Settings):
    """The daily pipeline."""

    # Renewed between steps, so it must be longer than the longest single step.
    lock_timeout_minutes: int = Field(
        240,
        description="A run of the daily pipeline holds the lock of its date; a crashed run's lock expires this "
        "long after its last renewal (between steps).",
    )


class Config(Settings):
    """segengine's configuration: conf/default.yaml, overlays, --config files,
    SEGENGINE__SECTION__KEY variables and --conf section.key=value overrides."""

    env: Text = Field("local", description="The overlay loaded (conf/<env>.yaml); set by --env, not by a file.")
    warehouse: Text = Field(
        "warehouse", description="Local path or any Hadoop URI (s3a://, abfss://, hdfs://) of the tables."
    )
    spark: SparkConfig = Field(default_factory=SparkConfig)
    delta: DeltaConfig = Field(default_factory=DeltaConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    generator: GeneratorConfig = Field(default_factory=GeneratorConfig)
    ingest: IngestConfig = Field(default_factory=IngestConfig)
    features: FeaturesConfig = Field(default_factory=FeaturesConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    segments: SegmentsModelConfig = Field(default_factory=SegmentsModelConfig)
    clv: ClvConfig = Field(default_factory=ClvConfig)
    propensity: PropensityConfig = Field(default_factory=PropensityConfig)
    recommend: RecommendConfig = Field(default_factory=RecommendConfig)
    lookalike: LookalikeConfig = Field(default_factory=LookalikeConfig)
    audiences: AudiencesConfig = Field(default_factory=AudiencesConfig)
    insights: InsightsConfig = Field(default_factory=InsightsConfig)
    maintenance: MaintenanceConfig = Field(default_factory=MaintenanceConfig)
    identity: IdentityConfig = Field(default_factory=IdentityConfig)
    pipeline: PipelineConfig = Field(default_factory=PipelineConfig)
    tables: dict[Text, Text] = Field(
        default_factory=dict, description="Table name -> path relative to the warehouse (or an absolute URI)."
    )

    @property
    def warehouse_uri(self) -> str:
        """The warehouse as a URI or absolute local path."""
        if "://" in self.warehouse:
            return self.warehouse.rstrip("/")
        return str(Path(self.warehouse).expanduser().resolve())

    @property
    def is_local_warehouse(self) -> bool:
        return "://" not in self.warehouse or self.warehouse.startswith("file:")


# A section's dotted prefix, for the errors of Settings.replace on a section alone.
_SECTION_PREFIX: dict[type[Settings], str] = {
    f.annotation: f"{name}."
    for name, f in Config.model_fields.items()
    if isinstance(f.annotation, type) and issubclass(f.annotation, Settings)
}


# ---------------------------------------------------------------- errors


def _dotted(loc: Sequence[int | str]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _model_at(root: type[Settings], loc: Sequence[int | str]) -> type[Settings] | None:
    """The section model that ``loc`` (a path of field names) leads to, if any."""
    model: type[Settings] = root
    for part in loc:
        field = model.model_fields.get(str(part))
        if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, Settings)):
            return None
        model = field.annotation
    return model


def _message(err: ErrorDetails, root: type[Settings], prefix: str) -> str:
    loc = err["loc"]
    key = prefix + _dotted(loc)
    value = err.get("input")
    kind = err["type"]
    if kind == "extra_forbidden":
        parent = _model_at(root, loc[:-1])
        known = sorted(parent.model_fields) if parent is not None else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f" (did you mean {prefix}{_dotted([*loc[:-1], close[0]])}?)" if close else ""
        return f"unknown configuration key {key}{hint}"
    if kind == "literal_error":
        # pydantic says "'a', 'b' or 'c'"; the old messages (and the CLI's) say "a, b, c".
        allowed = str(err.get("ctx", {}).get("expected", "")).replace(" or ", ", ").replace("'", "")
        return f"{key}: {value!r} is not one of {allowed}"
    expected = {
        "int_type": "an integer",
        "float_type": "a number",
        "bool_type": "true or false",
        "string_type": "a string",
        "list_type": "a list",
        "dict_type": "a mapping",
        "model_type": "a mapping",
    }.get(kind)
    if expected is None:
        return f"{key}: {err['msg']}, got {value!r}"
    if expected == "a mapping":
        return f"{key}: expected a mapping, got {type(value).__name__} ({value!r})"
    return f"{key}: expected {expected}, got {value!r}"


def _config_error(exc: ValidationError, root: type[Settings], prefix: str = "") -> ConfigError:
    """One line for the first problem; an unknown key is reported before a bad value."""
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    return ConfigError(_message(errors[0], root, prefix))


# ---------------------------------------------------------------- loading


def conf_dir() -> Path | Traversable:
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
    return package_files("segengine") / "conf"


def _read_yaml(path: Path | Traversable) -> dict[str, Any]:
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


def _set_dotted(data: dict[str, Any], dotted: str, value: object) -> None:
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


def _env_overrides(environ: Mapping[str, str]) -> list[tuple[str, Any]]:
    out = []
    for name, raw in environ.items():
        if name.startswith(ENV_PREFIX) and len(name) > len(ENV_PREFIX):
            key = name[len(ENV_PREFIX) :].lower().replace("__", ".")
            out.append(parse_override(f"{key}={raw}"))
    return sorted(out, key=lambda kv: kv[0])


def load_config(
    env: Text | None = None,
    files: Sequence[str | Path] = (),
    overrides: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
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
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise _config_error(exc, Config) from None
