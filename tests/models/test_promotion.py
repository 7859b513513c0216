"""Gated promotion: the one rule every registered model goes through, rollback, one alias resolution.

A tiny logged pipeline is registered several times; the validation numbers are written
by hand so the expected alias of every version is obvious.
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from mlflow import MlflowClient

from segengine.cli import cli
from segengine.models.tracking import (
    PROMOTION_TAG,
    Validation,
    champion_version,
    configure_mlflow,
    load_champion,
    promote_version,
    register_and_promote,
)

NAME = "test-gated"


@pytest.fixture
def logged(spark, config):
    """The URI of one small logged Spark pipeline, in this test's MLflow store."""
    import mlflow.spark
    import pyspark
    from pyspark.ml import PipelineModel
    from pyspark.ml.feature import SQLTransformer

    configure_mlflow(config)
    model = PipelineModel(stages=[SQLTransformer(statement="SELECT *, 1.0D AS prediction FROM __THIS__")])
    with mlflow.start_run():
        # Pinned requirements: MLflow would otherwise infer them in a subprocess (~20 s).
        return mlflow.spark.log_model(model, "model", pip_requirements=[f"pyspark=={pyspark.__version__}"]).model_uri


def _register(config, uri, value, champion=None, champion_value=None, force=False):
    v = Validation(
        "holdout_mae", value, higher_is_better=False, champion_version=champion, champion_value=champion_value
    )
    return register_and_promote(config, uri, NAME, ["monetary"], v, force=force)


def _aliases(config):
    return {a: str(v) for a, v in MlflowClient().get_registered_model(NAME).aliases.items()}


def test_a_worse_model_stays_challenger_and_a_forced_one_is_tagged(config, logged):
    first = _register(config, logged, 10.0)
    assert (first.version, first.status, _aliases(config)) == ("1", "first", {"champion": "1"})

    worse = _register(config, logged, 12.0, champion="1", champion_value=11.0)
    assert worse.status == "challenger"
    assert _aliases(config) == {"champion": "1", "challenger": "2"}
    assert worse.line() == (
        "test-gated v2: holdout_mae 12 vs champion v1 11 (lower is better) -> challenger; champion stays v1"
    )

    tie = _register(config, logged, 11.0, champion="1", champion_value=11.0)  # not worse: promoted
    assert (tie.status, _aliases(config)["champion"]) == ("champion", "3")

    forced = _register(config, logged, 20.0, champion="3", champion_value=11.0, force=True)
    assert (forced.status, _aliases(config)["champion"]) == ("forced", "4")
    assert forced.line().endswith("-> champion (forced with --force-promote)")
    tags = MlflowClient().get_model_version(NAME, "4").tags
    assert tags[PROMOTION_TAG] == "forced"
    assert tags["segengine.validation"] == "holdout_mae=20.0; champion v3=11.0"
    run = MlflowClient().get_run(MlflowClient().get_model_version(NAME, "4").run_id)
    assert run.data.tags[PROMOTION_TAG] == "forced"


def test_rollback_is_respected_by_the_next_training(config, logged):
    _register(config, logged, 10.0)
    _register(config, logged, 9.0, champion="1", champion_value=10.0)  # better: v2 champion
    assert promote_version(config, NAME, 1) == "2"  # roll back by moving the alias
    assert str(champion_version(config, NAME).version) == "1"
    # The next training resolves the alias (v1) and is compared with it.
    nxt = _register(config, logged, 10.5, champion="1", champion_value=10.0)
    assert nxt.status == "challenger" and _aliases(config)["champion"] == "1"
    # A champion that moved while a model trained: the comparison was with another version.
    late = _register(config, logged, 1.0, champion="2", champion_value=10.0)
    assert late.status == "challenger" and _aliases(config)["champion"] == "1"
    assert "moved from v2 to v1" in late.validation.note


def test_a_model_without_a_validation_metric_never_replaces_a_champion(config, logged):
    _register(config, logged, 10.0)
    blind = _register(config, logged, float("nan"), champion="1")
    assert blind.status == "challenger" and _aliases(config)["champion"] == "1"


def test_champion_is_loaded_from_one_resolution_of_the_alias(config, logged, monkeypatch):
    import mlflow.spark

    _register(config, logged, 10.0)
    _register(config, logged, 9.0, champion="1", champion_value=10.0)
    uris, resolutions = [], []
    monkeypatch.setattr(mlflow.spark, "load_model", lambda uri, *a, **k: uris.append(uri) or "model")
    real = MlflowClient.get_model_version_by_alias
    monkeypatch.setattr(
        MlflowClient,
        "get_model_version_by_alias",
        lambda self, *a, **k: resolutions.append(a) or real(self, *a, **k),
    )
    loaded = load_champion(config, NAME)
    assert (loaded.version, loaded.model) == ("2", "model")
    assert uris == [f"models:/{NAME}/2"]  # the version, not the alias again
    assert len(resolutions) == 1


def test_models_promote_command_moves_the_champion_alias(config, logged):
    _register(config, logged, 10.0)
    _register(config, logged, 9.0, champion="1", champion_value=10.0)
    runner = CliRunner()
    result = runner.invoke(
        cli, ["--conf", f"warehouse={config.warehouse}", "models", "promote", NAME, "--version", "1"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"{NAME}@champion: v2 -> v1"]
    assert _aliases(config)["champion"] == "1"
    configure_mlflow(config)
    assert MlflowClient().get_model_version(NAME, "1").tags[PROMOTION_TAG] == "manual"
    missing = runner.invoke(
        cli, ["--conf", f"warehouse={config.warehouse}", "models", "promote", NAME, "--version", "9"]
    )
    assert missing.exit_code == 2
    assert f"no registered model {NAME} version 9" in missing.output
    typo = runner.invoke(
        cli, ["--conf", f"warehouse={config.warehouse}", "models", "promote", NAME[:-1], "--version", "1"]
    )
    assert typo.exit_code == 2
    assert typo.stderr.splitlines() == [
        f"error: no registered model {NAME[:-1]!r} (did you mean {NAME}?) (see `segengine models list`)"
    ]
