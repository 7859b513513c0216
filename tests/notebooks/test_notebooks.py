"""Both notebooks run top to bottom on small data (nbclient), and are stored without outputs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ("01_quickstart.ipynb", "02_model_iteration.ipynb")


@pytest.mark.parametrize("name", NAMES)
def test_notebook_is_stored_without_outputs(name):
    import nbformat

    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: strip outputs before committing"


@pytest.mark.slow
def test_notebooks_run_top_to_bottom(tmp_path, monkeypatch):
    """One warehouse for both: the second reuses the first's features (as a user would).

    Slow (two kernels each with its own local Spark, model training): deselect with
    ``-m "not slow"`` for a quick run.
    """
    import nbformat
    from nbclient import NotebookClient

    # The kernel is a separate process with its own (small) SparkSession.
    monkeypatch.setenv("SEGENGINE_NB_WAREHOUSE", str(tmp_path / "warehouse"))
    monkeypatch.setenv("SEGENGINE_NB_PERSONAS", os.environ.get("SEGENGINE_NB_PERSONAS", "600"))
    # Smaller models than the defaults (same code paths): a fixed k, fewer boosting
    # iterations, one training cycle and one cutoff for CLV.
    monkeypatch.setenv(
        "SEGENGINE_NB_CONF",
        "segments.k=4;clv.max_iter=5;clv.train_cycles=1;clv.cutoff_step_months=6;recommend.max_iter=5",
    )
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
    for name in NAMES:
        nb = nbformat.read(NOTEBOOKS / name, as_version=4)
        client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("output_type") == "error"]
        assert errors == [], f"{name}: {errors}"
    assert (tmp_path / "warehouse" / "quickstart_report.html").exists()
