"""Every notebook has a jupytext percent script beside it, and the two hold the same cells.

(Edit either one, then run `jupytext --sync notebooks/*.ipynb`.)"""

from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def _cells(nb):
    return [(c.cell_type, c.source.strip()) for c in nb.cells]


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 8


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.name)
def test_paired_script_in_sync(ipynb):
    script = ipynb.with_suffix(".py")
    assert script.exists(), f"{script.name} is missing: run `jupytext --set-formats ipynb,py:percent {ipynb}`"
    a, b = jupytext.read(ipynb), jupytext.read(script)
    assert _cells(a) == _cells(b), f"{ipynb.name} and {script.name} differ: run `jupytext --sync {ipynb}`"


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_carries_outputs(ipynb):
    nb = jupytext.read(ipynb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code and sum(bool(c.get("outputs")) for c in code) >= len(code) // 3, "run it, then commit"
    assert any("image/png" in o.get("data", {}) for c in code for o in c.get("outputs", [])), "no figure"
