"""Execute the two tour notebooks in their small configuration (``NOTEBOOK_SMALL=1``).

Each notebook checks its own numerical facts with ``assert`` inside (the explicit regularizer
against an antithetic Monte-Carlo estimate; change-of-basis matrices against NumPy averages and
samples; compression onto the same basis leaving the logits unchanged), so a cell error fails the
test. Here we also check that the key outputs exist: the figures, and the printed lines that
report those checks.
"""

import os
from pathlib import Path

import ipykernel  # noqa: F401  (the kernel the notebooks run in; part of the dev extra)
import nbclient
import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

# notebook -> (minimum number of PNG figures, text that must appear in the outputs)
EXPECTED = {
    "noisy_rnn_tour.ipynb": (
        6,
        (
            "explicit regularizer matches Monte Carlo",
            "test accuracy",
            "top exponent",
            "mu =",
        ),
    ),
    "basis_ode_tour.ipynb": (
        5,
        ("P (PiecewiseConstant(8) -> Hat(4))", "test accuracy", "compressed to", "latency ms"),
    ),
}


def _outputs(nb) -> tuple[int, str, list[str]]:
    """(number of PNG outputs, all text output, error names) over the code cells."""
    pngs, text, errors = 0, [], []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                text.append(out.text)
            elif out.output_type in ("display_data", "execute_result"):
                pngs += "image/png" in out.data
                text.append(out.data.get("text/plain", ""))
            elif out.output_type == "error":
                errors.append(f"{out.ename}: {out.evalue}")
    return pngs, "\n".join(text), errors


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_notebook_executes_small(name, monkeypatch):
    path = NOTEBOOKS / name
    nb = nbformat.read(path, as_version=4)
    # The kernel inherits this process's environment, so the parameter cells see the small sizes.
    monkeypatch.setenv("NOTEBOOK_SMALL", "1")
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    assert os.environ["NOTEBOOK_SMALL"] == "1"

    pngs, text, errors = _outputs(nb)
    assert not errors, errors
    min_pngs, phrases = EXPECTED[name]
    assert pngs >= min_pngs, f"{name}: {pngs} figures, expected at least {min_pngs}"
    for phrase in phrases:
        assert phrase in text, f"{name}: no output containing {phrase!r}"
    assert "SMALL=True" in text, "the parameter cell did not read NOTEBOOK_SMALL=1"
    code_cells = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.get("execution_count") for c in code_cells), "a code cell did not run"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_committed_notebook_has_full_run_outputs(name):
    """The committed copy carries the outputs of a full (not small) run, figures included."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    pngs, text, errors = _outputs(nb)
    assert not errors, errors
    assert pngs >= EXPECTED[name][0]
    assert "SMALL=False" in text
