"""The example notebook runs, top to bottom, with the installed package: a broken example fails here.

The notebook is stored without outputs; it is executed in a fresh kernel (nbclient and
ipykernel, from the ``[test]`` extra) and every code cell must finish without an error.
The notebook asserts its own numbers (the references agree with the adjoint, the
adjoint path ends at ``dL/dh0``, training lowers the loss), so a wrong gradient fails too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="executing the notebook needs nbformat (the [test] extra)")
nbclient = pytest.importorskip("nbclient", reason="executing the notebook needs nbclient (the [test] extra)")
pytest.importorskip("ipykernel", reason="executing the notebook needs ipykernel (the [test] extra)")
pytest.importorskip("matplotlib", reason="the notebook draws figures with matplotlib (the [plot] extra)")

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "neural_ode_walkthrough.ipynb"


def code_cells(nb) -> list:
    return [cell for cell in nb.cells if cell.cell_type == "code"]


def test_notebook_is_stored_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    dirty = [i for i, cell in enumerate(code_cells(nb)) if cell.outputs or cell.execution_count is not None]
    assert not dirty, f"code cells {dirty} carry outputs; clear them before committing (stored without outputs)"


@pytest.fixture(scope="module")
def executed():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"a cell of {NOTEBOOK.name} raised:\n{exc}")
    return nb


def test_notebook_executes_without_errors(executed):
    errors = [
        (i, out.ename, out.evalue)
        for i, cell in enumerate(code_cells(executed))
        for out in cell.outputs
        if out.output_type == "error"
    ]
    assert not errors, f"cells errored: {errors}"
    assert all(cell.execution_count is not None for cell in code_cells(executed))


def test_notebook_shows_rich_output(executed):
    """LaTeX for the system, the augmented system and the adjoint; HTML tables; figures."""
    mimes: dict[str, int] = {}
    for cell in code_cells(executed):
        for out in cell.outputs:
            for mime in out.get("data", {}):
                mimes[mime] = mimes.get(mime, 0) + 1
    assert mimes.get("text/latex", 0) >= 3, mimes
    assert mimes.get("text/html", 0) >= 2, mimes
    assert mimes.get("image/png", 0) >= 4, mimes
    printed = "".join(out.get("text", "") for cell in code_cells(executed) for out in cell.outputs)
    assert r"\begin{align}" in printed and r"\frac{d a}{d t}" in printed
