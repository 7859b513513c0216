"""Configuration: overlays, overrides, and errors that name the key."""

from __future__ import annotations

import pytest

from segengine.config import load_config
from segengine.errors import ConfigError


def test_default_local_overlay():
    cfg = load_config("local", environ={})
    assert cfg.env == "local"
    assert cfg.spark.master == "local[*]"
    assert cfg.features.cycle_months == 6
    assert cfg.delta.backend == "auto"


def test_cluster_overlay_takes_master_from_spark_submit():
    cfg = load_config("cluster", environ={})
    assert cfg.spark.master is None
    assert cfg.delta.backend == "jvm"
    assert cfg.spark.conf["spark.sql.extensions"] == "io.delta.sql.DeltaSparkSessionExtension"
    assert cfg.warehouse.startswith("s3a://")


def test_cli_override_wins_over_env_var_and_files(tmp_path):
    extra = tmp_path / "extra.yaml"
    extra.write_text("features:\n  cycle_months: 3\n")
    cfg = load_config("local", files=[extra], environ={})
    assert cfg.features.cycle_months == 3
    cfg = load_config("local", files=[extra], environ={"SEGENGINE__FEATURES__CYCLE_MONTHS": "4"})
    assert cfg.features.cycle_months == 4
    cfg = load_config(
        "local",
        files=[extra],
        overrides=["features.cycle_months=5"],
        environ={"SEGENGINE__FEATURES__CYCLE_MONTHS": "4"},
    )
    assert cfg.features.cycle_months == 5


def test_unknown_key_names_the_key_and_suggests():
    with pytest.raises(
        ConfigError, match=r"unknown configuration key features\.cycle_month \(did you mean features\.cycle_months\?\)"
    ):
        load_config("local", overrides=["features.cycle_month=3"], environ={})


def test_wrong_type_names_the_key():
    with pytest.raises(ConfigError, match=r"features\.cycle_months: expected an integer, got 'six'"):
        load_config("local", overrides=["features.cycle_months=six"], environ={})
    with pytest.raises(ConfigError, match=r"spark\.ui_enabled: expected true or false"):
        load_config("local", environ={"SEGENGINE__SPARK__UI_ENABLED": "maybe"})


def test_unknown_environment_is_an_error():
    with pytest.raises(ConfigError, match="unknown environment 'prod'"):
        load_config("prod", environ={})


def test_override_without_equals_is_an_error():
    with pytest.raises(ConfigError, match="key=value"):
        load_config("local", overrides=["spark.master"], environ={})


def test_null_master_override():
    cfg = load_config("local", overrides=["spark.master=null"], environ={})
    assert cfg.spark.master is None


def test_spark_conf_embedded_defaults(tmp_path):
    from segengine.session import spark_conf

    cfg = load_config("local", overrides=[f"warehouse={tmp_path}"], environ={})
    conf = spark_conf(cfg)
    assert conf["spark.sql.parquet.outputTimestampType"] == "TIMESTAMP_MICROS"
    assert conf["spark.ui.enabled"] == "false"
    assert conf["spark.sql.warehouse.dir"].startswith(str(tmp_path))
    # Local data files are stat-ed on the driver, not by a job with a task per file.
    assert int(conf["spark.sql.sources.parallelPartitionDiscovery.threshold"]) >= 100_000
    # Aggregates of millions of keys skip the small first-level hash map.
    assert conf["spark.sql.codegen.aggregate.map.twolevel.enabled"] == "false"


def test_spark_conf_puts_the_fetched_delta_jars_on_the_classpath_with_the_extension(tmp_path):
    from segengine.session import DELTA_CATALOG, DELTA_EXTENSION, spark_conf

    jars = tmp_path / "jars"
    jars.mkdir()
    for name in ("delta-spark_4.2_2.13-4.4.0.jar", "delta-storage-4.4.0.jar"):
        (jars / name).write_bytes(b"")
    cfg = load_config("local", overrides=[f"warehouse={tmp_path}", f"delta.jars_dir={jars}"], environ={})
    conf = spark_conf(cfg)
    assert conf["spark.jars"].split(",") == [
        str(jars / "delta-spark_4.2_2.13-4.4.0.jar"),
        str(jars / "delta-storage-4.4.0.jar"),
    ]
    assert conf["spark.sql.extensions"] == DELTA_EXTENSION
    assert conf["spark.sql.catalog.spark_catalog"] == DELTA_CATALOG
    # Forced embedded: no jars, no extension, whatever is on disk.
    embedded = load_config(
        "local", overrides=[f"warehouse={tmp_path}", f"delta.jars_dir={jars}", "delta.backend=embedded"], environ={}
    )
    assert "spark.jars" not in spark_conf(embedded) and "spark.sql.extensions" not in spark_conf(embedded)


def test_a_folder_without_delta_spark_means_no_jars_and_a_missing_one_is_an_error(tmp_path):
    from segengine.errors import EnvironmentProblem
    from segengine.session import spark_conf

    (tmp_path / "other.jar").write_bytes(b"")
    cfg = load_config("local", overrides=[f"warehouse={tmp_path}", f"delta.jars_dir={tmp_path}"], environ={})
    assert "spark.jars" not in spark_conf(cfg) and "spark.sql.extensions" not in spark_conf(cfg)
    missing = load_config(
        "local", overrides=[f"warehouse={tmp_path}", f"delta.jars_dir={tmp_path / 'nope'}"], environ={}
    )
    with pytest.raises(EnvironmentProblem, match="delta.jars_dir: .*nope is not a folder"):
        spark_conf(missing)


def test_spark_conf_user_settings_override_the_defaults():
    from segengine.session import spark_conf

    cfg = load_config("local", environ={})
    key = "spark.sql.codegen.aggregate.map.twolevel.enabled"
    cfg = cfg.replace(spark=cfg.spark.replace(conf={key: "true"}))
    assert spark_conf(cfg)[key] == "true"


def test_spark_conf_lets_the_jit_compile_huge_generated_methods():
    from segengine.session import spark_conf

    cfg = load_config("local", environ={})
    conf = spark_conf(cfg)
    # (A local driver also gets its log4j2 file: tests/test_quiet_logs.py.)
    assert conf["spark.driver.extraJavaOptions"].startswith("-XX:-DontCompileHugeMethods -Dlog4j2.configurationFile=")
    assert conf["spark.executor.extraJavaOptions"] == "-XX:-DontCompileHugeMethods"
    given = {"spark.driver.extraJavaOptions": "-Dx=1", "spark.executor.extraJavaOptions": "-XX:+DontCompileHugeMethods"}
    conf = spark_conf(cfg.replace(spark=cfg.spark.replace(conf=given)))
    # The user's options are kept; one that names the flag decides it.
    assert conf["spark.driver.extraJavaOptions"].startswith("-Dx=1 -XX:-DontCompileHugeMethods ")
    assert conf["spark.executor.extraJavaOptions"] == "-XX:+DontCompileHugeMethods"
    assert spark_conf(load_config("cluster", environ={}))["spark.executor.extraJavaOptions"] == (
        "-XX:-DontCompileHugeMethods"
    )


def test_the_session_jvm_compiles_huge_methods(spark):
    jvm = spark.sparkContext._jvm
    args = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert "-XX:-DontCompileHugeMethods" in args


def test_spark_conf_cluster_has_delta_extensions_and_no_local_dirs():
    from segengine.session import spark_conf

    conf = spark_conf(load_config("cluster", environ={}))
    assert conf["spark.sql.catalog.spark_catalog"] == "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    assert "spark.local.dir" not in conf
    assert "spark.driver.memory" not in conf
    assert "spark.sql.sources.parallelPartitionDiscovery.threshold" not in conf


def test_missing_java_is_one_clear_line(monkeypatch):
    from segengine import session
    from segengine.errors import EnvironmentProblem

    monkeypatch.setattr(session, "java_major_version", lambda: None)
    with pytest.raises(EnvironmentProblem, match="Java 17 is required.*apt-get install -y openjdk-17-jre-headless"):
        session.check_java()
    monkeypatch.setattr(session, "java_major_version", lambda: 11)
    with pytest.raises(EnvironmentProblem, match="Java 11 found"):
        session.check_java()


def test_this_machine_has_java_17_or_newer():
    from segengine.session import java_major_version

    assert (java_major_version() or 0) >= 17


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("delta.backend=delta-rs", r"delta\.backend: 'delta-rs' is not one of auto, embedded, jvm$"),
        ("spark.log_level=LOUD", r"spark\.log_level: 'LOUD' is not one of ALL, TRACE, DEBUG, INFO, WARN, ERROR"),
        ("clv.algorithm=xgboost", r"clv\.algorithm: 'xgboost' is not one of gbt, rf, bgnbd$"),
        ("propensity.algorithm=rf", r"propensity\.algorithm: 'rf' is not one of gbt, logistic$"),
        ("recommend.scorer=gpu", r"recommend\.scorer: 'gpu' is not one of vectorized, mllib$"),
        ("ingest.formats=csv,xml", r"ingest\.formats\[1\]: 'xml' is not one of csv, json, parquet$"),
        ("recommend.persona_types=[customer, lead]", r"recommend\.persona_types\[1\]: 'lead' is not one of"),
    ],
)
def test_a_value_outside_a_settings_choices_is_a_load_time_error_naming_key_and_choices(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("local", overrides=[override], environ={})


def test_choices_from_every_source_are_checked_and_log_levels_ignore_case():
    with pytest.raises(ConfigError, match=r"delta\.backend: 'both' is not one of"):
        load_config("local", environ={"SEGENGINE__DELTA__BACKEND": "both"})
    assert load_config("local", overrides=["spark.log_level=warn"], environ={}).spark.log_level == "WARN"


def test_strict_types_numbers_as_text_and_comma_lists():
    cfg = load_config(
        "local",
        overrides=["spark.conf={spark.sql.shuffle.partitions: 200}", "spark.driver_memory=4096"],
        environ={"SEGENGINE__MAINTENANCE__TABLES": "orders, events"},
    )
    assert cfg.spark.conf == {"spark.sql.shuffle.partitions": "200"}
    assert cfg.spark.driver_memory == "4096"
    assert cfg.maintenance.tables == ["orders", "events"]
    share = load_config("local", overrides=["generator.b2b_share=1"], environ={}).generator.b2b_share
    assert share == 1.0 and isinstance(share, float)
    with pytest.raises(ConfigError, match=r"features\.cycle_months: expected an integer, got 6\.5"):
        load_config("local", overrides=["features.cycle_months=6.5"], environ={})
    with pytest.raises(ConfigError, match=r"features\.incremental: expected true or false, got 1$"):
        load_config("local", overrides=["features.incremental=1"], environ={})
    with pytest.raises(ConfigError, match=r"^spark: expected a mapping, got int \(5\)$"):
        load_config("local", overrides=["spark=5"], environ={})


def test_replace_validates_like_loading_and_names_the_dotted_key():
    cfg = load_config("local", environ={})
    jvm = cfg.replace(delta=cfg.delta.replace(backend="jvm"))
    assert jvm.delta.backend == "jvm" and cfg.delta.backend == "auto"
    with pytest.raises(ConfigError, match=r"^delta\.backend: 'spark' is not one of auto, embedded, jvm$"):
        cfg.delta.replace(backend="spark")
    with pytest.raises(ConfigError, match=r"^segments\.k: expected an integer, got 'four'$"):
        cfg.segments.replace(k="four")
    with pytest.raises(
        ConfigError, match=r"^unknown configuration key clv\.max_dept \(did you mean clv\.max_depth\?\)$"
    ):
        cfg.clv.replace(max_dept=3)
    with pytest.raises(ConfigError, match=r"^features\.cycle_months: expected an integer"):
        cfg.replace(features={"cycle_months": "six"})


def test_schema_documents_keys_defaults_choices_and_meanings():
    from segengine.config import Config

    schema = Config.model_json_schema()
    delta = schema["$defs"]["DeltaConfig"]
    assert delta["additionalProperties"] is False
    backend = delta["properties"]["backend"]
    assert backend["enum"] == ["auto", "embedded", "jvm"] and backend["default"] == "auto"
    assert "delta-spark" in backend["description"]
    assert "silhouette" in schema["$defs"]["SegmentsModelConfig"]["properties"]["k"]["description"]
    assert set(schema["properties"]) >= {"warehouse", "spark", "delta", "recommend", "tables"}
