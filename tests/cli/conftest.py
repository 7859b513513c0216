"""Shared fixture of the CLI tests: ``invoke(*args)`` runs ``segengine`` in-process."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from segengine.cli import cli


@pytest.fixture
def invoke(spark, config, lake, monkeypatch):
    """Run ``segengine <args>`` on the test session, the test warehouse and the suite's backend."""
    import segengine.session

    monkeypatch.setattr(segengine.session, "build_spark", lambda *a, **k: spark)
    base = ["--env", "local", "--conf", f"warehouse={config.warehouse}", "--conf", f"delta.backend={lake.backend.name}"]

    def run(*args: str):
        return CliRunner().invoke(cli, [*base, *args])

    return run
