"""Both notebooks run top to bottom on small data (nbclient).

The quickstart is stored with the outputs of that small run, so a reader sees what to
expect; re-executing it must give outputs of the same shape (the same cells print, the
same kinds of output, tables and summaries of about the same length, no errors). Exact
values are not compared: model training and timings may move them. The model iteration
notebook is stored without outputs.
"""

from __future__ import annotations

import copy
import os
import re
import sys
from pathlib import Path

import pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
QUICKSTART = "01_quickstart.ipynb"
WITHOUT_OUTPUTS = ("02_model_iteration.ipynb",)
NAMES = (QUICKSTART, *WITHOUT_OUTPUTS)
# The small run whose outputs the quickstart stores (also what the test executes).
SMALL_RUN = {
    "SEGENGINE_NB_PERSONAS": "600",
    # Smaller models than the defaults (same code paths): a fixed k, fewer boosting
    # iterations, one training cycle and one cutoff for CLV.
    "SEGENGINE_NB_CONF": "segments.k=4;clv.max_iter=5;clv.train_cycles=1;clv.cutoff_step_months=6;recommend.max_iter=5",
}
# Printed lines of one cell may differ by this many, or this share, whichever is larger.
LINE_TOLERANCE = 3
LINE_SHARE_TOLERANCE = 0.25
# Stored outputs are published: no machine paths (and so no user names) in them. Any
# absolute path of two or more parts, a home-relative one, or a Windows drive path; a
# URI's path (``models:/name/1``) is not one.
MACHINE_PATH = re.compile(r"(?<![\w:/.])/[\w.-]+/[\w.-]+|(?<![\w])~/|\b[A-Za-z]:\\")


def _read(name: str):
    import nbformat

    return nbformat.read(NOTEBOOKS / name, as_version=4)


def _code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


def output_shape(cell) -> dict[str, object]:
    """What a cell showed, without the values: stdout line count, rich output kinds, errors.

    stderr is left out: it carries the JVM's and MLflow's notices, which depend on the
    machine (native BLAS, Java modules) rather than on the notebook.
    """
    stdout = "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout")
    rich = [
        (o.output_type, tuple(sorted(o.get("data", {}))))
        for o in cell.outputs
        if o.output_type in ("execute_result", "display_data")
    ]
    errors = [f"{o.get('ename')}: {o.get('evalue')}" for o in cell.outputs if o.output_type == "error"]
    return {"stdout_lines": len(stdout.splitlines()), "rich": rich, "errors": errors}


def shape_differences(stored, executed) -> list[str]:
    """How the executed notebook's outputs differ in shape from the stored ones ([] when alike)."""
    problems = []
    old_cells, new_cells = _code_cells(stored), _code_cells(executed)
    if len(old_cells) != len(new_cells):
        return [f"{len(old_cells)} code cells stored, {len(new_cells)} executed"]
    for i, (old, new) in enumerate(zip(old_cells, new_cells, strict=True)):
        before, after = output_shape(old), output_shape(new)
        where = f"code cell {i + 1} ({old.source.splitlines()[0] if old.source else ''!r})"
        if after["errors"]:
            problems.append(f"{where}: error {after['errors']}")
        if before["rich"] != after["rich"]:
            problems.append(f"{where}: shows {after['rich']}, stored {before['rich']}")
        a, b = before["stdout_lines"], after["stdout_lines"]
        if (a == 0) != (b == 0) or abs(a - b) > max(LINE_TOLERANCE, LINE_SHARE_TOLERANCE * a):
            problems.append(f"{where}: printed {b} lines, stored {a}")
    return problems


def test_quickstart_is_stored_with_outputs_of_the_small_run():
    nb = _read(QUICKSTART)
    cells = _code_cells(nb)
    shapes = [output_shape(c) for c in cells]
    assert all(c.execution_count is not None for c in cells), "execute every cell before committing"
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1)), "run top to bottom, once"
    assert not any(s["errors"] for s in shapes)
    # Tables and summaries are what a reader comes for: most cells print something.
    assert sum(1 for s in shapes if s["stdout_lines"] or s["rich"]) >= len(cells) - 2
    assert "600 rows" in "".join(o.get("text", "") for c in cells for o in c.outputs), "stored from the small run"


def test_quickstart_outputs_name_no_machine_path():
    assert MACHINE_PATH.search("warehouse: /var/x/warehouse") and MACHINE_PATH.search("C:\\Users\\x")
    assert not MACHINE_PATH.search("models:/segengine-clv/1/sparkml | 2025-06-30 | a/b")
    for cell in _code_cells(_read(QUICKSTART)):
        for output in cell.outputs:
            text = output.get("text", "") + "".join(str(v) for v in output.get("data", {}).values())
            text += "".join(output.get("traceback", []))
            found = MACHINE_PATH.search(text)
            assert found is None, (
                f"machine path in a stored output: {text[max(0, found.start() - 60) : found.end() + 60]!r}"
            )


@pytest.mark.parametrize("name", WITHOUT_OUTPUTS)
def test_notebook_is_stored_without_outputs(name):
    for cell in _code_cells(_read(name)):
        assert cell.outputs == [] and cell.execution_count is None, f"{name}: strip outputs before committing"


def test_shape_comparison_tolerates_values_and_catches_changes():
    import nbformat
    from nbformat.v4 import new_code_cell, new_output

    def notebook(*outputs):
        return nbformat.v4.new_notebook(cells=[new_code_cell("x", outputs=list(o)) for o in outputs])

    table = "+---+\n|  a|\n+---+\n|  1|\n|  2|\n+---+\n"
    stored = notebook([new_output("stream", name="stdout", text=table)], [])
    same_shape = notebook(
        [
            new_output("stream", name="stdout", text=table.replace("1", "7")),
            new_output("stream", name="stderr", text="WARNING: something of this machine\n"),
        ],
        [],
    )
    assert shape_differences(stored, same_shape) == []
    longer = notebook([new_output("stream", name="stdout", text=table + "|  3|\n" * 4)], [])
    assert shape_differences(stored, longer) == ["code cell 1 ('x'): printed 10 lines, stored 6"]
    failing = notebook(
        [new_output("stream", name="stdout", text=table)], [new_output("error", ename="ValueError", evalue="bad")]
    )
    assert shape_differences(stored, failing) == ["code cell 2 ('x'): error ['ValueError: bad']"]
    new_result = notebook(
        [new_output("stream", name="stdout", text=table)], [new_output("execute_result", data={"text/plain": "1"})]
    )
    assert shape_differences(stored, new_result) == [
        "code cell 2 ('x'): shows [('execute_result', ('text/plain',))], stored []"
    ]


@pytest.mark.slow
def test_notebooks_run_top_to_bottom(tmp_path, monkeypatch):
    """One warehouse for both: the second reuses the first's features (as a user would).

    The quickstart's outputs are compared for shape with the stored ones. Slow (two
    kernels each with its own local Spark, model training): deselect with
    ``-m "not slow"`` for a quick run.
    """
    from nbclient import NotebookClient

    # The kernel is a separate process with its own (small) SparkSession.
    monkeypatch.setenv("SEGENGINE_NB_WAREHOUSE", str(tmp_path / "warehouse"))
    for key, value in SMALL_RUN.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
    for name in NAMES:
        stored = _read(name)
        nb = copy.deepcopy(stored)
        client = NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
        client.execute()
        errors = [o for c in _code_cells(nb) for o in c.outputs if o.get("output_type") == "error"]
        assert errors == [], f"{name}: {errors}"
        if name == QUICKSTART:
            assert shape_differences(stored, nb) == []
    assert (tmp_path / "warehouse" / "quickstart_report.html").exists()
    assert os.path.getsize(tmp_path / "warehouse" / "quickstart_report.html") > 0
