"""Installed, not only cloned: a real non-editable install (pip install into a temporary folder, no
network) works from outside the source tree, with the shipped checkpoints and offline data inside it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _shipped_files() -> set[str]:
    """The files of data/ that git tracks (a clone has exactly these), relative to data/."""
    try:
        listed = subprocess.run(["git", "ls-files", "data"], cwd=ROOT, capture_output=True, text=True, check=True)
        return {str(Path(p).relative_to("data")) for p in listed.stdout.splitlines()}
    except (OSError, subprocess.CalledProcessError):  # not a git checkout: every file there
        return {str(p.relative_to(ROOT / "data")) for p in (ROOT / "data").rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """A copy of what a wheel is built from, installed with pip (no deps, no build isolation, no index)."""
    tmp = tmp_path_factory.mktemp("install")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "diffusion_lab", src / "diffusion_lab", ignore=shutil.ignore_patterns("__pycache__"))
    for rel in _shipped_files():
        (src / "data" / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / "data" / rel, src / "data" / rel)
    target = tmp / "site"
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "--target", str(target), str(src)]
    done = subprocess.run(pip, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return target


def test_the_install_holds_every_module_and_every_shipped_file(site):
    package = {str(p.relative_to(ROOT / "diffusion_lab")) for p in (ROOT / "diffusion_lab").rglob("*.py")}
    installed = {str(p.relative_to(site / "diffusion_lab")) for p in (site / "diffusion_lab").rglob("*.py")}
    assert package <= installed, f"missing from the install (add them to pyproject.toml): {package - installed}"
    data = {str(p.relative_to(site / "diffusion_lab" / "_data"))
            for p in (site / "diffusion_lab" / "_data").rglob("*") if p.is_file() and p.suffix != ".py"}
    missing = _shipped_files() - data
    assert not missing, f"shipped data missing from the install (pyproject.toml's package-data): {missing}"


def _run_installed(site: Path, cwd: Path, code: str = "", args: list[str] | None = None):
    env = {**os.environ, "PYTHONPATH": str(site), "DIFFUSION_LAB_DATA": str(cwd / "no_full_data")}
    env.pop("DIFFUSION_LAB_FAST", None)
    argv = [sys.executable, "-c", code] if code else [sys.executable, "-m", "diffusion_lab", *args]
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)


def test_the_installed_package_runs_away_from_the_clone(site, tmp_path):
    code = f"""
import json, pathlib
import diffusion_lab as dl
from diffusion_lab.results import load_results
assert pathlib.Path(dl.__file__).is_relative_to({str(site)!r}), dl.__file__
model, schedule, config = dl.load_pretrained("mnist_cfg")
data = dl.load_data("mnist", "train", limit=4, verbose=False)
x = dl.sample(model, schedule, 2, y=[3, 7], steps=2, guidance=2.0, progress=False)
print(json.dumps({{"dataset": config["dataset"], "data": data.source, "shape": list(x.shape),
                  "results": len(load_results("checkpoints"))}}))
"""
    done = _run_installed(site, tmp_path, code)
    assert done.returncode == 0, done.stderr[-3000:]
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert out["dataset"] == "mnist" and out["shape"] == [2, 1, 28, 28] and out["results"] > 0
    assert "offline subset" in out["data"]

    cli = _run_installed(site, tmp_path, args=["sample", "--checkpoint", "mnist_uncond", "--steps", "1", "--num",
                                               "2", "--out", "u.png"])
    assert cli.returncode == 0, cli.stderr[-3000:]
    assert (tmp_path / "u.png").read_bytes()[:4] == b"\x89PNG"


def test_an_install_without_its_data_says_how_to_get_it(site, tmp_path):
    shutil.rmtree(site / "diffusion_lab" / "_data")  # the last test of this module: it breaks the install
    done = _run_installed(site, tmp_path, args=["sample", "--checkpoint", "mnist_cfg", "--num", "1",
                                                "--out", "x.npz"])
    assert done.returncode == 2
    assert done.stderr.startswith("error: no shipped checkpoint") and "pip install ." in done.stderr, done.stderr
    assert not (tmp_path / "x.npz").exists()


def test_the_core_needs_no_course_library():
    """Only diffusion_lab.course uses ipywidgets, IPython and matplotlib: the core imports none of them."""
    code = ("import sys, diffusion_lab, diffusion_lab.cli, diffusion_lab.evaluate, diffusion_lab.bench, "
            "diffusion_lab.results; print([m for m in ('ipywidgets', 'IPython', 'matplotlib') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
