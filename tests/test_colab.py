"""Colab: every notebook starts with the one install cell and badge, and the cell is idempotent.

The cell is run as Colab would run it, with no network: a fake `google.colab` module makes it think it
is in Colab, the repository it clones is a local clone of this one, and a fake `pip` records the
install it asks for instead of changing this environment."""

import importlib.metadata
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import jupytext
import pytest

from diffusion_lab import settings
from diffusion_lab.course import colab

NOTEBOOKS = sorted([*(colab.ROOT / "notebooks").glob("*.ipynb"), *(colab.ROOT / "solutions").glob("*.ipynb")])


@pytest.mark.parametrize("ipynb", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_carries_the_install_cell_and_badge(ipynb):
    """Both editions: the student one's badge opens notebooks/, the instructor one's solutions/."""
    nb = jupytext.read(ipynb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    fix = "run `python -m diffusion_lab.course.colab` (it stamps every chapter's source), then `make editions`"
    assert code[0].source == colab.install_cell().rstrip("\n"), f"the first code cell is not the install cell: {fix}"
    assert sum(colab.MARKER in c.source for c in code) == 1, "one install cell per notebook"
    want = colab.badge(ipynb.name, folder=ipynb.parent.name)
    assert want in nb.cells[0].source, f"Colab badge missing or stale: {fix}"
    assert not code[0].get("outputs"), "outside Colab the install cell must print nothing"


def test_stamp_is_idempotent_and_adds_what_is_missing():
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 12 · A new chapter\n\nText."),
                                         nbformat.v4.new_code_cell("import torch")])
    assert colab.stamp(nb, "12_new.ipynb")
    assert [c.cell_type for c in nb.cells] == ["markdown", "code", "code"]
    assert nb.cells[1].source == colab.install_cell().rstrip("\n") and nb.cells[1].metadata["cellView"] == "form"
    assert nb.cells[0].source.splitlines()[:3] == ["# 12 · A new chapter", "", colab.badge("12_new.ipynb")]
    assert not colab.stamp(nb, "12_new.ipynb"), "a second stamp must change nothing"


def test_repository_url_lives_in_pyproject():
    url = colab.repository_url()
    assert url.startswith("https://github.com/")
    assert colab.colab_url("05_x.ipynb") == (
        colab.COLAB + url.removeprefix("https://github.com/") + "/blob/main/notebooks/05_x.ipynb")
    assert f'REPO = "{url}"' in colab.install_cell()


@pytest.fixture
def fake_colab(tmp_path):
    """A folder to put first on PYTHONPATH: `google.colab` (empty) and a `pip` that logs its arguments."""
    fakes = tmp_path / "fakes"
    (fakes / "google" / "colab").mkdir(parents=True)
    (fakes / "google" / "__init__.py").write_text("")
    (fakes / "google" / "colab" / "__init__.py").write_text("")
    (fakes / "pip").mkdir()
    (fakes / "pip" / "__init__.py").write_text("")
    log = tmp_path / "pip.log"
    (fakes / "pip" / "__main__.py").write_text(
        f"import json, sys\nopen({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    return fakes, log


def run_cell(cell: str, times: int, cwd: Path, fakes: Path) -> list[str]:
    """Run `cell` `times` times in one fresh Python process (one kernel); return what it printed."""
    program = "\n".join(["import os", "__import__('google.colab')"] + [cell] * times
                        + ["print('CWD', os.getcwd())"])
    env = {"PYTHONPATH": str(fakes), "PATH": "/usr/bin:/bin", "HOME": str(cwd)}
    out = subprocess.run([sys.executable, "-c", program], cwd=cwd, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


def test_install_cell_twice_then_after_a_restart(tmp_path, fake_colab):
    fakes, log = fake_colab
    source = tmp_path / "source"  # stands for the GitHub repository: a clone of this one
    subprocess.run(["git", "clone", "--quiet", str(colab.ROOT), str(source)], check=True)
    content = tmp_path / "content"  # Colab's starting folder
    content.mkdir()
    cell = colab.install_cell(repo=str(source))
    root = content / "source"

    lines = run_cell(cell, 2, content, fakes)
    assert lines[0] == f"cloned {source} into {root}"
    assert lines[1].startswith(f"installed diffusion_lab from {root}, keeping ")
    assert lines[2] == f"working in {root / 'notebooks'}"
    assert lines[3] == f"found the course in {root}", "second run: must find the clone from inside notebooks/"
    assert lines[4] == "diffusion_lab is installed"
    assert lines[-1] == f"CWD {root / 'notebooks'}"
    calls = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(calls) == 1, "the second run in the same kernel must not install again"
    assert calls[0][:4] == ["install", "--quiet", "-e", str(root)]
    pins = calls[0][4:]
    for dist in ("torch", "torchvision", "ipywidgets"):  # Colab's own: never upgraded
        assert f"{dist}=={importlib.metadata.version(dist)}" in pins

    # After a runtime restart the kernel starts again in /content, with the clone in place.
    lines = run_cell(cell, 1, content, fakes)
    assert lines[0] == f"found the course in {root}"
    assert lines[-1] == f"CWD {root / 'notebooks'}"

    clones = [p for p in content.rglob("diffusion_lab") if (p / "__init__.py").exists()]
    assert clones == [root / "diffusion_lab"], "the cell must never clone inside the clone"


def test_install_cell_refuses_a_folder_that_is_not_the_course(tmp_path, fake_colab):
    fakes, _ = fake_colab
    (tmp_path / "source").mkdir()
    cell = colab.install_cell(repo=str(tmp_path / "elsewhere" / "source"))
    program = "__import__('google.colab')\n" + cell
    out = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(fakes), "PATH": "/usr/bin:/bin"})
    assert out.returncode != 0 and "exists but is not the course: remove it" in out.stderr


def test_install_cell_does_nothing_outside_colab(tmp_path):
    program = textwrap.dedent("""
        import os, sys
        before = os.getcwd()
        """) + colab.install_cell() + "\nassert os.getcwd() == before and 'google.colab' not in sys.modules\n"
    out = subprocess.run([sys.executable, "-c", program], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout == "", out.stderr


def test_progress_bar_is_plain_text_in_colab(monkeypatch):
    from tqdm.std import tqdm as text_bar

    monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    bar = settings.progress_bar(range(3), disable=True)
    assert type(bar) is text_bar
