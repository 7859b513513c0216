"""Shared fixtures: one SparkSession for the whole run, a fresh warehouse per test."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def session_dir():
    path = Path(tempfile.mkdtemp(prefix="segengine-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


# The Delta backend of the `lake` fixture and the tests' configuration: delta-spark (jvm,
# the default of `make test`, which fetches its jars) or embedded
# (`SEGENGINE_TEST_BACKEND=embedded make test`; also the default when no jars were
# fetched). Whatever this says, the session loads delta-spark when `make setup` fetched
# it: the lake contract, interop, concurrency and maintenance tests run on both
# backends, the orders-only daily pipeline runs on the other backend (OTHER_BACKEND),
# and the standalone cluster test runs the daily pipeline on delta-spark.
def _test_backend() -> str:
    chosen = os.environ.get("SEGENGINE_TEST_BACKEND")
    if chosen:
        return chosen
    from segengine.session import PROJECT_JARS

    return "jvm" if any(PROJECT_JARS.glob("delta-spark_*.jar")) else "embedded"


TEST_BACKEND = _test_backend()
OTHER_BACKEND = "embedded" if TEST_BACKEND == "jvm" else "jvm"

# pytest-xdist runs each worker with a ``__main__`` that has neither ``__spec__`` nor
# ``__file__``; pyspark.sql.connect (imported by MLflow's Spark flavour) takes that for
# a doctest run and calls sys.exit(0). Give the worker's main module a file name.
_main = sys.modules["__main__"]
if getattr(_main, "__spec__", None) is None and not hasattr(_main, "__file__"):
    _main.__file__ = "<pytest-xdist worker>"


def pytest_report_header(config):
    return f"segengine: Delta backend {TEST_BACKEND} (SEGENGINE_TEST_BACKEND=jvm|embedded)"


def pytest_collection_modifyitems(session, config, items):
    """Slow end-to-end files first: with ``-n 2 --dist loadfile`` a long file started last
    would leave one worker running alone at the end (`make test` passes
    ``--no-loadscope-reorder``, or xdist would deal the files with most tests first)."""
    slow_files = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow_files)


@pytest.fixture(scope="session")
def base_config(session_dir):
    """The default configuration shrunk for tests (local[2], 2 shuffle partitions)."""
    from segengine.config import load_config

    return load_config(
        "local",
        overrides=[
            f"warehouse={session_dir / 'warehouse'}",
            "spark.master=local[2]",
            "spark.shuffle_partitions=2",
            "spark.driver_memory=2g",
            f"delta.backend={TEST_BACKEND}",
        ],
        environ={},
    )


@pytest.fixture(scope="session")
def spark(base_config):
    """The one SparkSession of the test run."""
    import sys

    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable
    from segengine.session import build_spark

    # Delta's jars and SQL extension are on whenever `make setup` fetched them, so the
    # lake contract tests can run on both backends in one session.
    backend = "jvm" if TEST_BACKEND == "jvm" else "auto"
    session_config = base_config.replace(delta=base_config.delta.replace(backend=backend))
    session = build_spark(session_config, app_name="segengine-tests")
    # delta-spark keeps the log (and the cached state) of the last 1,000 tables it
    # touched; the suite makes thousands of small tables, and with all of them cached a
    # 2g driver ran out of memory two thirds of the way through. Read at first use.
    session.conf.set("spark.databricks.delta.delta.log.cacheSize", "16")
    # Test data is tiny: whole-stage code generation compiles a class for every new query
    # shape, which costs more than it saves on a few rows. Off, the CPU time of five test
    # files (registry, metrics, RFMT, windows, set operations) fell from 223 s to 209 s.
    session.conf.set("spark.sql.codegen.wholeStage", "false")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def other_backend(spark):
    """The backend the suite does not run on (jvm only when this session loaded delta-spark)."""
    from segengine.session import delta_jars_available

    return OTHER_BACKEND if OTHER_BACKEND == "embedded" or delta_jars_available(spark) else TEST_BACKEND


@pytest.fixture
def config(base_config, tmp_path):
    """A config whose warehouse is a fresh directory for this test."""
    return base_config.replace(warehouse=str(tmp_path / "warehouse"))


@pytest.fixture
def lake(spark, config):
    from segengine.lake import Lake

    return Lake.open(spark, config)


@pytest.fixture(scope="session")
def mlflow_local(session_dir):
    """A local MLflow tracking store (SQLite) for the session."""
    import mlflow

    uri = f"sqlite:///{session_dir / 'mlflow.db'}"
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    yield uri


GENERATED_PERSONAS = 1500


@pytest.fixture(scope="session")
def generated_bronze(spark, base_config, tmp_path_factory):
    """1,500 generated personas with 2% damaged rows, generated and ingested once per session.

    Read-only for the tests that share it (generator, features, cluster): one that
    writes tables points them elsewhere, or copies the bronze tables (``copy_bronze``).
    Returns ``(config, lake, generate_bronze result)``.
    """
    from segengine.generate import generate_bronze
    from segengine.lake import Lake

    config = base_config.replace(
        warehouse=str(tmp_path_factory.mktemp("generated") / "warehouse"),
        generator=base_config.generator.replace(malformed_share=0.02, chunk_personas=800),
    )
    lake = Lake.open(spark, config)
    result = generate_bronze(spark, lake, config, personas=GENERATED_PERSONAS, seed=5)
    return config, lake, result


@pytest.fixture(scope="session")
def copy_bronze():
    """``copy(source_config, target_config)``: copy the bronze tables of one warehouse into another."""
    from segengine.lake import TABLES

    def copy(source_config, target_config) -> None:
        for spec in TABLES.values():
            src = Path(source_config.warehouse_uri.removeprefix("file:")) / spec.path
            if spec.layer == "bronze" and src.exists():
                shutil.copytree(src, Path(target_config.warehouse_uri.removeprefix("file:")) / spec.path)

    return copy
