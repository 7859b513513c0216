"""Shared fixtures: one SparkSession for the whole run, a fresh warehouse per test."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def session_dir():
    path = Path(tempfile.mkdtemp(prefix="segengine-tests-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def base_config(session_dir):
    """The embedded default, shrunk for tests (local[2], 2 shuffle partitions)."""
    from segengine.config import load_config

    return load_config(
        "local",
        overrides=[
            f"warehouse={session_dir / 'warehouse'}",
            "spark.master=local[2]",
            "spark.shuffle_partitions=2",
            "spark.driver_memory=2g",
            "delta.backend=embedded",
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

    session = build_spark(base_config, app_name="segengine-tests")
    yield session
    session.stop()


@pytest.fixture
def config(base_config, tmp_path):
    """A config whose warehouse is a fresh directory for this test."""
    import dataclasses

    return dataclasses.replace(base_config, warehouse=str(tmp_path / "warehouse"))


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
