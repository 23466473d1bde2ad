"""Fixtures of the browser test: a Jupyter server for each front end (JupyterLab 4, then Notebook 7)
over copies of the notebooks, and headless Chromium driven by Playwright.

One server per front end, as learners start them (`jupyter lab`, `jupyter notebook`): a Lab server also
serves Notebook 7's pages, but then jupyter_server's static-file cache (FileFindHandler._static_paths,
keyed by file name across both apps' folders) answers Notebook 7's font requests with 403.

Playwright comes from PyPI (`pip install -e ".[browser]"`), the browser is the system's Chromium
(Debian's `chromium`): Playwright's own browser download is never used. Run with `make test-browser`
(which sets DIFFUSION_LAB_BROWSER=1); without it these tests are skipped, so `pytest` alone stays fast.

Environment: DIFFUSION_LAB_CHROMIUM (default: `chromium` on PATH), DIFFUSION_LAB_KERNEL_PYTHON (run the
notebooks' kernel with another Python, e.g. a venv with Colab's ipywidgets 7.7.1; the server and its
front ends stay those of this environment).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "build" / "browser"  # one screenshot per widget control, per front end
# Flags for a headless Chromium on a machine with a closed network (no background requests).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                 "--disable-background-networking", "--disable-component-update"]


def chromium_path() -> str | None:
    return os.environ.get("DIFFUSION_LAB_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def pytest_collection_modifyitems(config, items):
    reason = None
    if os.environ.get("DIFFUSION_LAB_BROWSER") != "1":
        reason = "browser tests run with `make test-browser` (DIFFUSION_LAB_BROWSER=1 pytest tests/browser)"
    elif chromium_path() is None:
        reason = "no Chromium found (apt-get install chromium, or set DIFFUSION_LAB_CHROMIUM)"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = 'Playwright is not installed (pip install -e ".[browser]")'
    if reason:
        for item in items:
            if item.path.is_relative_to(Path(__file__).parent):
                item.add_marker(pytest.mark.skip(reason=reason))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _settings(folder: Path) -> None:
    """JupyterLab settings for a quiet, deterministic test: no news or update checks (they would go
    online), no autosave, and every cell attached to the page (no windowing), so all can be found."""
    files = {
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {"fetchNews": "false",
                                                                           "checkForUpdates": False},
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
    }
    for name, value in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(value))


def _workspace(tmp: Path) -> Path:
    """The server's root: the repository's top level linked in, and notebooks/ holding copies of the
    notebooks without outputs or widget state (the originals are never opened or saved)."""
    import nbformat

    work = tmp / "repo"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in {"notebooks", ".git", ".venv", "build"}:
            (work / entry.name).symlink_to(entry)
    (work / "notebooks").mkdir()
    for entry in (ROOT / "notebooks").iterdir():
        if entry.suffix == ".ipynb":
            nb = nbformat.read(entry, as_version=4)
            nb.metadata.pop("widgets", None)
            for cell in nb.cells:
                if cell.cell_type == "code":
                    cell.outputs, cell.execution_count = [], None
            nbformat.write(nb, work / "notebooks" / entry.name)
        elif entry.suffix != ".py":  # no jupytext twins: the server would pair and rewrite them
            (work / "notebooks" / entry.name).symlink_to(entry)
    return work


def _kernelspec(folder: Path, python: str) -> None:
    """A `python3` kernel that runs `python` (found before the server's own, through JUPYTER_PATH)."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (browser test)", "language": "python"}))


FRONT_ENDS = {  # the server's module, and the URL of a notebook in it
    "lab": ("jupyterlab", "/lab/tree/notebooks/{name}?reset"),
    "notebook7": ("notebook", "/notebooks/notebooks/{name}"),
}


@pytest.fixture(scope="session", params=list(FRONT_ENDS))
def jupyter(request, tmp_path_factory):
    """A running Jupyter server; yields (front end, base URL, the workspace folder)."""
    front_end = request.param
    module, _ = FRONT_ENDS[front_end]
    tmp = tmp_path_factory.mktemp(front_end)
    work = _workspace(tmp)
    _settings(tmp / "settings")
    env = {**os.environ, "DIFFUSION_LAB_FAST": "1", "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
           "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"), "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
           "JUPYTER_CONFIG_DIR": str(tmp / "config")}
    kernel_python = os.environ.get("DIFFUSION_LAB_KERNEL_PYTHON")
    if kernel_python:
        _kernelspec(tmp / "data", kernel_python)
        env["JUPYTER_PATH"] = str(tmp / "data")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = open(tmp / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", module, "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         "--ServerApp.token=", "--ServerApp.password=", "--ServerApp.disable_check_xsrf=True",
         f"--ServerApp.root_dir={work}", "--allow-root"],
        env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"Jupyter server did not start: see {tmp / 'server.log'}") from None
                time.sleep(0.5)
        yield front_end, base, work
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def shots():
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def kernel_session_cleanup(base: str) -> None:
    """Shut every kernel down (one notebook at a time keeps memory and CPU low)."""
    with urllib.request.urlopen(f"{base}/api/sessions") as r:
        sessions = json.load(r)
    for s in sessions:
        req = urllib.request.Request(f"{base}/api/sessions/{s['id']}", method="DELETE")
        urllib.request.urlopen(req).close()


@pytest.fixture
def fresh_kernels(jupyter):
    yield
    kernel_session_cleanup(jupyter[1])
