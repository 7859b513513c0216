"""Build the SparkSession from configuration; never at import time."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from segengine.errors import EnvironmentProblem

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from segengine.config import Config

JAVA_HINT = (
    "Java 17 is required by Spark 4 but was not found: install it "
    "(Debian/Ubuntu: apt-get install -y openjdk-17-jre-headless) or set JAVA_HOME"
)

DELTA_EXTENSION = "io.delta.sql.DeltaSparkSessionExtension"
DELTA_CATALOG = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
DELTA_JARS_ENV = "SEGENGINE_DELTA_JARS"
# Where `make setup` copies delta-spark and its runtime dependencies (jars/pom.xml).
PROJECT_JARS = Path(__file__).resolve().parent.parent / "jars" / "lib"


def delta_jars(config: Config) -> list[str]:
    """The delta-spark jar files to put on ``spark.jars``, or [] when there are none.

    Looked for in ``delta.jars_dir``, else ``$SEGENGINE_DELTA_JARS``, else the project's
    ``jars/lib`` (filled by ``make setup``). A folder without a ``delta-spark_*.jar``
    counts as none. On a cluster the image or ``--packages`` provides the jars instead.
    """
    folder = config.delta.jars_dir or os.environ.get(DELTA_JARS_ENV) or str(PROJECT_JARS)
    path = Path(folder)
    if config.delta.jars_dir and not path.is_dir():
        raise EnvironmentProblem(f"delta.jars_dir: {folder} is not a folder")
    jars = sorted(str(p) for p in path.glob("*.jar")) if path.is_dir() else []
    return jars if any(Path(j).name.startswith("delta-spark_") for j in jars) else []


def java_major_version() -> int | None:
    """The major version of the ``java`` Spark will launch, or None if there is none."""
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.join(java_home, "bin", "java") if java_home else shutil.which("java")
    if not java or not os.path.exists(java):
        return None
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    text = out.stderr + out.stdout
    for token in text.replace('"', " ").split():
        head = token.split(".")[0]
        if head.isdigit() and ("." in token or token.isdigit()):
            major = int(head)
            return int(token.split(".")[1]) if major == 1 else major
    return None


def check_java() -> None:
    """Raise a one-line :class:`EnvironmentProblem` unless Java 17+ is available."""
    major = java_major_version()
    if major is None:
        raise EnvironmentProblem(JAVA_HINT)
    if major < 17:
        raise EnvironmentProblem(f"Java {major} found; {JAVA_HINT}")


TWO_LEVEL_AGG_MAP = "spark.sql.codegen.aggregate.map.twolevel.enabled"
# HotSpot does not JIT-compile a method of more than 8,000 bytes of bytecode. Spark's
# generated code for a wide projection (the feature table's tiers, scores and catalog
# casts over 60 columns) passes that and then runs interpreted: at 1M personas that
# last stage took 10.1 s of task time, 3.1 s with this flag.
HUGE_METHODS_FLAG = "DontCompileHugeMethods"
JIT_HUGE_METHODS = f"-XX:-{HUGE_METHODS_FLAG}"
JAVA_OPTIONS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")
# Files a local read stats on the driver before Spark lists them in a job.
LOCAL_LISTING_THRESHOLD = 100_000


def log4j_properties(level: str) -> str:
    """A log4j2 configuration: everything at ``level`` on stderr, one line per event.

    Spark's default profile logs WARN and prints "Using Spark's default log4j profile"
    and "Setting default log level" before any Python code can call ``setLogLevel``;
    a local driver started with this file (``-Dlog4j2.configurationFile``) says
    nothing below ``level`` from its first line.
    """
    return (
        f"rootLogger.level = {level.lower()}\n"
        "rootLogger.appenderRef.stderr.ref = console\n"
        "appender.console.type = Console\n"
        "appender.console.name = console\n"
        "appender.console.target = SYSTEM_ERR\n"
        "appender.console.layout.type = PatternLayout\n"
        "appender.console.layout.pattern = %d{yy/MM/dd HH:mm:ss} %p %c{1}: %m%n%ex\n"
        # A driver started by pyspark (its gateway) otherwise puts the console at WARN
        # and says so in two lines, unless its logger has a level of its own.
        "logger.gateway.name = org.apache.spark.api.python.PythonGatewayServer\n"
        f"logger.gateway.level = {level.lower()}\n"
    )


def _log4j_file(level: str) -> str:
    """Write :func:`log4j_properties` for ``level`` once per level; its path."""
    import tempfile

    path = Path(tempfile.gettempdir()) / f"segengine-log4j2-{level.lower()}.properties"
    text = log4j_properties(level)
    if not path.exists() or path.read_text() != text:
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return str(path)


def spark_conf(config: Config, interactive: bool | None = None) -> dict[str, str]:
    """The Spark settings segengine applies, before the user's ``spark.conf``.

    Args:
        interactive: whether stderr is a terminal (default: asked); Spark's stage
            progress bars are drawn only then.
    """
    import sys

    level = config.spark.log_level  # a log4j level in upper case, checked when the config loaded
    if interactive is None:
        interactive = sys.stderr.isatty()
    conf = {
        "spark.sql.shuffle.partitions": str(config.spark.shuffle_partitions),
        "spark.ui.enabled": str(config.spark.ui_enabled).lower(),
        # Progress bars interleave with the step lines in a log file; a terminal gets them.
        "spark.ui.showConsoleProgress": str(interactive).lower(),
        "spark.sql.session.timeZone": config.features.timezone,
        # Delta readers (delta-rs, Trino, …) expect INT64 microsecond timestamps.
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
        # The embedded Delta writer lists what a job wrote; no _SUCCESS markers.
        "spark.hadoop.mapreduce.fileoutputcommitter.marksuccessfuljobs": "false",
        "spark.sql.adaptive.enabled": "true",
        # A partial aggregate first looks each key up in a small fixed-size hash map and
        # falls back to the main one. segengine groups by persona, order or day: millions
        # of keys, where that first lookup only costs (without it the RFM core at 1M
        # personas takes 0.90x the time; ``make bench`` measures both).
        TWO_LEVEL_AGG_MAP: "false",
    }
    if config.is_local_warehouse:
        conf["spark.sql.warehouse.dir"] = os.path.join(config.warehouse_uri, "spark-warehouse")
        # Local runs spill to the warehouse disk, not /tmp on a small root volume.
        conf["spark.local.dir"] = os.path.join(config.warehouse_uri, ".spark-tmp")
        # The embedded backend hands Spark the exact data files of a version. Past 32
        # paths Spark stats them in a distributed job (one task per file, each
        # deserialising the Hadoop conf): seconds for a table of ~1,000 files, where the
        # driver stats local files in milliseconds. Remote stores keep the parallel job.
        conf["spark.sql.sources.parallelPartitionDiscovery.threshold"] = str(LOCAL_LISTING_THRESHOLD)
    if config.spark.driver_memory and config.spark.master and config.spark.master.startswith("local"):
        conf["spark.driver.memory"] = config.spark.driver_memory
    jars = delta_jars(config) if config.delta.backend in {"auto", "jvm"} else []
    if jars:
        conf["spark.jars"] = ",".join(jars)
    if jars or config.delta.backend == "jvm":
        conf.setdefault("spark.sql.extensions", DELTA_EXTENSION)
        conf.setdefault("spark.sql.catalog.spark_catalog", DELTA_CATALOG)
        if config.spark.master and config.spark.master.startswith("local"):
            # Delta rebuilds a table's state in 50 partitions by default: 50 tasks per
            # snapshot of a small local table. Locally, the shuffle width is enough.
            conf["spark.databricks.delta.snapshotPartitions"] = str(config.spark.shuffle_partitions)
    conf.update({k: str(v) for k, v in config.spark.conf.items()})
    for key in JAVA_OPTIONS:
        # Added to the user's JVM options; an option that names the flag decides.
        given = conf.get(key, "")
        if HUGE_METHODS_FLAG not in given:
            conf[key] = f"{given} {JIT_HUGE_METHODS}".strip()
    if config.spark.master and config.spark.master.startswith("local"):
        # Only a driver this process starts reads it (spark-submit's driver already runs);
        # the user's own log4j2 file, given in the same option, wins.
        given = conf.get("spark.driver.extraJavaOptions", "")
        if "log4j2.configurationFile" not in given:
            conf["spark.driver.extraJavaOptions"] = f"{given} -Dlog4j2.configurationFile={_log4j_file(level)}".strip()
    return conf


def build_spark(config: Config, app_name: str | None = None) -> SparkSession:
    """Create (or reuse) the SparkSession described by ``config``.

    Embedded default: ``local[*]``, warehouse under a local directory, quiet logs.
    On a cluster ``spark.master`` is null and spark-submit's ``--master`` applies.

    Args:
        config: the loaded configuration.
        app_name: overrides ``spark.app_name`` (jobs pass their own name).

    Returns:
        The active SparkSession.
    """
    from pyspark.sql import SparkSession

    if config.spark.master is None or config.spark.master.startswith("local"):
        # A cluster driver has Java by construction; a local run may not.
        if not os.environ.get("SPARK_HOME") or config.spark.master:
            check_java()
    if config.spark.master and config.spark.master.startswith("local"):
        # Local Python workers must run this interpreter (the one with pyarrow etc.),
        # not whatever `python3` is first on PATH.
        import sys

        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
        os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name or config.spark.app_name)
    if config.spark.master:
        builder = builder.master(config.spark.master)
    for key, value in spark_conf(config).items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(config.spark.log_level)
    return spark


def quiet_python_logs(verbose: bool = False) -> None:
    """MLflow's INFO chatter off unless ``verbose`` (or ``MLFLOW_LOGGING_LEVEL`` says otherwise).

    MLflow sets its loggers' level from that variable when it is first imported, so
    this runs before any command imports it.
    """
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "INFO" if verbose else "WARNING")


def jvm_of(spark: SparkSession, needed_for: str) -> Any:
    """The py4j view of the driver's JVM (untyped: py4j resolves names at run time).

    A classic SparkSession has one; Spark Connect does not, and then ``needed_for`` says
    in a one-line :class:`EnvironmentProblem` what could not be done.
    """
    jvm = spark.sparkContext._jvm
    if jvm is None:
        raise EnvironmentProblem(f"{needed_for} needs a classic SparkSession with a JVM (not Spark Connect)")
    return jvm


def delta_jars_available(spark: SparkSession) -> bool:
    """True when Delta's JVM classes can be loaded by this session's driver."""
    try:
        jvm = jvm_of(spark, "loading Delta's classes")
        loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
        jvm.java.lang.Class.forName("io.delta.tables.DeltaTable", False, loader)
        return True
    except Exception:  # noqa: BLE001 - Py4J raises its own error types
        return False


def delta_extension_enabled(spark: SparkSession) -> bool:
    """True when the session was built with Delta's SQL extension."""
    return DELTA_EXTENSION in (spark.conf.get("spark.sql.extensions", "") or "")
